"""One kind of error for everything a user can get wrong.

The command line turns an InputError into a single line `where: what` and
exit code 2; nothing else in the package prints tracebacks at users.
"""

from __future__ import annotations


class InputError(Exception):
    """Bad input from the user: a file, a line of a file, a flag or a checkpoint."""

    def __init__(self, where: str, message: str, line: int | None = None):
        self.where = str(where)
        self.line = line
        self.message = message
        super().__init__(str(self))

    def __str__(self) -> str:
        loc = self.where if self.line is None else f"{self.where}:{self.line}"
        return f"{loc}: {self.message}"
