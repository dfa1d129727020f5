"""One evaluation of a trained model: log Z three ways, the bracket, and the log-likelihoods they imply.

``evaluate_model`` runs what is asked of it and returns an ``EvaluationReport``:

* forward AIS (``logZ``, its -3/+3 sigma band ``logZ_lo``/``logZ_hi``, ``ais_ess``), biased low;
* reverse AIS (``logZ_reverse``, ``ais_ess_reverse``), biased high when its chains start from the model:
  the two bracket log Z when reverse >= forward (``brackets``, ``bracket`` in words);
* exact log Z by enumeration (``logZ_exact``), where feasible;
* for every data split (``train``, ``valid``, ``test``, or any name): the mean log-likelihood with its
  standard error over rows, with the exact log Z, with log p*(v) importance-sampled (DBMs: tighter than
  the mean-field bound), and the conservative figures ``ll - (logZ_reverse - logZ)``;
* per-image AIS of log p*(v) on the first test rows (DBMs), a check on importance sampling;
* RAISE (``natural_bm.estimators.raise_log_likelihood``) on the first test rows: per-image reverse
  annealing from each image, a conservative (biased low) estimate of log p(v) that needs no log Z,
  with its standard error over images and the images' mean effective number of chains.

All values are nats (per image for log-likelihoods). ``natural-bm logz``, the finishing step of
``natural-bm train``, ``AISCallback`` and the demo all use it; ``EvaluationReport.to_dict`` gives the keys
of ``results.json``, ``str`` the text ``natural-bm logz`` prints, ``_repr_html_`` a table for notebooks.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from natural_bm.estimators.ais import AIS, describe_bracket
from natural_bm.estimators.ais_engine import EngineOptions
from natural_bm.estimators.exact import log_partition_exact
from natural_bm.estimators.likelihood import log_likelihood
from natural_bm.estimators.raise_ais import raise_log_likelihood

__all__ = ["AISRuns", "EvaluationReport", "ForwardAIS", "PosteriorAIS", "RaiseAIS", "RaiseLikelihood", "ReverseAIS",
           "SplitLikelihood", "conservative_log_likelihood", "evaluate_model"]


def conservative_log_likelihood(ll: float, log_z: float, log_z_reverse: float) -> float:
    """A log-likelihood computed with ``log_z``, moved to reverse AIS's ``log_z_reverse``: biased low when
    the reverse chains start from the model, so the pessimistic end of the bracket (nats)."""
    return ll - (log_z_reverse - log_z)


@dataclass(frozen=True)
class AISRuns:
    """The annealing of forward and reverse AIS: runs, betas (None: the 14,501 schedule), the layers
    annealed (``AIS``'s ``parity``) and the seed of their random numbers."""

    n_runs: int = 100
    n_betas: int | None = None
    parity: int | str = "auto"
    seed: int = 0


@dataclass(frozen=True)
class ReverseAIS:
    """Reverse AIS: its chains start from ``start`` (persistent chains, as layer states or visible rows,
    e.g. ``model.algorithm.model_chains()``), else from rows of ``data``, and run ``n_gibbs`` sweeps first."""

    start: Any = None
    n_gibbs: int = 1000
    data: Any = None


@dataclass(frozen=True)
class PosteriorAIS:
    """Per-image AIS of log p*(v) on the first ``rows`` test rows (None: all): ``n_chains`` runs of ``n_betas``
    betas each."""

    n_chains: int
    n_betas: int
    rows: int | None = None


@dataclass(frozen=True)
class RaiseAIS:
    """RAISE on the first ``rows`` test rows (None: all): ``n_chains`` reverse chains per image, annealed
    through ``n_betas`` betas (``raise_log_likelihood``'s defaults: 10 and 1000)."""

    n_chains: int = 10
    n_betas: int = 1000
    rows: int | None = None


@dataclass
class RaiseLikelihood:
    """RAISE's test figure (nats per image): the mean of the per-image estimates, its standard error over
    images, the mean effective number of chains per image (1 to ``n_chains``), and what was run."""

    ll: float
    ll_stderr: float
    ess: float
    n_chains: int
    n_betas: int
    rows: int


@dataclass
class ForwardAIS:
    """A forward AIS estimate (nats): ``logZ`` with its band, effective runs, and how it was annealed (the
    numbers of runs and betas, the layers annealed)."""

    logZ: float
    logZ_lo: float
    logZ_hi: float
    ais_ess: float
    n_runs: int | None = None
    n_betas: int | None = None
    annealed_layers: list[int] | None = None


@dataclass
class SplitLikelihood:
    """Mean log-likelihood of one split's rows (nats per image) and its standard error over rows."""

    ll: float
    ll_stderr: float
    ll_exact: float | None = None
    ll_importance: float | None = None
    ll_importance_stderr: float | None = None


@dataclass
class EvaluationReport:
    """What ``evaluate_model`` measured; see the module docstring for every quantity (nats)."""

    forward: ForwardAIS
    splits: dict[str, SplitLikelihood] = field(default_factory=dict)
    logZ_reverse: float | None = None
    ais_ess_reverse: float | None = None
    logZ_exact: float | None = None
    exact_error: str | None = None
    importance_samples: int | None = None
    posterior: PosteriorAIS | None = None
    posterior_ll: tuple[float, float] | None = None  # (mean, stderr) of the per-image AIS figure
    importance_same_rows: float | None = None  # the importance-sampled figure of the posterior rows
    raise_ll: RaiseLikelihood | None = None  # RAISE on the first test rows
    data: str | None = None  # what the rows are (the data set), as recorded

    @property
    def logZ(self) -> float:
        return self.forward.logZ

    @property
    def brackets(self) -> bool | None:
        """Whether reverse >= forward, so that the two bracket log Z (None without reverse AIS)."""
        return None if self.logZ_reverse is None else bool(self.logZ_reverse >= self.logZ)

    @property
    def bracket(self) -> str | None:
        band = (self.forward.logZ_lo, self.forward.logZ_hi)
        return None if self.logZ_reverse is None else describe_bracket(self.logZ, self.logZ_reverse, band)

    def conservative(self, ll: float) -> float | None:
        """``ll`` with the reverse log Z (None without reverse AIS)."""
        return None if self.logZ_reverse is None else conservative_log_likelihood(ll, self.logZ, self.logZ_reverse)

    def to_dict(self) -> dict:
        """The flat dict of ``results.json`` and ``natural-bm logz --json`` (their key names)."""
        f = self.forward
        out: dict = {"logZ": f.logZ, "logZ_lo": f.logZ_lo, "logZ_hi": f.logZ_hi, "ais_ess": f.ais_ess}
        out.update({k: v for k, v in (("runs", f.n_runs), ("betas", f.n_betas),
                                      ("annealed_layers", f.annealed_layers)) if v is not None})
        if self.logZ_reverse is not None:
            out.update(logZ_reverse=self.logZ_reverse, ais_ess_reverse=self.ais_ess_reverse, brackets=self.brackets,
                       bracket=self.bracket)
        if self.logZ_exact is not None or self.exact_error is not None:
            out["logZ_exact"] = self.logZ_exact
            if self.exact_error is not None:
                out["exact_error"] = self.exact_error
        for name, s in self.splits.items():
            out[f"{name}_ll"], out[f"{name}_ll_stderr"] = s.ll, s.ll_stderr
            if s.ll_exact is not None:
                out[f"{name}_ll_exact"] = s.ll_exact
            if self.logZ_reverse is not None:
                out[f"{name}_ll_reverse"] = self.conservative(s.ll)
            if s.ll_importance is not None:
                out[f"{name}_ll_importance"], out[f"{name}_ll_importance_stderr"] = s.ll_importance, \
                    s.ll_importance_stderr
                if self.logZ_reverse is not None:
                    out[f"{name}_ll_importance_reverse"] = self.conservative(s.ll_importance)
        if self.importance_samples is not None:
            out["importance_samples"] = self.importance_samples
        if self.posterior_ll is not None:
            out.update(posterior_ais_chains=self.posterior.n_chains, posterior_ais_betas=self.posterior.n_betas,
                       posterior_rows=self.posterior.rows, test_ll_posterior_ais=self.posterior_ll[0],
                       test_ll_posterior_ais_stderr=self.posterior_ll[1])
            if self.importance_same_rows is not None:
                out["test_ll_importance_same_rows"] = self.importance_same_rows
        if self.raise_ll is not None:
            r = self.raise_ll
            out.update(raise_chains=r.n_chains, raise_betas=r.n_betas, raise_rows=r.rows, test_ll_raise=r.ll,
                       test_ll_raise_stderr=r.ll_stderr, test_ll_raise_ess=r.ess)
        if self.data is not None:
            out["data"] = self.data
        return out

    def lines(self) -> list[tuple[str, str]]:
        """(quantity, value in words) rows: what ``__str__`` and ``_repr_html_`` show."""
        f, rows = self.forward, []
        how = f", {f.n_runs} runs x {f.n_betas} betas, layers {f.annealed_layers} annealed" if f.n_runs else ""
        rows.append((f"log Z (AIS{how})", f"{_fmt(f.logZ)} [-3 sigma {_fmt(f.logZ_lo)}, +3 sigma "
                                          f"{_fmt(f.logZ_hi)}] nats, {f.ais_ess:.1f} effective runs"))
        if self.logZ_reverse is not None:
            rows.append(("log Z (reverse AIS)", f"{_fmt(self.logZ_reverse)} nats; {self.bracket}"))
        if self.logZ_exact is not None or self.exact_error is not None:
            rows.append(("log Z (exact)", _fmt(self.logZ_exact) if self.exact_error is None else self.exact_error))
        for name, s in self.splits.items():
            rows.append((f"{name} log-likelihood", f"{_fmt(s.ll)} ± {_fmt(s.ll_stderr)} nats"
                                                   f"{self._other_log_z(s.ll, s.ll_exact)}"))
            if s.ll_importance is not None:
                rows.append((f"{name} log-likelihood, importance-sampled ({self.importance_samples} draws)",
                             f"{_fmt(s.ll_importance)} ± {_fmt(s.ll_importance_stderr)} nats"
                             f"{self._other_log_z(s.ll_importance)}"))
        if self.posterior_ll is not None:
            p = self.posterior
            same = (f"; importance-sampled on the same rows: {_fmt(self.importance_same_rows)}"
                    if self.importance_same_rows is not None else "")
            rows.append((f"test log-likelihood, per-image AIS ({p.n_chains} chains x {p.n_betas} betas, first "
                         f"{p.rows} rows)", f"{_fmt(self.posterior_ll[0])} ± {_fmt(self.posterior_ll[1])} nats{same}"))
        if self.raise_ll is not None:
            r = self.raise_ll
            rows.append((f"test log-likelihood, RAISE ({r.n_chains} chains x {r.n_betas} betas, first {r.rows} rows)",
                         f"{_fmt(r.ll)} ± {_fmt(r.ll_stderr)} nats (conservative), {r.ess:.1f} effective chains "
                         f"per image"))
        if self.data is not None:
            rows.append(("data", self.data))
        return rows

    def _other_log_z(self, ll: float, ll_exact: float | None = None) -> str:
        """`` (reverse log Z: ...; exact log Z: ...)``: ``ll`` with the other estimates of log Z, where made."""
        parts = [] if self.logZ_reverse is None else [f"reverse log Z: {_fmt(self.conservative(ll))}"]
        parts += [] if ll_exact is None else [f"exact log Z: {_fmt(ll_exact)}"]
        return f" ({'; '.join(parts)})" if parts else ""

    def __str__(self) -> str:
        return "\n".join(f"{name}: {value}" for name, value in self.lines())

    def _repr_html_(self) -> str:
        body = "".join(f"<tr><th style='text-align:left'>{html.escape(name)}</th><td style='text-align:left'>"
                       f"{html.escape(value)}</td></tr>" for name, value in self.lines())
        return f"<table class='natural-bm-evaluation'>{body}</table>"


def _fmt(x: float | None) -> str:
    return "nan" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.4f}"


