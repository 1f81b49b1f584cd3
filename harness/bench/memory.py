"""Memory while a benchmark point runs: the process's peak resident set and what the host has free."""

from __future__ import annotations

import os
import threading
from pathlib import Path


class PeakRss:
    """Peak resident set size of this process during the block. Linux resets the high-water mark
    (``echo 5 > /proc/self/clear_refs``) and reports it (``VmHWM``) at no cost while timing; where
    that is unavailable a thread samples the RSS every 2 ms instead (a small perturbation)."""

    def __init__(self) -> None:
        self.baseline = self.peak = _rss()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.exact = False

    def _run(self) -> None:
        while not self._stop.wait(0.002):
            self.peak = max(self.peak, _rss())

    def __enter__(self) -> PeakRss:
        try:
            Path("/proc/self/clear_refs").write_text("5")
            self.exact = _hwm() is not None
        except OSError:
            self.exact = False
        if not self.exact:
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
        self.peak = max(self.peak, _hwm() or 0, _rss())


def _hwm() -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return None


def _rss() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def available_memory(device: str) -> int | None:
    """Bytes that can still be allocated (CPU: MemAvailable); None when unknown."""
    if device != "cpu":
        return None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return None



__all__ = ["PeakRss", "available_memory"]
