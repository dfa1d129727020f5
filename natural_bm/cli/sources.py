"""What a MODEL argument names (a file, a results folder, a shipped model) and the thread count."""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch

import natural_bm.pretrained as pretrained
import natural_bm.run as run
from natural_bm.io import first_line
from natural_bm.run.checkpoints import MODEL_NAME


@dataclass(frozen=True)
class ModelSource:
    """What a MODEL argument names: the model file, the run that wrote it (its results folder and resolved
    config, where the folder's ``config.json`` is a run's), and the catalogue entry of a shipped model."""

    path: Path
    run_folder: Path | None = None
    run_config: dict | None = None
    shipped: pretrained.Pretrained | None = None


def model_source(arg: str) -> ModelSource:
    """Resolve a MODEL argument (see the module docstring); FileNotFoundError names what is missing."""
    if pretrained.is_name(arg):
        entry = next(e for e in pretrained.list() if e.path == pretrained.path(arg))
        return ModelSource(entry.path, shipped=entry)
    path = Path(arg)
    if path.is_dir():
        if not (path / MODEL_NAME).is_file():
            done = (path / "config.json").is_file()
            raise FileNotFoundError(f"{path} holds no {MODEL_NAME}" + (
                f": its run has not finished (natural-bm train --resume {path} continues it)" if done else
                ": give a model file, a results folder of natural-bm train or a shipped model's name") + ".")
        path = path / MODEL_NAME
    elif not path.exists():
        hint = ""
        if os.sep not in arg and "/" not in arg and not path.suffix:  # a name, mistyped?
            try:
                pretrained.path(arg)
            except ValueError as err:
                hint = f"; nor is it a shipped model's name: {first_line(err)}"
        raise FileNotFoundError(f"model file not found: {path}{hint}")
    cfg = _run_config(path.parent)
    return ModelSource(path, run_folder=None if cfg is None else path.parent, run_config=cfg)


def _run_config(folder: Path) -> dict | None:
    """The resolved config of the run in ``folder``, None where its ``config.json`` is missing or not a run's."""
    if not (folder / "config.json").is_file():
        return None
    try:
        return run.read_run_config(folder)
    except (run.ConfigError, ValueError):  # not a natural-bm train config (the demo's)
        return None


@contextmanager
def _torch_threads(n: int | None):
    """torch's CPU threads set to ``n`` (None: left as they are) for the block, and put back after."""
    before = torch.get_num_threads()
    if n is None:
        yield before
        return
    torch.set_num_threads(n)
    try:
        yield n
    finally:
        torch.set_num_threads(before)
