"""Honest run states: a run ended by a signal is KILLED; one whose process vanished is FAILED, with the reason.

- :class:`Interrupted` is what SIGINT and SIGTERM raise in the main thread while :func:`interruptible` is active
  (the CLI): the runner ends every run it has open (the stage, a seed group, the pipeline) KILLED on it, and the
  CLI exits with the conventional code, 128 + the signal (130, 143). It is a ``KeyboardInterrupt``, so code that
  rightly catches ``Exception`` does not swallow it, and a plain Ctrl-C in a notebook also ends runs KILLED.
- :class:`ProcessIdentity`: every run records the host, pid and pid namespace of the process that runs it. A
  run still RUNNING whose process no longer exists (``kill -9``, a crash, a power cut) can then be told apart
  from one that is running: the tracker marks it FAILED the next time a command runs on that host
  (``Tracker.fail_dead_runs``). Runs of other hosts, of other pid namespaces (another container with the same
  host name) and of live processes are never touched; a reused pid only delays the marking.
"""

from __future__ import annotations

import os
import platform
import signal
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

INTERRUPTING = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """A signal asked the process to stop; ``exit_code`` is the shell's convention for it (128 + signal)."""

    def __init__(self, signum: int):
        self.signum = signum
        self.signal_name = signal.Signals(signum).name
        super().__init__(f"interrupted by {self.signal_name}")

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def exit_code(interruption: KeyboardInterrupt) -> int:
    """130 for a plain Ctrl-C, 128 + signal for an :class:`Interrupted`."""
    return interruption.exit_code if isinstance(interruption, Interrupted) else 128 + signal.SIGINT


@contextmanager
def interruptible() -> Iterator[None]:
    """While active, SIGINT and SIGTERM raise :class:`Interrupted` (main thread only; elsewhere nothing changes).

    SIGTERM's default ends the process on the spot, leaving its runs RUNNING; raising lets every open run end
    KILLED on the way out.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def raise_interrupted(signum, frame):
        raise Interrupted(signum)

    previous = {signum: signal.signal(signum, raise_interrupted) for signum in INTERRUPTING}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@dataclass(frozen=True)
class ProcessIdentity:
    """Which process runs a run: host name, pid, and the pid namespace the pid means something in."""

    host: str
    pid: int
    namespace: str = ""  # "pid:[4026531836]" on Linux; "" where the system has no such notion

    @classmethod
    def current(cls) -> ProcessIdentity:
        return cls(platform.node(), os.getpid(), _pid_namespace())

    def is_ours_to_judge(self) -> bool:
        """True when this process can tell whether that one is alive: same host and pid namespace."""
        here = ProcessIdentity.current()
        return self.host == here.host and self.namespace == here.namespace

    def is_gone(self) -> bool:
        """The process no longer exists (or is a zombie: dead, its exit status not yet collected).

        Only meaningful when :meth:`is_ours_to_judge`; a pid reused by a new process counts as alive.
        """
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False  # exists, owned by another user
        stat = Path(f"/proc/{self.pid}/stat")
        try:
            state = stat.read_text().rpartition(")")[2].split()[0]
        except (OSError, IndexError):
            return False
        return state == "Z"


def _pid_namespace() -> str:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""
