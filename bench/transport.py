"""Transport benchmark: publish-to-receive latency and the game-side cost of Subscriber.poll().

    uv run python bench/transport.py [--count 2000] [--rate 200]

Latency is measured in one process over local TCP: publish one emotion message, then poll until
it arrives (so it includes validation, JSON encoding and decoding on both ends).
"""

from __future__ import annotations

import argparse
import statistics
import time

from moodloop.engine import Emotion, MockSensor, Publisher, Subscriber

ANY_PORT = "tcp://127.0.0.1:*"


def realistic_emotion() -> Emotion:
    """One emotion message exactly as the mock sensor makes them (7 labels, all fields)."""
    with Publisher(ANY_PORT) as pub:
        return next(m for m in MockSensor("engaged", pub, seed=0).step() if isinstance(m, Emotion))


SAMPLE = realistic_emotion()


def connected(pub: Publisher, sub: Subscriber) -> None:
    """Wait out ZeroMQ's slow joiner, then leave nothing queued."""
    while not sub.poll():
        pub.publish(SAMPLE)
        time.sleep(0.005)
    time.sleep(0.05)
    sub.poll()


def latencies(pub: Publisher, sub: Subscriber, count: int, rate: float) -> list[float]:
    result = []
    for _ in range(count):
        start = time.perf_counter()
        pub.publish(SAMPLE)
        while not sub.poll():
            pass
        result.append(time.perf_counter() - start)
        time.sleep(max(0.0, 1.0 / rate - (time.perf_counter() - start)))
    return result


def poll_costs(pub: Publisher, sub: Subscriber, queued: int, repeats: int = 300) -> list[float]:
    result = []
    for _ in range(repeats):
        for _ in range(queued):
            pub.publish(SAMPLE)
        time.sleep(0.002 if queued else 0.0)  # let them reach the subscriber's queue
        start = time.perf_counter()
        received = sub.poll()
        result.append(time.perf_counter() - start)
        while len(received) < queued:  # stragglers: not part of the measured call
            received += sub.poll()
    return result


def percentile(values: list[float], p: float) -> float:
    return statistics.quantiles(values, n=100)[round(p) - 1] if p < 100 else max(values)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=2000, help="messages for the latency test")
    parser.add_argument("--rate", type=float, default=200.0, help="messages per second")
    args = parser.parse_args()
    with Publisher(ANY_PORT) as pub, Subscriber(pub.endpoint) as sub:
        connected(pub, sub)
        latency = latencies(pub, sub, args.count, args.rate)
        rows = [(f"publish -> receive, {args.count} msgs @ {args.rate:g}/s", latency)]
        rows += [(f"Subscriber.poll(), {n} queued", poll_costs(pub, sub, n)) for n in (0, 1, 5)]
    print(f"{'measurement':<44} {'p50 µs':>9} {'p99 µs':>9} {'max µs':>9}")
    for name, values in rows:
        p50, p99, worst = (percentile(values, p) * 1e6 for p in (50, 99, 100))
        print(f"{name:<44} {p50:9.1f} {p99:9.1f} {worst:9.1f}")


if __name__ == "__main__":
    main()
