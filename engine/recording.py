"""JSON-lines recordings of the event stream: one ``to_record`` object per line.

``moodloop listen --record``, ``moodloop sensor --record`` and ``Publisher(record=...)`` write
them, always to a new file; ``moodloop mock --replay`` plays them back with their original timing.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from moodloop.engine.errors import ConfigError, DataError, ProtocolError
from moodloop.engine.lifecycle import Closeable
from moodloop.engine.protocol import Message, from_record, to_record

if TYPE_CHECKING:
    from moodloop.engine.publisher import Publisher

__all__ = ["Recorder", "record_line", "open_recording", "read_recording", "replay"]

log = logging.getLogger(__name__)


def record_line(msg: Message) -> str:
    """Return ``msg`` as one compact JSON line (without the newline): a recording's line format."""
    return json.dumps(to_record(msg), separators=(",", ":"))


class Recorder(Closeable):
    """Writes messages to a new JSON-lines file, one flushed line each.

    Flushing every line keeps a recording usable even when the process is killed. An existing
    file is never overwritten: a mistyped ``--record`` must not destroy a video or a model.
    A pipe or a terminal (``/dev/stdout``, a FIFO) holds nothing to destroy and is written to.

    Args:
        path: File to create (it must not exist yet), or a pipe or character device.

    Raises:
        ConfigError: The file exists already or cannot be created.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            stream = self.path.is_fifo() or self.path.is_char_device()
            self._file = self.path.open("a" if stream else "x", encoding="utf-8")
        except FileExistsError:
            raise ConfigError(
                f"The recording file {self.path} already exists; nothing was overwritten. Choose a "
                "new name or delete that file."
            ) from None
        except OSError as exc:
            raise ConfigError(
                f"Cannot write the recording {self.path}: {exc.strerror}. Choose another path."
            ) from None

    def write(self, msg: Message) -> None:
        """Append one message as a JSON line.

        Raises:
            ConfigError: The line could not be written (e.g. the disk is full); the recording
                is closed, keeping the lines written before.
            BrokenPipeError: The program reading a piped recording stopped (closed likewise).
        """
        try:
            self._file.write(record_line(msg) + "\n")
            self._file.flush()
        except OSError as exc:
            # Closing flushes the unwritten line again and fails again: close() must not.
            with contextlib.suppress(OSError):
                self._file.close()
            if isinstance(exc, BrokenPipeError):  # the reader of a piped recording stopped: not an error
                raise
            raise ConfigError(
                f"Could not write to the recording {self.path}: {exc.strerror}. The lines before "
                "are kept; free some disk space or record to another disk."
            ) from None

    def close(self) -> None:
        """Close the file; further writes fail."""
        self._file.close()


def open_recording(path: Path) -> TextIO:
    """Open a recording for reading, or raise a DataError that says how to make one."""
    try:
        return path.open(encoding="utf-8", errors="replace")  # a damaged line is skipped, not fatal
    except OSError as exc:
        raise DataError(
            f"Cannot read the recording {path}: {exc.strerror}. Make one with "
            "`moodloop listen --record FILE`."
        ) from None


def read_recording(path: str | Path) -> Iterator[Message]:
    """Yield the messages of a JSON-lines recording in file order.

    Lines that are not valid v1 records (such as a last line cut short by a kill) are skipped
    with a warning.

    Args:
        path: The recording to read.

    Raises:
        DataError: The file cannot be opened.
    """
    path = Path(path)
    with open_recording(path) as file:
        for number, line in enumerate(file, 1):
            if not line.strip():
                continue
            try:
                yield from_record(json.loads(line))
            except (ValueError, RecursionError, ProtocolError) as exc:
                log.warning("%s:%d: skipped a bad record: %s", path, number, exc)


def replay(
    path: str | Path, publisher: Publisher, *, stop: threading.Event | None = None
) -> int:
    """Republish a recording, spacing messages as their capture times ``t`` were spaced.

    The times are moved to the replay's (the first message's ``t`` becomes now, the ``since`` of
    a state or heartbeat moves with it): a game judges a message's freshness by ``t``.

    Args:
        path: The recording to play.
        publisher: Where to publish (it restamps ``seq`` and ``source``).
        stop: Set it to end the replay early.

    Returns:
        How many messages were published.

    Raises:
        DataError: The file cannot be opened.
    """
    stop = stop or threading.Event()
    count = 0
    start, now = time.monotonic(), time.time()
    first_t: float | None = None
    for msg in read_recording(path):
        first_t = msg.t if first_t is None else first_t
        # Out-of-order timestamps (t going backwards) publish at once rather than wait.
        delay = (msg.t - first_t) - (time.monotonic() - start)
        if stop.wait(max(delay, 0.0)):
            break
        publisher.publish(_moved(msg, now - first_t))
        count += 1
    return count


def _moved(msg: Message, seconds: float) -> Message:
    """``msg`` with its times (``t``, and the ``since`` of a state or heartbeat) moved by ``seconds``."""
    since = getattr(msg, "since", None)
    if since is None:
        return replace(msg, t=msg.t + seconds)
    return replace(msg, t=msg.t + seconds, since=since + seconds)
