"""Log-likelihoods from a log partition function."""

from __future__ import annotations

import math

import torch

from natural_bm.estimators.posterior_ais import log_prob_ais
from natural_bm.rng import RandomSource
from natural_bm.validation import as_data_tensor, check_positive_int, warn_user

UNIFORM_MARGIN = 1.0  # nats per image below -n_visible log 2 before log_likelihood warns


def log_likelihood(model, x, log_z: float, batch_size: int = 10_000, importance_samples: int | None = None,
                   seed: int = 0, ais_chains: int | None = None, ais_betas: int = 1000) -> tuple[float, float]:
    """Mean and standard error over rows of log p(v) = -F(v) - log Z (nats per image).

    Args:
        model: an RBM (``free_energy``) or a DBM (its ``log_prob_bound`` is used:
            the variational lower bound on -F, see ``natural_bm.models.dbm``).
        x: (n, n_visible) data in [0, 1].
        log_z: log partition function (exact, or an AIS estimate).
        importance_samples: K; when given, -F(v) comes from ``model.log_prob_importance`` with K
            draws per row (random numbers from ``seed``) instead: for a DBM a stochastic lower bound
            whose expectation is at least the mean-field bound and tightens as K grows; for an RBM
            the same exact value.
        ais_chains: when given (instead of ``importance_samples``), -F(v) comes from
            ``natural_bm.estimators.posterior_ais.log_prob_ais``: per image, ``ais_chains`` AIS runs of
            ``ais_betas`` betas from the mean-field posterior to the true one (random numbers from
            ``seed``); also a stochastic lower bound, tighter than importance sampling from q for the
            same number of draws, and a check on it.

    The standard error is std(log p(v)) / sqrt(n); it covers the spread over
    test images, not the uncertainty of ``log_z`` (report AIS's band separately).

    Warns (RuntimeWarning) when ``x`` is not binary: for binary visible units
    -F(v) - log Z of grey levels is not a log-likelihood. Raises ValueError
    for non-finite parameters or ``log_z``. Warns
    (RuntimeWarning) when the mean is more than ``UNIFORM_MARGIN`` (1 nat)
    below the uniform model's -n_visible log 2: the model is worse than
    knowing nothing, which usually means training diverged (learning rate
    too high). The margin keeps a barely trained, near-uniform model whose
    AIS estimate errs by a fraction of a nat from warning.
    """
    model.check_finite("log_likelihood")
    if importance_samples is not None and ais_chains is not None:
        raise ValueError("give `importance_samples` or `ais_chains`, not both: they are two estimators of -F(v).")
    if importance_samples is not None or ais_chains is not None:
        gen = RandomSource(seed, model.device)
    if importance_samples is not None:
        importance_samples = check_positive_int(importance_samples, "importance_samples")
    if ais_chains is not None:
        ais_chains = check_positive_int(ais_chains, "ais_chains")
        ais_betas = check_positive_int(ais_betas, "ais_betas", minimum=2)
    given = log_z
    try:
        log_z = float(log_z)
    except (TypeError, ValueError, RuntimeError):
        log_z = math.nan
    if not math.isfinite(log_z):
        raise ValueError(f"`log_z` must be a finite number of nats, got {given!r}; an AIS estimate of -inf or "
                         f"NaN means the annealing failed: anneal longer or check the model.")
    x = as_data_tensor(x, "x", model.n_input, device=model.device, dtype=model.dtype, value_range=model.data_range)
    if model.binary_visible and bool(((x != 0) & (x != 1)).any()):
        warn_user("log_likelihood of grey-level data: the model's visible units are binary, so -F(v) - log Z "
                      "of values between 0 and 1 is not a log-likelihood of anything; evaluate on binary data, "
                      "e.g. load_mnist('sampled').", RuntimeWarning)
    scores = []
    with torch.no_grad():
        for lo in range(0, x.shape[0], batch_size):
            v = x[lo : lo + batch_size]
            if importance_samples is not None:
                scores.append(model.log_prob_importance(v, importance_samples, gen))
            elif ais_chains is not None:
                scores.append(log_prob_ais(model, v, ais_chains, ais_betas, gen))
            else:
                scores.append(model.unnormalized_log_prob(v).double())
    s = torch.cat(scores) - log_z
    se = float(s.std(unbiased=True)) / math.sqrt(len(s)) if len(s) > 1 else 0.0
    mean = float(s.mean())
    uniform = -model.n_input * math.log(2.0)  # a density of real values has no such baseline
    if model.binary_visible and mean < uniform - UNIFORM_MARGIN:
        warn_user(f"mean log-likelihood {mean:.2f} nats is below the uniform model's {uniform:.2f} "
                      f"(-{model.n_input} log 2): the model is worse than guessing; training probably diverged "
                      f"(lower the learning rate).", RuntimeWarning)
    return mean, se


def dbn_log_likelihood_bound(dbn, x, log_z_top: float, n_samples: int = 10, batch_size: int = 1000,
                             seed: int = 0) -> tuple[float, float]:
    """Mean and standard error (nats) of Salakhutdinov & Murray's lower bound on log p(x) of a ``DBN``
    (``DBN.log_prob_bound``), with ``log_z_top`` the top RBM's log partition function (exact or AIS;
    an AIS estimate that is too low makes the bound too high). ``x`` must be binary."""
    gen = RandomSource(seed, dbn.top.device)
    x = as_data_tensor(x, "x", dbn.n_visible, device=dbn.top.device, dtype=dbn.top.dtype)
    if bool(((x != 0) & (x != 1)).any()):
        raise ValueError("the DBN bound needs binary data; binarise it first, e.g. load_mnist('sampled').")
    s = torch.cat([dbn.log_prob_bound(x[lo : lo + batch_size], log_z_top, n_samples, gen)
                   for lo in range(0, x.shape[0], batch_size)])
    se = float(s.std(unbiased=True)) / math.sqrt(len(s)) if len(s) > 1 else 0.0
    return float(s.mean()), se
