"""The annealing schedule of AIS: inverse temperatures from 0 (base model) to 1 (the model)."""

from __future__ import annotations

import torch

from natural_bm.validation import check_positive_int


def default_betas(n_betas: int | None = None, dtype=torch.float64) -> torch.Tensor:
    """The annealing schedule of Salakhutdinov & Murray's code.

    Steps of 1e-3 from 0 to 0.5, 1e-4 from 0.5 to 0.9 and 1e-5 from 0.9 to 1
    (14,501 distinct betas, 14,500 steps). With ``n_betas`` the same three
    segments keep their share of the steps (500 : 4000 : 10000).
    """
    if n_betas is None:
        segments = [(0.0, 0.5, 500), (0.5, 0.9, 4000), (0.9, 1.0, 10000)]
    else:
        n_betas = check_positive_int(n_betas, "n_betas", minimum=2)
        steps = n_betas - 1
        n1 = max(1, round(steps * 500 / 14500))
        n2 = max(1, round(steps * 4000 / 14500)) if steps > 2 else 0
        n3 = steps - n1 - n2
        if n3 < 1:
            n1, n2, n3 = steps, 0, 0
            segments = [(0.0, 1.0, n1)]
        else:
            segments = [(0.0, 0.5, n1), (0.5, 0.9, n2), (0.9, 1.0, n3)]
    parts = [torch.linspace(lo, hi, n + 1, dtype=torch.float64)[:-1] for lo, hi, n in segments if n > 0]
    return torch.cat([*parts, torch.ones(1, dtype=torch.float64)]).to(dtype)


def betas_or_default(betas=None, n_betas: int | None = None) -> torch.Tensor:
    """``betas`` checked (increasing from 0 to 1, at least two values; float64), else
    ``default_betas(n_betas)``."""
    if betas is None:
        return default_betas(n_betas)
    betas = torch.as_tensor(betas, dtype=torch.float64).flatten()
    if len(betas) < 2 or betas[0] != 0 or betas[-1] != 1 or bool((betas[1:] < betas[:-1]).any()):
        raise ValueError("`betas` must increase from 0 to 1 (at least two values).")
    return betas
