"""The `moodloop` entry point: how any command's failure reaches the user."""

from __future__ import annotations

import argparse
import errno
import os

import pytest

from moodloop.engine.cli import run_command
from moodloop.engine.errors import DataError


def failing(exc: BaseException) -> argparse.Namespace:
    def func(args: argparse.Namespace) -> int:
        raise exc

    return argparse.Namespace(func=func)


def test_a_moodloop_error_is_one_line_and_exit_2(capsys):
    assert run_command(failing(DataError("No images in x: give a folder of class folders."))) == 2
    assert capsys.readouterr().err == "moodloop: error: No images in x: give a folder of class folders.\n"


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT, errno.EFBIG])
def test_a_full_disk_is_a_message_not_a_traceback(code, capsys):
    assert run_command(failing(OSError(code, os.strerror(code), "out/report.json"))) == 2
    assert capsys.readouterr().err == (f"moodloop: error: a write to out/report.json failed: {os.strerror(code)}. "
                                       "Free some space or write elsewhere, then run the command again.\n")


def test_other_os_errors_keep_their_traceback():
    with pytest.raises(ConnectionResetError):
        run_command(failing(ConnectionResetError(errno.ECONNRESET, "reset")))


def test_ctrl_c_exits_130():
    assert run_command(failing(KeyboardInterrupt())) == 130
