"""Training with a tempering ladder that tunes itself (``compile(..., "pt", adaptive=True)``)."""

import math

import torch

from natural_bm import RBM, SGD, load_model
from natural_bm.datasets import bars_and_stripes


def _data():
    return torch.as_tensor(bars_and_stripes(200, 3, seed=0), dtype=torch.float32)


def _model():
    return RBM(9, 6, seed=0).compile(SGD(0.05, momentum=0.5), "pt", k=1, n_chains=20, n_temperatures=3,
                                     min_beta=0.3, adaptive=True, target=0.25)


def test_adaptive_ladder_logs_its_rates_and_resumes_bit_identically(tmp_path):
    x = _data()
    full = _model()
    hist = full.fit(x, batch_size=20, epochs=4, verbose=0, seed=3)
    assert {"swap_rate_min", "swap_rate_max", "n_temperatures"} <= set(hist.history)
    assert not any(k.startswith("swap_rate_") and k[10:].isdigit() for k in hist.history)  # no per-pair columns
    rates = [r for r in hist.history["swap_rate_min"] + hist.history["swap_rate_max"] if not math.isnan(r)]
    assert rates and all(0 <= r <= 1 for r in rates)
    assert all(n >= 2 for n in hist.history["n_temperatures"])
    assert full.trainer.algorithm.get_config()["adaptive"] is True

    half = _model()
    half.fit(x, batch_size=20, epochs=2, verbose=0, seed=3)
    path = half.save(tmp_path / "half.pt")
    resumed = load_model(path)
    assert resumed.trainer.algorithm.adaptive
    resumed.fit(x, batch_size=20, epochs=4, initial_epoch=2, verbose=0, seed=3)
    for name, p in full.parameter_dict().items():
        assert torch.equal(p, resumed.parameter_dict()[name]), name
    ladder = full.trainer.algorithm_state.sampler.betas
    assert torch.equal(ladder, resumed.trainer.algorithm_state.sampler.betas)
