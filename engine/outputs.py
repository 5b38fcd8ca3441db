"""Checks that a command's output paths can be written, made before any slow work starts.

A training run, an evaluation or a game can take minutes to hours; a mistyped output path
must fail at once, not when the results are ready to be written. Nothing is created here, so
a command that fails later leaves no empty folder behind; the writers create missing folders.
"""

from __future__ import annotations

import os
from pathlib import Path

from moodloop.engine.errors import ConfigError

__all__ = ["writable_folder", "writable_file"]


def writable_folder(path: Path, option: str) -> None:
    """Refuse ``path`` unless it is, or can become, a folder to write in.

    Args:
        path: the output folder; missing folders are fine.
        option: the command-line option that named it, for the message.

    Raises:
        ConfigError: ``path`` is a file, or its nearest existing parent is not a folder you can write in.
    """
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{option} {path} is a file; give a folder (it is created if missing).")
    _writable_ancestor(path, option)


def writable_file(path: Path, option: str) -> None:
    """Refuse ``path`` unless a file can be written there (its folders are created if missing).

    Args:
        path: the output file; an existing file is replaced.
        option: the command-line option that named it, for the message.

    Raises:
        ConfigError: ``path`` is a folder, or its nearest existing parent is not a folder you can write in.
    """
    if path.is_dir():
        raise ConfigError(f"{option} {path} is a folder; give a file name.")
    _writable_ancestor(path.parent, option)


def _writable_ancestor(path: Path, option: str) -> None:
    existing = next(p for p in (path, *path.parents) if p.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"{option} {path}: {existing} is not a folder you can write in; give another {option}.")
