"""Independent numpy reference implementations (brute force over all states)."""

from __future__ import annotations

import itertools

import numpy as np
from scipy.special import logsumexp


def all_states(n: int) -> np.ndarray:
    return np.array(list(itertools.product([0.0, 1.0], repeat=n)))


def params(model):
    return (model.W.detach().double().numpy(), model.vbias.detach().double().numpy(),
            model.hbias.detach().double().numpy())


def energy(W, b, c, v, h):
    return -np.einsum("ni,ij,nj->n", v, W, h) - v @ b - h @ c


def log_joint_table(W, b, c, beta=1.0):
    """Unnormalised log p(v, h) for all states: (2^nv, 2^nh), plus the state lists."""
    V, H = all_states(W.shape[0]), all_states(W.shape[1])
    E = -(V @ W @ H.T) - (V @ b)[:, None] - (H @ c)[None, :]
    return -beta * E, V, H


def log_z(W, b, c, beta=1.0) -> float:
    table, _, _ = log_joint_table(W, b, c, beta)
    return float(logsumexp(table))


def free_energy(W, b, c, v, beta=1.0):
    """-log sum_h exp(-beta E(v, h)) by enumerating h."""
    H = all_states(W.shape[1])
    E = -(v @ W @ H.T) - (v @ b)[:, None] - (H @ c)[None, :]
    return -logsumexp(-beta * E, axis=1)


def exact_gradient(W, b, c, data):
    """Gradient of the mean log-likelihood of binary ``data`` by full enumeration."""
    table, V, H = log_joint_table(W, b, c)
    p = np.exp(table - logsumexp(table))  # p(v, h)
    model_vh = V.T @ p @ H
    model_v = p.sum(1) @ V
    model_h = p.sum(0) @ H
    ph = 1 / (1 + np.exp(-(data @ W + c)))
    n = len(data)
    return {
        "W": data.T @ ph / n - model_vh,
        "vbias": data.mean(0) - model_v,
        "hbias": ph.mean(0) - model_h,
    }
