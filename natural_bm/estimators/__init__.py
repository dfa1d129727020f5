"""Estimators: exact log Z by enumeration, AIS (forward and reverse), log-likelihoods (per-image AIS of
log p*(v) for DBMs)."""

from natural_bm.estimators.ais import AIS, default_betas, effective_sample_size, log_mean_exp_band
from natural_bm.estimators.ais_engine import EngineOptions
from natural_bm.estimators.exact import log_partition_exact
from natural_bm.estimators.likelihood import dbn_log_likelihood_bound, log_likelihood
from natural_bm.estimators.posterior_ais import log_prob_ais
from natural_bm.estimators.raise_ais import RaiseEstimate, raise_log_likelihood
from natural_bm.estimators.report import EvaluationReport, evaluate_model
from natural_bm.estimators.trajectory import TrajectoryAIS

__all__ = [
    "AIS",
    "EngineOptions",
    "EvaluationReport",
    "dbn_log_likelihood_bound",
    "default_betas",
    "effective_sample_size",
    "evaluate_model",
    "log_likelihood",
    "log_mean_exp_band",
    "log_partition_exact",
    "log_prob_ais",
    "RaiseEstimate",
    "raise_log_likelihood",
    "TrajectoryAIS",
]
