"""Estimators: exact log Z by enumeration, AIS (forward and reverse), log-likelihoods."""

from natural_bm.estimators.ais import AIS, default_betas, effective_sample_size, log_mean_exp_band
from natural_bm.estimators.exact import log_partition_exact
from natural_bm.estimators.likelihood import dbn_log_likelihood_bound, log_likelihood

__all__ = [
    "AIS",
    "dbn_log_likelihood_bound",
    "default_betas",
    "effective_sample_size",
    "log_likelihood",
    "log_mean_exp_band",
    "log_partition_exact",
]
