"""A scikit-learn estimator: ``RBMTransformer``, an RBM that fits in Pipelines and grid searches.

It follows scikit-learn's ``BernoulliRBM`` (``fit``, ``partial_fit``,
``transform``, ``fit_transform``, ``score_samples`` as the pseudo-likelihood,
``components_``, ``intercept_hidden_``, ``intercept_visible_``) and is
trained by natural_bm (CD or PCD, momentum, any device). ``visible="auto"``
(default) uses binary visible units for data in [0, 1] and Gaussian ones
(sigma = 1) otherwise, so real-valued features work without rescaling;
standardise them first for a good fit. ``score_samples`` is the
pseudo-likelihood for binary units (as ``BernoulliRBM``) and, for Gaussian
ones, -F(v), the log-likelihood up to the model's log Z.

Needs scikit-learn (``pip install scikit-learn``).
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from natural_bm.models.rbm import RBM
from natural_bm.rng import RandomSource
from natural_bm.training import SGD

__all__ = ["RBMTransformer"]


class RBMTransformer(TransformerMixin, BaseEstimator):
    """An RBM as a scikit-learn transformer (features: p(h = 1 | v)).

    Args:
        n_components: hidden units.
        learning_rate, momentum: SGD settings.
        batch_size, n_iter: minibatch size and epochs of ``fit``.
        algorithm: ``"pcd"`` (as ``BernoulliRBM``) or ``"cd"``; ``k`` Gibbs steps per update.
        visible: ``"auto"``, ``"bernoulli"`` or ``"gaussian"`` (see the module docstring).
        random_state: seed (None: fresh).
        device: torch device for training (default CPU).
    """

    def __init__(self, n_components: int = 256, learning_rate: float = 0.1, momentum: float = 0.5,
                 batch_size: int = 10, n_iter: int = 10, algorithm: str = "pcd", k: int = 1,
                 visible: str = "auto", random_state=None, device: str = "cpu") -> None:
        self.n_components = n_components
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.batch_size = batch_size
        self.n_iter = n_iter
        self.algorithm = algorithm
        self.k = k
        self.visible = visible
        self.random_state = random_state
        self.device = device

    # ------------------------------------------------------------------ helpers
    def _seed(self) -> int:
        rs = self.random_state
        if isinstance(rs, np.random.RandomState):
            return int(rs.randint(0, 2**31 - 1))
        return int(np.random.SeedSequence(rs).generate_state(1)[0]) if rs is not None else int(
            np.random.SeedSequence().generate_state(1)[0])

    def _tensor(self, X) -> torch.Tensor:
        return torch.as_tensor(np.ascontiguousarray(X, dtype=np.float32), device=self.device)

    def _new_model(self, X: np.ndarray) -> RBM:
        if self.visible not in ("auto", "bernoulli", "gaussian"):
            raise ValueError(f"`visible` must be 'auto', 'bernoulli' or 'gaussian', got {self.visible!r}.")
        binary = self.visible == "bernoulli" or (self.visible == "auto" and X.min() >= 0 and X.max() <= 1)
        if self.visible == "bernoulli" and (X.min() < 0 or X.max() > 1):
            raise ValueError("visible='bernoulli' needs X in [0, 1]; rescale it or use visible='gaussian'.")
        self._seed_ = self._seed()
        model = RBM(X.shape[1], int(self.n_components), seed=self._seed_, device=self.device,
                    units=None if binary else ["gaussian", "bernoulli"])
        model.init_from_data(self._tensor(X))
        kwargs = {"k": int(self.k)} | ({"n_chains": int(min(self.batch_size, X.shape[0]))}
                                       if self.algorithm == "pcd" else {})
        model.compile(SGD(float(self.learning_rate), float(self.momentum)), self.algorithm, **kwargs)
        self._epoch_ = 0
        return model

    def _sync(self) -> None:
        m = self.model_
        self.components_ = m.W.detach().cpu().numpy().T.copy()
        self.intercept_hidden_ = m.hbias.detach().cpu().numpy().copy()
        self.intercept_visible_ = m.vbias.detach().cpu().numpy().copy()

    # ------------------------------------------------------------------ scikit-learn API
    def fit(self, X, y=None):
        """Train a new RBM for ``n_iter`` epochs on X (n_samples, n_features); returns self."""
        X = validate_data(self, X, dtype=(np.float64, np.float32))
        self.model_ = self._new_model(X)
        self.model_.fit(self._tensor(X), batch_size=int(self.batch_size), epochs=int(self.n_iter), verbose=0,
                        seed=self._seed_)
        self._epoch_ = int(self.n_iter)
        self._sync()
        return self

    def partial_fit(self, X, y=None):
        """One epoch on X, creating the RBM on the first call; returns self."""
        first = not hasattr(self, "model_")
        X = validate_data(self, X, dtype=(np.float64, np.float32), reset=first)
        if first:
            self.model_ = self._new_model(X)
        self.model_.fit(self._tensor(X), batch_size=int(self.batch_size), epochs=self._epoch_ + 1,
                        initial_epoch=self._epoch_, verbose=0, seed=self._seed_)
        self._epoch_ += 1
        self._sync()
        return self

    def transform(self, X):
        """p(h = 1 | v) of each row: (n_samples, n_components)."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=(np.float64, np.float32), reset=False)
        with torch.no_grad():
            out = self.model_.prob_h_given_v(self._tensor(X))
        return out.cpu().numpy().astype(X.dtype, copy=False)

    def score_samples(self, X):
        """Pseudo-log-likelihood of each row (binary visible units; one random unit flipped per row, as
        ``BernoulliRBM``), or -F(v) for Gaussian visible units: (n_samples,) nats."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=(np.float64, np.float32), reset=False)
        m = self.model_.detached_copy(dtype=torch.float64)  # rows scored alike in any batch (float64)
        with torch.no_grad():
            v = self._tensor(X).double()
            if m.binary_visible:
                v = (v > 0.5).to(v.dtype) if bool(((v != 0) & (v != 1)).any()) else v
                out = m.pseudo_log_likelihood(v, RandomSource(self._seed_, v.device))
            else:
                out = -m.free_energy(v)
        return out.cpu().double().numpy()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        return tags
