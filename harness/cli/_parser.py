"""The argument parser every command shares: argparse's errors as one line, exit 2."""

from __future__ import annotations

import argparse

from reference import implementations

PROG = "rmsprop-harness"


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse prints usage + message; keep one line
        self.exit(2, f"{self.prog}: error: {message}\n")


def frameworks(parity_only: bool = False) -> str:
    """The implementations' names for help texts (from the records)."""
    names = implementations.parity_presets() if parity_only else implementations.names()
    return ", ".join(names)


__all__ = ["PROG", "Parser", "frameworks"]
