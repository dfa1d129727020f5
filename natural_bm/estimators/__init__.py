"""Estimators: exact log Z by enumeration, AIS (forward and reverse), log-likelihoods."""

from natural_bm.estimators.ais import AIS, default_betas, effective_sample_size, log_mean_exp_band
from natural_bm.estimators.exact import log_partition_exact
from natural_bm.estimators.likelihood import log_likelihood

__all__ = [
    "AIS",
    "default_betas",
    "effective_sample_size",
    "log_likelihood",
    "log_mean_exp_band",
    "log_partition_exact",
]
