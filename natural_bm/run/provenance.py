"""How a run was made, as ``results.json`` records it: the command, the code (git commit, library versions),
the threads and the wall time."""

from __future__ import annotations

import datetime
import shlex
import subprocess
import sys
import time
from pathlib import Path

import torch

import natural_bm

__all__ = ["git_commit", "provenance"]

#: the repository that holds the natural_bm package (a source checkout), if it is one
SOURCE_ROOT = Path(natural_bm.__file__).resolve().parents[1]


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=SOURCE_ROOT, capture_output=True, text=True, timeout=30,
                              check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def git_commit() -> tuple[str | None, bool | None]:
    """(``git rev-parse HEAD`` of the checkout natural_bm runs from, whether its ``natural_bm/`` files differ
    from that commit); (None, None) for an installed package or without git."""
    commit = _git("rev-parse", "HEAD")
    if commit is None:
        return None, None
    status = _git("status", "--porcelain", "--", "natural_bm")
    return commit, None if status is None else bool(status)


def provenance(started: float, resumed: bool) -> dict:
    """What ``results.json`` records of the run: the command (``natural-bm train ...`` as typed), the working
    directory, the git commit and whether the package's files differed from it (``git_dirty``), the
    natural_bm and torch versions, torch's threads, and the wall time of this session in seconds from
    ``started`` (a ``time.time()``; ``resumed``: earlier sessions' time is not counted)."""
    commit, dirty = git_commit()
    now = time.time()
    return {
        "command": shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv and sys.argv[0] else None,
        "cwd": str(Path.cwd()),
        "git_commit": commit,
        "git_dirty": dirty,
        "natural_bm_version": natural_bm.__version__,
        "torch_version": torch.__version__,
        "threads": torch.get_num_threads(),
        "started": datetime.datetime.fromtimestamp(started, datetime.timezone.utc).isoformat(timespec="seconds"),
        "wall_time_s": now - started,
        "wall_time_of": "the session that finished the run (resumed: earlier sessions not counted)" if resumed
        else "the whole run (one session)",
    }