def evaluate_model(model, *, data: Mapping[str, Any] | None = None, base_data=None, ais: AISRuns = AISRuns(),
                   forward: ForwardAIS | None = None, exact: bool = False, log_z_exact: float | None = None,
                   reverse: ReverseAIS | None = None, importance_samples: int | None = None,
                   posterior: PosteriorAIS | None = None, raise_ais: RaiseAIS | None = None, seed: int = 0,
                   data_name: str | None = None, progress: bool = False,
                   engine: EngineOptions | None = None) -> EvaluationReport:
    """Estimate log Z and the log-likelihoods of ``model``; see the module docstring.

    Args:
        model: a trained ``RBM`` or ``DBM``.
        data: ``{split name: rows (n, n_visible)}``; None rows are skipped. Each split gets ``<name>_ll``.
        base_data: rows whose means make AIS's base model (None: the uniform base model).
        ais: runs, betas, parity and seed of forward and reverse AIS.
        forward: a forward AIS estimate already made (e.g. during training, by ``AISCallback``): not rerun.
        exact: also log Z by enumeration (``exact_error`` says why not, where it is infeasible).
        log_z_exact: an exact log Z already computed: used instead of enumerating again.
        reverse: run reverse AIS from these chains (None: no reverse AIS).
        importance_samples: K: also every split's log-likelihood with log p*(v) from K importance draws.
        posterior: also the test rows' log-likelihood by per-image AIS (needs a ``test`` split).
        raise_ais: also the test rows' log-likelihood by RAISE (needs a ``test`` split; its base model is
            made from ``base_data`` as AIS's, uniform without).
        seed: the random numbers of importance sampling and per-image AIS.
        data_name: what the rows are, recorded in the report (``data``).
        progress: progress bars for AIS.
        engine: how AIS anneals (``natural_bm.estimators.ais_engine.EngineOptions``; None: the defaults).

    Returns:
        The ``EvaluationReport``.
    """
    splits = {name: rows for name, rows in (data or {}).items() if rows is not None}
    estimator = None
    if forward is None or reverse is not None:
        estimator = AIS(model, data=base_data, n_runs=ais.n_runs, n_betas=ais.n_betas,
                        base="data" if base_data is not None else "uniform", seed=ais.seed, progress=progress,
                        parity=ais.parity, engine=engine)
    if forward is None:
        z, lo, hi = estimator.estimate_log_error_Z()
        forward = ForwardAIS(z, lo, hi, estimator.ess, ais.n_runs, len(estimator.betas), estimator.annealed_layers)
    report = EvaluationReport(forward=forward, importance_samples=importance_samples, data=data_name)
    if reverse is not None:
        report.logZ_reverse = estimator.run_reverse(v_init=reverse.start, n_gibbs=reverse.n_gibbs, data=reverse.data)
        report.ais_ess_reverse = estimator.ess_reverse
    if log_z_exact is not None:
        report.logZ_exact = log_z_exact
    elif exact:
        try:
            report.logZ_exact = log_partition_exact(model, progress=False)
        except ValueError as err:
            report.exact_error = str(err)
    for name, rows in splits.items():
        report.splits[name] = _split_likelihood(model, rows, forward.logZ, report.logZ_exact, importance_samples,
                                                seed)
    if posterior is not None and splits.get("test") is not None:
        _posterior(report, model, splits["test"], posterior, importance_samples, seed)
    if raise_ais is not None and splits.get("test") is not None:
        report.raise_ll = _raise(model, splits["test"], raise_ais, base_data, ais.parity, seed, progress, engine)
    return report


