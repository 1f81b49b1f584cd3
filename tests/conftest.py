"""Test tiers: a test that drives a real framework end to end is also ``slow``, so the quick tier
(`./dev test`: ``-m "not slow"``) skips it; `./dev test --all` and CI run everything."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("framework") is not None:
            item.add_marker(pytest.mark.slow)
