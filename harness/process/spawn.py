"""Worker processes: started isolated, tied to the driver's life, and always reaped.

Every worker (conformance, bench, describe) is started here:

* ``python -P -m <module>``: ``-P`` keeps the current directory off ``sys.path``, and
  ``PYTHONPATH`` starts with the directory this harness is installed in, so a ``harness/``
  (or ``torch.py``) in the current directory is never imported. User adapters given as
  ``package.module:factory`` are looked up in the current directory only when the request
  names one, and then after every installed package (`USER_PATH_ENV`).
* In its own session (process group), so a Ctrl-C at the terminal reaches the driver, which
  then ends its workers; every live worker's group is killed on exit (`kill_all`, also run
  by ``atexit`` and by the command line's SIGTERM handler).
* The worker asks the kernel for SIGKILL when the driver dies (``PR_SET_PDEATHSIG``, Linux),
  and exits at once if the driver is already gone: a SIGKILL of the driver leaves nothing.
* The request goes through the worker's stdin and messages come back on a pipe
  (`harness.process.channel`); stdout and stderr go to a pipe whose last lines are kept in memory
  (the reason an error row gives). No temporary files or folders.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

PARENT_ENV = "RMSPROP_HARNESS_PARENT"
USER_PATH_ENV = "RMSPROP_HARNESS_USER_PATH"
ROOT = Path(__file__).resolve().parents[2]  # where the harness and reference packages are installed

# Workers run side by side on one GPU: JAX would take 75% of its memory per process and TensorFlow all of
# it, so the second worker would fail to start. These only change how memory is reserved, never the
# arithmetic; a user's own setting wins.
GPU_SHARING = {"XLA_PYTHON_CLIENT_PREALLOCATE": "false", "TF_FORCE_GPU_ALLOW_GROWTH": "true"}

_LIVE: set[subprocess.Popen] = set()
_LOCK = threading.Lock()


def child_env(extra: dict[str, str], user_path: str | None = None, root: Path = ROOT) -> dict[str, str]:
    """A worker's environment: ours plus ``extra``; this installation (or ``root``, an A/B side's
    source tree) first on ``PYTHONPATH``."""
    env = {**GPU_SHARING, **os.environ, **extra, "PYTHONUNBUFFERED": "1", PARENT_ENV: str(os.getpid())}
    if "XLA_FLAGS" in os.environ and "XLA_FLAGS" in extra:  # the user's XLA flags (an ISA cap) stay, ours added
        env["XLA_FLAGS"] = f"{os.environ['XLA_FLAGS']} {extra['XLA_FLAGS']}"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(root), os.environ.get("PYTHONPATH")) if p)
    env.pop(USER_PATH_ENV, None)
    if user_path is not None:
        env[USER_PATH_ENV] = user_path
    return env


class Worker:
    """A started worker: ``proc``, the read end of its message pipe, and the tail of its output."""

    def __init__(self, module: str, args: list[str], env_extra: dict[str, str], request: bytes | None,
                 user_path: str | None = None, python: str = sys.executable, root: Path = ROOT,
                 script: str | None = None, keep_stdin: bool = False):
        """``module`` is run with ``-m``, or ``script`` by path when given; ``keep_stdin`` leaves
        stdin open for commands (`command`) after the request."""
        read_fd, write_fd = os.pipe()
        self.read_fd = read_fd
        self.tail: collections.deque[str] = collections.deque(maxlen=40)
        try:
            self.proc = subprocess.Popen(
                [python, "-P", *([script] if script else ["-m", module]), str(write_fd), *args],
                env=child_env(env_extra, user_path, root), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, pass_fds=(write_fd,), start_new_session=True, close_fds=True)
        finally:
            os.close(write_fd)
        with _LOCK:
            _LIVE.add(self.proc)
        self._drain = threading.Thread(target=self._read_output, daemon=True)
        self._drain.start()
        if keep_stdin:
            return
        with contextlib.suppress(BrokenPipeError, OSError):  # a worker that died at once says so on read
            if request is not None:
                self.proc.stdin.write(request)
            self.proc.stdin.close()

    def command(self, line: bytes) -> None:
        """One more line on the worker's stdin (workers started with ``request=None``)."""
        self.proc.stdin.write(line)
        self.proc.stdin.flush()

    def _read_output(self) -> None:
        for raw in iter(self.proc.stdout.readline, b""):
            line = raw.decode(errors="replace").rstrip()
            if line.strip():
                self.tail.append(line[:500])

    def last_line(self) -> str:
        self._drain.join(timeout=2)
        return self.tail[-1].strip()[:300] if self.tail else "no output"

    def kill(self) -> None:
        _kill(self.proc)

    def close(self, timeout: float = 30) -> int | None:
        """Wait for the worker (killing it after ``timeout``) and release the pipe; its exit code."""
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill(self.proc)
            code = self.proc.wait()
        _kill_group(self.proc)  # anything the framework left behind in the worker's group
        with contextlib.suppress(OSError):
            os.close(self.read_fd)
        self._drain.join(timeout=2)
        with contextlib.suppress(OSError):
            self.proc.stdout.close()
        with _LOCK:
            _LIVE.discard(self.proc)
        return code


def _kill_group(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def _kill(proc: subprocess.Popen) -> None:
    _kill_group(proc)
    with contextlib.suppress(ProcessLookupError):
        proc.kill()


def kill_all() -> None:
    """Kill every live worker and its process group (the driver is exiting)."""
    with _LOCK:
        procs = list(_LIVE)
    for proc in procs:
        _kill(proc)
        with contextlib.suppress(Exception):
            proc.wait(timeout=5)


atexit.register(kill_all)


# ------------------------------------------------------------------ the worker's side
def worker_start() -> None:
    """Called first in every worker: die with the driver, and let user adapters be found."""
    parent = int(os.environ.get(PARENT_ENV, "0") or 0)
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(Exception):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    if parent and os.getppid() != parent:  # the driver died before the signal was armed
        os._exit(70)
    user_path = os.environ.get(USER_PATH_ENV)
    if user_path and user_path not in sys.path:
        sys.path.append(user_path)  # after every installed package: a user module never shadows one


__all__ = ["ROOT", "Worker", "child_env", "kill_all", "worker_start"]
