"""The `moodloop` entry point: how any command's failure reaches the user."""

from __future__ import annotations

import argparse
import errno
import os
import subprocess
import sys
import threading

import pytest
from engine_support import ANY_PORT, status

from moodloop.engine import Publisher
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




def test_a_reader_that_stops_early_ends_the_command_quietly():
    """`moodloop listen | head -1`: listen exits 0 once head has gone, without a traceback."""
    stop = threading.Event()

    def keep_publishing() -> None:
        while not stop.wait(0.01):
            pub.publish(status())

    with Publisher(ANY_PORT) as pub:
        publisher = threading.Thread(target=keep_publishing)
        publisher.start()
        argv = [sys.executable, "-m", "moodloop.engine.cli", "listen", "--endpoint", pub.endpoint]
        listen = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert listen.stdout.readline().startswith('{"topic":"moodloop.status"')
            listen.stdout.close()  # what head does after its line
            listen.wait(timeout=10)
        finally:
            stop.set()
            publisher.join()
            listen.kill()
    assert (listen.returncode, listen.stderr.read().splitlines()[1:]) == (0, [])  # only "listening on ..."
