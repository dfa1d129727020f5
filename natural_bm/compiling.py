"""``torch.compile`` with a graceful fall-back to eager execution.

torch.compile needs a working compiler tool chain (a C++ compiler on the
CPU, Triton on a GPU); where it is missing the first call raises. A
:class:`CompiledFunction` then warns once and runs the plain function from
then on, so the library keeps working, only slower. Errors that the eager
function raises too (bad shapes, for example) propagate unchanged.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch

__all__ = ["CompiledFunction"]


class CompiledFunction:
    """Call ``torch.compile(fn, **compile_kwargs)``; on a compiler failure, ``fn`` itself.

    Args:
        fn: a pure tensor function (no Python side effects).
        name: what the warning calls it.
        **compile_kwargs: passed to ``torch.compile`` (default ``dynamic=False``).
    """

    def __init__(self, fn: Callable, name: str, **compile_kwargs) -> None:
        self.fn = fn
        self.name = name
        self.compile_kwargs = {"dynamic": False, **compile_kwargs}
        self._compiled: Callable | None = None
        self.failed = False
        self.compiled_calls = 0  # calls answered by the compiled function (tests assert it ran)

    def __call__(self, *args):
        if self.failed:
            return self.fn(*args)
        if self._compiled is None:
            self._compiled = torch.compile(self.fn, **self.compile_kwargs)
        try:
            out = self._compiled(*args)
            self.compiled_calls += 1
            return out
        except Exception as err:
            out = self.fn(*args)  # raises too if the error is not the compiler's
            self.failed = True
            warnings.warn(f"torch.compile failed for the {self.name} ({type(err).__name__}: {err}); "
                          "running it eagerly from now on (slower, same maths).", RuntimeWarning, stacklevel=2)
            return out
