"""A stand-in adapter for worker tests: behaves per ``case["behaviour"]``."""

from __future__ import annotations

import os

import numpy as np


def available() -> str | None:
    return os.environ.get("FAKE_ADAPTER_MISSING")


def run_case(case: dict) -> dict[str, np.ndarray]:
    behaviour = case["behaviour"]
    if behaviour == "raise":
        raise RuntimeError("boom")
    if behaviour == "crash":
        os._exit(3)  # a segfaulting framework, as far as the parent can tell
    if behaviour == "hang":
        import time

        time.sleep(60)
    return {n: np.repeat(p[None], 2, axis=0) for n, p in case["params0"].items()}
