"""Log-weight increments of tempered (annealed) distributions."""

from __future__ import annotations

import torch


def softplus_increment(p_new: torch.Tensor, da: torch.Tensor) -> torch.Tensor:
    """softplus(a_new) - softplus(a_old) per unit, from p_new = sigmoid(a_new) and da = a_new - a_old::

        softplus(a_new) - softplus(a_old) = -log1p(sigmoid(a_new) expm1(-da))

    The naive difference of two softplus values cancels catastrophically for
    the tiny steps of an AIS schedule; this form is small and keeps full
    relative precision in the input dtype. Used by RBM and DBM AIS.
    """
    return -torch.log1p(p_new * torch.expm1(-da))
