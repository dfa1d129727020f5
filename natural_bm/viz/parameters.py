"""``parameter_stats``: what a model's weights and biases look like, one row per parameter.

Pinned units (a bias far beyond what the weights can overturn) and unused layers (weights that never
grew) show here before they show as an AIS estimate that the two directions disagree on.
"""

from __future__ import annotations

import torch


def parameter_stats(model, pinned: float = 10.0) -> list[dict]:
    """One dict per trainable parameter of ``model`` (any model: ``parameter_dict()``).

    Weight matrices W (n_i, n_j): ``abs_max``, and the L2 norms of the columns (each unit of layer j's
    incoming weights, what max-norm bounds) and of the rows: ``col_norm_min``, ``col_norm_median``,
    ``col_norm_max``, ``row_norm_median``, ``row_norm_max``.
    Vectors (biases, ``log_sigma``): ``min``, ``max``, ``median``, ``beyond_pinned``, the number of
    entries with magnitude above ``pinned``, and ``pinned`` itself.
    Every row has ``name`` and ``shape``. Medians are the lower median (``torch.median``).
    """
    if not pinned > 0:
        raise ValueError(f"pinned must be a positive threshold (a bias magnitude), got {pinned!r}.")
    rows = []
    for name, p in model.parameter_dict().items():
        t = p.detach().to(device="cpu", dtype=torch.float64)
        row: dict = {"name": name, "shape": list(t.shape)}
        if t.dim() == 2:
            cols, lines = t.norm(dim=0), t.norm(dim=1)
            row.update(abs_max=t.abs().max().item(), col_norm_min=cols.min().item(),
                       col_norm_median=cols.median().item(), col_norm_max=cols.max().item(),
                       row_norm_median=lines.median().item(), row_norm_max=lines.max().item())
        else:
            t = t.reshape(-1)
            row.update(min=t.min().item(), max=t.max().item(), median=t.median().item(),
                       beyond_pinned=int((t.abs() > pinned).sum().item()), pinned=pinned)
        rows.append(row)
    return rows


def format_parameter_stats(rows: list[dict]) -> str:
    """The rows of ``parameter_stats`` as a plain-text table (matrices first, then vectors)."""
    mats = [r for r in rows if "abs_max" in r]
    vecs = [r for r in rows if "abs_max" not in r]
    out = []
    if mats:
        out.append(f"{'weights':<12} {'shape':>11} {'|w| max':>9} {'column norms: min':>18} {'median':>8} "
                   f"{'max':>8} {'row norms: median':>18} {'max':>8}")
        for r in mats:
            shape = "x".join(map(str, r["shape"]))
            out.append(f"{r['name']:<12} {shape:>11} {r['abs_max']:9.3f} {r['col_norm_min']:18.3f} "
                       f"{r['col_norm_median']:8.3f} {r['col_norm_max']:8.3f} {r['row_norm_median']:18.3f} "
                       f"{r['row_norm_max']:8.3f}")
    if vecs:
        if out:
            out.append("")
        pinned = vecs[0]["pinned"]  # one threshold for all rows of one parameter_stats call
        out.append(f"{'vector':<12} {'size':>6} {'min':>9} {'median':>9} {'max':>9} {f'|.| > {pinned:g}':>10}")
        for r in vecs:
            size = r["shape"][0] if r["shape"] else 1
            out.append(f"{r['name']:<12} {size:>6} {r['min']:9.3f} {r['median']:9.3f} {r['max']:9.3f} "
                       f"{r['beyond_pinned']:>10}")
    return "\n".join(out) + "\n"
