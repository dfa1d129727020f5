"""The fit loop's autograd mode (``training.fit.update_mode``): inference mode for CPU updates, and what
that asks of code that runs inside an update."""

import torch
from conftest import random_rbm

from natural_bm.datasets import bars_and_stripes
from natural_bm.training.algorithms import Algorithm, StepInfo
from natural_bm.training.fit import update_mode


def test_cpu_updates_run_in_inference_mode_and_other_devices_without_grad():
    assert update_mode(torch.device("cpu")) is torch.inference_mode
    assert update_mode(torch.device("cuda")) is torch.no_grad


class _AutogradPositivePhase(Algorithm):
    """The positive phase only, its gradient by autograd: d/dtheta of -mean F(v) (the docstring's recipe)."""

    name = "autograd-positive"
    seen_inference_mode = None

    def step(self, model, v, state, generator, clamp=None):
        type(self).seen_inference_mode = torch.is_inference_mode_enabled()
        with torch.inference_mode(False), torch.enable_grad():
            params = {n: p.detach().clone().requires_grad_() for n, p in model.parameter_dict().items()}
            x = params["hbias"] + v.clone() @ params["W"]
            mean_neg_f = (v.clone() @ params["vbias"] + torch.nn.functional.softplus(x).sum(1)).mean()
            grads = dict(zip(params, torch.autograd.grad(mean_neg_f, list(params.values())), strict=True))
        return grads, StepInfo(torch.zeros(v.shape[0], dtype=v.dtype)), state


def test_an_algorithm_needing_autograd_trains_inside_the_cpu_update():
    model = random_rbm(9, 4, seed=0)
    x = torch.as_tensor(bars_and_stripes(3), dtype=model.dtype)
    before = {n: p.clone() for n, p in model.parameter_dict().items()}
    model.compile("sgd", _AutogradPositivePhase())
    model.fit(x, batch_size=x.shape[0], epochs=1, verbose=0, seed=0, shuffle=False)
    assert _AutogradPositivePhase.seen_inference_mode is True
    # one SGD step (lr 0.01) along the analytic positive statistics: <v h^T>, <v>, <h> with h = p(h | v)
    p_h = torch.sigmoid(before["hbias"] + x @ before["W"])
    expected = {"W": x.T @ p_h / x.shape[0], "vbias": x.mean(0), "hbias": p_h.mean(0)}
    for name, grad in expected.items():
        torch.testing.assert_close(model.parameter_dict()[name], before[name] + 0.01 * grad, rtol=0, atol=1e-6)
