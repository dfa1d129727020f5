"""The ``natural-bm`` command: train, logz, sample, summary, inspect, export, snapshot, demo.

A MODEL argument (logz, sample, inspect, export) is a model file (``model.save``'s ``.pt``, or a portable
``.npz``/``.safetensors`` from ``export``), a results folder of ``natural-bm train`` (its ``model.pt``,
scored with the run's data and transform), or the name of a shipped model (``natural_bm.pretrained``:
``natural-bm logz rbm500-cd25-anneal``, scored on its data set). ``summary`` takes a results folder or
a shipped name.

Counts are spelled as the config and the Python API spell them: ``--n-runs``, ``--n-betas``,
``--n-chains``, ``--n-samples`` (``betas`` and ``chains`` are the schedule and the states themselves in
``natural_bm.estimators.AIS`` and the samplers); the old spellings are refused with their new names.

Exit status:

* 0: done.
* 2: an error (missing or damaged file, bad config key or value, unavailable device, results folder in
  use, unwritable or full disk...), printed as one line ``natural-bm: error: ...`` on stderr.
* 3: a ``train`` whose weights diverged (``TerminateOnNaN``): ``results.json`` and ``summary.txt`` say so
  and ``--resume`` continues from the last finite checkpoint.
* 75 (``EXIT_PREEMPTED``, sysexits' EX_TEMPFAIL): a ``train`` pre-empted by SIGTERM, SIGUSR1 or the
  ``--signal`` it was given: it stopped after the current update, its newest checkpoint (the last epoch
  boundary) is intact, and ``natural-bm train --resume DIR`` continues it bit-identically. A requeue
  script tests for 75 (``scripts/slurm_requeue.sh``).
* 130: interrupted (Ctrl-C).

Every file is written atomically, so an error, a kill or Ctrl-C never leaves half a file; an
interrupted ``train`` resumes with ``--resume``. Warnings print as one line each,
``natural-bm: warning: ...`` (a command's user has no source line to be shown).
"""

from __future__ import annotations

import contextlib
import os
import sys
import warnings

from natural_bm import distributed
from natural_bm.cli.commands import COMMANDS
from natural_bm.cli.errors import EXIT_DIVERGED, EXIT_ERROR, EXIT_INTERRUPTED, CLIError
from natural_bm.cli.parser import _parser
from natural_bm.io import LockedError
from natural_bm.run.preemption import EXIT_PREEMPTED, Preempted

__all__ = ["CLIError", "EXIT_DIVERGED", "EXIT_ERROR", "EXIT_INTERRUPTED", "EXIT_PREEMPTED", "main"]


def _one_line(err: BaseException) -> str:
    """The error as one line: OSErrors as 'what: file', anything multi-line joined."""
    if isinstance(err, OSError) and err.strerror and err.filename:
        text = f"{err.strerror}: {err.filename}"
    else:
        text = str(err) or type(err).__name__
    return " ".join(part.strip() for part in text.splitlines() if part.strip())


def _warning_line(message, category, filename, lineno, line=None) -> str:
    """A warning as the command prints it: ``natural-bm: warning: MESSAGE`` (``warnings.formatwarning``'s
    signature; no file, line number or source line)."""
    return f"natural-bm: warning: {message}\n"


@contextlib.contextmanager
def _one_line_warnings():
    """``warnings.formatwarning`` set to ``_warning_line`` for the command's duration (put back after, so a
    caller of ``main`` in Python keeps its own format; recorders such as pytest's are untouched)."""
    saved = warnings.formatwarning
    warnings.formatwarning = _warning_line
    try:
        yield
    finally:
        warnings.formatwarning = saved


def main(argv: list[str] | None = None) -> int:
    with _one_line_warnings():
        return _main(argv)


def _main(argv: list[str] | None) -> int:
    try:
        args = _parser().parse_args(argv)
    except CLIError as err:  # a retired flag: its new name
        print(f"natural-bm: error: {err}", file=sys.stderr)
        return EXIT_ERROR
    try:
        if args.command in ("train", "logz"):  # under torchrun: join the process group (data-parallel)
            if distributed.init_from_environment() and distributed.rank() != 0:
                sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - one report, rank 0's, for all ranks
        return COMMANDS[args.command](args)
    except Preempted as err:
        print(f"natural-bm: {err}; continue with: natural-bm train --resume RESULTS_DIR", file=sys.stderr)
        return EXIT_PREEMPTED
    except (CLIError, OSError, ValueError, ImportError, LockedError) as err:
        print(f"natural-bm: error: {_one_line(err)}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        hint = " (continue with: natural-bm train --resume RESULTS_DIR)" if args.command == "train" else ""
        print(f"natural-bm: interrupted{hint}", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