def _split_likelihood(model, rows, log_z: float, log_z_exact: float | None, importance_samples: int | None,
                      seed: int) -> SplitLikelihood:
    ll, se = log_likelihood(model, rows, log_z)
    out = SplitLikelihood(ll, se)
    if log_z_exact is not None:
        out.ll_exact = log_likelihood(model, rows, log_z_exact)[0]
    if importance_samples is not None:
        out.ll_importance, out.ll_importance_stderr = log_likelihood(model, rows, log_z,
                                                                     importance_samples=importance_samples, seed=seed)
    return out


def _posterior(report: EvaluationReport, model, test, posterior: PosteriorAIS, importance_samples, seed: int) -> None:
    rows = test[: posterior.rows]
    report.posterior = PosteriorAIS(posterior.n_chains, posterior.n_betas, len(rows))
    report.posterior_ll = log_likelihood(model, rows, report.logZ, ais_chains=posterior.n_chains,
                                         ais_betas=posterior.n_betas, seed=seed)
    if importance_samples is not None:  # the whole test set's figure when the rows are all of it
        report.importance_same_rows = (report.splits["test"].ll_importance if len(rows) == len(test) else
                                       log_likelihood(model, rows, report.logZ, importance_samples=importance_samples,
                                                      seed=seed)[0])


def _raise(model, test, settings: RaiseAIS, base_data, parity, seed: int, progress: bool,
           engine: EngineOptions | None) -> RaiseLikelihood:
    rows = test[: settings.rows]
    estimate = raise_log_likelihood(model, rows, n_chains=settings.n_chains, n_betas=settings.n_betas,
                                    base="data" if base_data is not None else "uniform", data=base_data, seed=seed,
                                    parity=parity, progress=progress, engine=engine)
    return RaiseLikelihood(estimate.mean, estimate.stderr, float(estimate.ess.double().mean()), settings.n_chains,
                           settings.n_betas, len(rows))
