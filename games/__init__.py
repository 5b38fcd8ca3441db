"""Star Drift, the demo game that reacts to how the player feels, and `moodloop play`.

Modules: rules (pure game state), bot (autopilot), render and hud (pygame drawing),
mood (the engine's Subscriber and Director, per frame), feed (the sensor child or the mock),
consent (the first-run notice), app (the loop) and play (the command).
"""
