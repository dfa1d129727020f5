"""``torch.compile`` with a graceful fall-back to eager execution.

torch.compile needs a working compiler tool chain (a C++ compiler on the
CPU, Triton on a GPU); where it is missing the first call raises. A
:class:`CompiledFunction` then warns once and runs the plain function from
then on, so the library keeps working, only slower. Errors that the eager
function raises too (bad shapes, for example) propagate unchanged.

Compiled kernels are cached by inductor in natural_bm's cache folder
(``$NATURAL_BM_CACHE/inductor``, default ``~/.cache/natural_bm/inductor``),
unless ``TORCHINDUCTOR_CACHE_DIR`` is set, so a second process reuses them
instead of building the C++ again (torch's default, a folder under /tmp, does
not survive a reboot).

``worth_compiling(work)`` is the rule estimators use to choose: compiling
costs seconds once per process and shape, so a job whose arithmetic is
small runs eagerly.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import torch

from natural_bm.io import cache_dir
from natural_bm.validation import warn_user

__all__ = ["CompiledFunction", "COMPILE_WORK_THRESHOLD", "worth_compiling"]

os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(cache_dir() / "inductor"))

#: multiply-adds below which compiling does not pay back its one-off cost (see ``worth_compiling``)
COMPILE_WORK_THRESHOLD = 2e9


def worth_compiling(work: float) -> bool:
    """Whether a job of ``work`` multiply-adds should be compiled.

    Measured on the 2-core project machine: a cold compilation of the AIS step
    costs 5 to 12 s (and 74 s against 186 s for a whole ``natural-bm logz`` of
    a 9x8 model on a loaded machine), while eager torch runs about 1e9
    multiply-adds per second in the products of a small model. Below
    ``COMPILE_WORK_THRESHOLD`` (2e9, a couple of seconds eagerly) compiling
    cannot pay back; a 784x500 AIS (5.7e11) and a 784x20 one (2.3e10) compile.
    """
    return float(work) >= COMPILE_WORK_THRESHOLD


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
            warn_user(f"torch.compile failed for the {self.name} ({type(err).__name__}: {err}); "
                          "running it eagerly from now on (slower, same maths).", RuntimeWarning)
            return out
