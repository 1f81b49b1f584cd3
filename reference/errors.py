"""`InputError`: the one exception type for bad input, so bugs keep their traceback.

Every error a user can cause (a bad suite, argument, file or folder) raises a subclass of
`InputError` with a one-line message; the command line prints that line and exits 2.
Anything else is a bug in the harness and keeps its traceback. The presets mimic the
frameworks (a bad argument raises ``TypeError`` or ``ValueError`` as the framework would),
so their errors are both: `PresetTypeError` and `PresetValueError`.
"""

from __future__ import annotations


class InputError(Exception):
    """Bad input from the user: a one-line message, exit code 2 on the command line."""


class InputValueError(InputError, ValueError):
    """A value that is out of range or malformed."""


class InputTypeError(InputError, TypeError):
    """An argument of the wrong type or an unknown argument."""


class InputKeyError(InputError, KeyError):
    """An unknown name (preset, adapter); prints as its message, not as a quoted key."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


__all__ = ["InputError", "InputKeyError", "InputTypeError", "InputValueError"]
