"""Which log Z estimates a run makes: by enumeration, by AIS, or both, decided from the ``ais`` section and
the model before training (``ais.exact: auto``, the default: enumeration instead of AIS where it is feasible).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["EVERY_EPOCH_STATES", "MAX_EXACT_STATES", "LogZPlan", "log_z_plan"]

#: the most states ``ais.exact: auto`` enumerates (and ``true`` computes at all)
MAX_EXACT_STATES = 2**20
#: models with at most this many states get the exact log Z at every epoch (the last one otherwise)
EVERY_EPOCH_STATES = 2**16


@dataclass(frozen=True)
class LogZPlan:
    """How the run estimates log Z: ``ais`` (forward AIS, and reverse with ``ais.reverse``), ``exact``
    (enumeration), ``states`` (the model's states to enumerate; None when it has no binary parity),
    ``exact_every_epoch`` (exact-only runs: at every epoch, else at the last) and ``method`` in words, as
    ``results.json`` records it (``logZ_method``)."""

    ais: bool
    exact: bool
    states: int | None
    exact_every_epoch: bool = False

    @property
    def method(self) -> str:
        return "ais and exact" if self.ais and self.exact else "exact" if self.exact else "ais"

    def describe(self, cfg: dict) -> str:
        """One line for the start of the run: what it chose and how to choose otherwise."""
        a = cfg["ais"]
        states = "" if self.states is None else f"{self.states:,} states"
        if not self.ais:
            when = "at every epoch" if self.exact_every_epoch else "after the last epoch"
            return (f"log Z by enumeration ({states}, {when}; ais.exact: auto): no AIS (ais.exact: true adds it, "
                    f"false replaces the enumeration)")
        betas = "the 14,501-beta schedule" if a["n_betas"] is None else f"{a['n_betas']:,} betas"
        also = f", and by enumeration ({states})" if self.exact else ""
        return f"log Z by AIS ({a['n_runs']} runs, {betas}){also}"


def log_z_plan(cfg: dict, model) -> LogZPlan:
    """The ``LogZPlan`` of a resolved config and its built model (an RBM, a DBM, or a DBN's top RBM).

    ``ais.exact``: true (AIS and enumeration, where feasible), false (AIS only), auto (enumeration alone
    where the model has at most ``MAX_EXACT_STATES`` states and neither reverse AIS nor importance
    sampling is asked for, which need AIS; AIS otherwise).
    """
    a = cfg["ais"]
    try:
        states = model.n_exact_states()
    except ValueError:  # no binary parity to enumerate
        states = None
    feasible = states is not None and states <= MAX_EXACT_STATES
    if a["exact"] is True:  # (AISCallback enumerates where it can, as before ais.exact: auto)
        return LogZPlan(ais=True, exact=True, states=states)
    if a["exact"] is False or not feasible:
        return LogZPlan(ais=True, exact=False, states=states)
    needs_ais = a["reverse"] or a["importance_samples"] is not None
    return LogZPlan(ais=needs_ais, exact=True, states=states,
                    exact_every_epoch=not needs_ais and states <= EVERY_EPOCH_STATES)
