"""The command line's errors and exit statuses (documented in ``natural_bm.cli``)."""

from __future__ import annotations

__all__ = ["CLIError", "EXIT_DIVERGED", "EXIT_ERROR", "EXIT_INTERRUPTED"]

EXIT_ERROR, EXIT_DIVERGED, EXIT_INTERRUPTED = 2, 3, 130


class CLIError(Exception):
    pass
