"""The moodloop sensor: webcam -> face -> emotion -> engagement -> ZeroMQ events.

Run it with `moodloop sensor` (or `python -m moodloop.sensor`); see docs/sensor.md. Modules,
one pipeline stage each: capture, detect, classify, smooth, engagement, pipeline; plus config,
preview, cli, quiet (OpenCV's logging) and synthetic (scenes for tests and benches).
"""
