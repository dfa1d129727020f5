"""A scikit-learn estimator: ``RBMTransformer``, a drop-in for ``sklearn.neural_network.BernoulliRBM``.

Every public parameter, method and attribute of ``BernoulliRBM`` works the
same way, with the same meaning: ``n_components``, ``learning_rate``,
``batch_size``, ``n_iter``, ``verbose``, ``random_state``; ``fit``,
``partial_fit``, ``transform``, ``fit_transform``, ``gibbs``,
``score_samples``, ``get_feature_names_out``; ``components_``,
``intercept_hidden_``, ``intercept_visible_``, ``h_samples_``,
``n_features_in_``, ``feature_names_in_``. Dense arrays, lists and sparse
matrices (CSR, CSC, LIL, ...) are accepted wherever ``BernoulliRBM`` accepts
them; float32 data give float32 results, float64 and integer data float64.
Replace ``BernoulliRBM(...)`` by ``RBMTransformer(...)`` and the code runs.

natural_bm trains it (PCD as ``BernoulliRBM``, or CD; any device) and adds
keyword arguments: ``momentum``, ``algorithm``, ``k``, ``visible`` and
``device``. ``visible="auto"`` (default) uses binary visible units for data
in [0, 1] and Gaussian ones (sigma = 1) otherwise, so real-valued features
work without rescaling; standardise them first for a good fit.

Where the two differ (natural_bm's choices, each a more exact or a better
start than ``BernoulliRBM``'s, and none changing what a parameter means):

* the visible biases start at the logits of the data's column means
  (``BernoulliRBM``: zeros), and the persistent chains at randomly chosen
  training rows, binarised (``BernoulliRBM``: all-zero hidden states);
* ``fit`` reshuffles the rows every epoch and cuts ``batch_size`` rows per
  update with a smaller last batch (``BernoulliRBM``: the same evenly sized
  slices, in order, every epoch);
* the random numbers come from natural_bm's seeded streams, so a
  ``random_state`` gives a reproducible run but not ``BernoulliRBM``'s
  weights; ``score_samples`` flips exactly the units ``BernoulliRBM``'s
  would for the same ``random_state`` (numpy's ``RandomState`` draws them),
  so two machines with the same parameters give the same scores;
* Gaussian visible units (``visible="gaussian"``, or ``"auto"`` on data
  outside [0, 1]) have no pseudo-likelihood: ``score_samples`` returns
  -F(v), the log-likelihood up to the model's log Z, and ``gibbs`` real values.

Speed: on large data the two run the same products and natural_bm is faster
(the benchmarks page). On small data at ``BernoulliRBM``'s default
``batch_size=10`` each update is a few tiny matrix products, and the time is
the per-update work around them: on the digits ``fit`` takes two to three times
``BernoulliRBM``'s with 32 units, and about its time with 256 (the benchmarks page). A bare torch loop of
``BernoulliRBM``'s update comes close to ``BernoulliRBM`` there
(``scripts/bench_sklearn.py`` measures all three), so the gap is natural_bm's
own per-update work, not torch: the fused step's extra operations and Python
(the per-batch loss, the stacked chains) and the general fit loop around it
(hooks, logs, the optimiser's groups). The fit loop's epoch-end pseudo-likelihood, which nothing here
reads, is skipped (``fit(..., pseudo_likelihood=False)``). Larger batches close the gap.

Needs scikit-learn (``pip install natural_bm[sklearn]``).
"""

from __future__ import annotations

import numbers
import time

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from natural_bm.callbacks.callback import Callback
from natural_bm.models.rbm import RBM
from natural_bm.rng import RandomSource, bernoulli
from natural_bm.training import SGD

__all__ = ["RBMTransformer"]

_TORCH_DTYPES = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}
#: rows densified at a time from a sparse matrix in ``transform``, ``gibbs`` and ``score_samples``
_CHUNK_ELEMENTS = 2**22


class _RandomStateIndices(RandomSource):
    """A ``RandomSource`` whose ``randint(high, size)`` is ``RandomState.randint(0, high, size)``: the visible
    unit ``score_samples`` flips in each row is the one ``BernoulliRBM.score_samples`` flips for the same
    ``random_state`` (the pseudo-likelihood itself is the model's)."""

    def __init__(self, random_state: np.random.RandomState) -> None:
        super().__init__(0, "cpu")  # (its own streams are not used: only randint is called)
        self.random_state = random_state

    def randint(self, high: int, size) -> torch.Tensor:
        return torch.from_numpy(self.random_state.randint(0, high, tuple(size)).astype(np.int64))


class _VerboseLines(Callback):
    """``BernoulliRBM``'s verbose output: after each epoch of ``fit``,
    ``[RBMTransformer] Iteration 3, pseudo-likelihood = -21.47, time = 0.05s`` (the mean of
    ``score_samples`` over the training data, seconds since the previous line)."""

    def __init__(self, estimator: RBMTransformer, X) -> None:
        super().__init__()
        self.estimator, self.X = estimator, X

    def on_train_begin(self, logs=None):
        self.begin = time.time()

    def on_epoch_end(self, epoch, logs=None):
        end = time.time()
        est = self.estimator
        score = est._score(self.X).mean()
        what = "pseudo-likelihood" if est.model_.binary_visible else "unnormalised log-likelihood -F(v)"
        print(f"[{type(est).__name__}] Iteration {epoch + 1}, {what} = {score:.2f}, time = {end - self.begin:.2f}s")
        self.begin = end


class RBMTransformer(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """A restricted Boltzmann machine as a scikit-learn transformer (features: p(h = 1 | v)).

    ``BernoulliRBM``'s parameters, with the same defaults and meanings:

    Args:
        n_components: hidden units.
        learning_rate: step size of the parameter updates (the mean gradient over a minibatch times it).
        batch_size: rows per update of ``fit``, and the number of persistent chains.
        n_iter: epochs (passes over the data) of ``fit``.
        verbose: 0 silent; otherwise one line per epoch of ``fit`` in ``BernoulliRBM``'s format
            (``[RBMTransformer] Iteration 1, pseudo-likelihood = -25.39, time = 0.05s``).
        random_state: None, an int or a ``numpy.random.RandomState``: seeds the initial weights, the
            training's sampling and the units ``score_samples`` flips.

    natural_bm's additions (keywords):

    Args:
        momentum: SGD momentum (default 0: plain SGD, as ``BernoulliRBM``; with momentum m the
            effective step is about ``learning_rate / (1 - m)``).
        algorithm: ``"pcd"`` (persistent chains, as ``BernoulliRBM``) or ``"cd"``.
        k: Gibbs steps per update.
        visible: ``"auto"``, ``"bernoulli"`` or ``"gaussian"`` (see the module docstring).
        device: torch device for training (default CPU).

    Attributes:
        components_: (n_components, n_features) weights.
        intercept_hidden_: (n_components,) hidden biases.
        intercept_visible_: (n_features,) visible biases.
        h_samples_: (batch_size, n_components) binary hidden states of the persistent chains (a draw from
            p(h | chains) under the current weights; with ``algorithm="pcd"`` only: CD keeps no chains).
        n_features_in_: the number of columns seen in ``fit``, as every scikit-learn estimator has.
        feature_names_in_: the column names seen in ``fit`` (input with string column names only).
        model_: the natural_bm ``RBM`` (for log Z, likelihoods, samples, saving).

    The arrays are copies in the dtype the model was trained in (the data's for ``fit``, float64 for
    ``partial_fit``, as ``BernoulliRBM``); changing them does not change ``model_``. Pass float32 data to
    train in float32 (about half the arithmetic of float64 on large data).
    """

    def __init__(self, n_components: int = 256, *, learning_rate: float = 0.1, batch_size: int = 10,
                 n_iter: int = 10, verbose: int = 0, random_state=None, momentum: float = 0.0,
                 algorithm: str = "pcd", k: int = 1, visible: str = "auto", device: str = "cpu") -> None:
        self.n_components = n_components
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.n_iter = n_iter
        self.verbose = verbose
        self.random_state = random_state
        self.momentum = momentum
        self.algorithm = algorithm
        self.k = k
        self.visible = visible
        self.device = device

    # ------------------------------------------------------------------ helpers
    def _check_params(self) -> None:
        def integer(name: str, minimum: int) -> None:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
                raise ValueError(f"`{name}` must be an integer >= {minimum}, got {value!r}.")

        integer("n_components", 1)
        integer("batch_size", 1)
        integer("n_iter", 0)
        integer("k", 1)
        if not isinstance(self.verbose, (numbers.Integral, bool)) or self.verbose < 0:
            raise ValueError(f"`verbose` must be an integer >= 0 (or a bool), got {self.verbose!r}.")
        if not isinstance(self.learning_rate, numbers.Real) or not self.learning_rate > 0:
            raise ValueError(f"`learning_rate` must be a number > 0, got {self.learning_rate!r}.")
        if not isinstance(self.momentum, numbers.Real) or not 0 <= self.momentum < 1:
            raise ValueError(f"`momentum` must be a number in [0, 1), got {self.momentum!r}.")
        if self.algorithm not in ("pcd", "cd"):
            raise ValueError(f"`algorithm` must be 'pcd' or 'cd', got {self.algorithm!r}.")
        if self.visible not in ("auto", "bernoulli", "gaussian"):
            raise ValueError(f"`visible` must be 'auto', 'bernoulli' or 'gaussian', got {self.visible!r}.")

    def _seed(self) -> int:
        rs = self.random_state
        if isinstance(rs, np.random.RandomState):
            return int(rs.randint(0, 2**31 - 1))
        return int(np.random.SeedSequence(rs).generate_state(1)[0])

    def _tensor(self, X: np.ndarray) -> torch.Tensor:
        """Dense rows as a tensor in the model's dtype on its device (shares memory where it can)."""
        X = np.asarray(X)
        if not X.flags.writeable:  # (torch warns about read-only memory; nothing here writes to it)
            X = X.copy()
        return torch.as_tensor(X, device=self.device).to(self.model_.dtype)

    def _chunks(self, X):
        """Dense (rows, n_features) blocks of X in order (one block for a dense X)."""
        if not sp.issparse(X):
            yield X
            return
        rows = max(1, _CHUNK_ELEMENTS // max(1, X.shape[1]))
        for lo in range(0, X.shape[0], rows):
            yield X[lo : lo + rows].toarray()

    def _new_model(self, X) -> RBM:
        low, high = X.min(), X.max()
        binary = self.visible == "bernoulli" or (self.visible == "auto" and low >= 0 and high <= 1)
        if self.visible == "bernoulli" and (low < 0 or high > 1):
            raise ValueError("visible='bernoulli' needs X in [0, 1]; rescale it or use visible='gaussian'.")
        self._seed_ = self._seed()
        dense = X.toarray() if sp.issparse(X) else X
        model = RBM(X.shape[1], int(self.n_components), seed=self._seed_, device=self.device,
                    dtype=_TORCH_DTYPES[np.dtype(X.dtype)], units=None if binary else ["gaussian", "bernoulli"])
        self.model_ = model
        model.init_from_data(self._tensor(dense))
        kwargs = {"k": int(self.k)} | ({"n_chains": int(self.batch_size)} if self.algorithm == "pcd" else {})
        # jit_compile=False on the CPU is what "auto" resolves to, without looking the device up every batch
        model.compile(SGD(float(self.learning_rate), float(self.momentum)), self.algorithm,
                      jit_compile=False if model.device.type == "cpu" else "auto", **kwargs)
        self._epoch_ = 0
        self._n_features_out = int(self.n_components)
        self.__dict__.pop("_gibbs_source_", None)
        return model

    def _train(self, X, batch_size: int, epochs: int, shuffle: bool, callbacks=None) -> None:
        dense = X.toarray() if sp.issparse(X) else X
        # the fit loop's own epoch-end pll is read by nothing here (the verbose lines score the data as
        # BernoulliRBM does), so it is skipped
        self.model_.fit(self._tensor(dense), batch_size=batch_size, epochs=self._epoch_ + epochs,
                        initial_epoch=self._epoch_, shuffle=shuffle, verbose=0, seed=self._seed_,
                        callbacks=callbacks, pseudo_likelihood=False)
        self._epoch_ += epochs
        self._sync()

    def _sync(self) -> None:
        m = self.model_
        self.components_ = m.W.detach().cpu().numpy().T.copy()
        self.intercept_hidden_ = m.hbias.detach().cpu().numpy().copy()
        self.intercept_visible_ = m.vbias.detach().cpu().numpy().copy()
        chains = m.trainer.model_chains()
        if chains is None:  # CD keeps no chains (and PCD before its first update)
            if self.algorithm == "pcd":
                self.h_samples_ = np.zeros((int(self.batch_size), int(self.n_components)), self.components_.dtype)
            else:
                self.__dict__.pop("h_samples_", None)
            return
        with torch.no_grad():
            h = bernoulli(m.prob_h_given_v(chains), RandomSource(self._seed_ + self._epoch_, m.device))
        self.h_samples_ = h.cpu().numpy()

    def _out_dtype(self, X) -> np.dtype:
        """The dtype ``BernoulliRBM`` returns: X's and the weights' common type."""
        return np.result_type(X.dtype, self.components_.dtype)

    def _score(self, X) -> np.ndarray:
        """``score_samples`` of validated X: (n_samples,) nats, in float64 whatever the model's dtype."""
        m = self.model_.detached_copy(dtype=torch.float64)  # rows scored alike in any batch
        source = _RandomStateIndices(check_random_state(self.random_state)) if m.binary_visible else None
        out = []
        with torch.no_grad():
            for block in self._chunks(X):
                v = torch.as_tensor(np.asarray(block, dtype=np.float64), device=m.device)
                out.append(m.pseudo_log_likelihood(v, source) if m.binary_visible else -m.free_energy(v))
        return torch.cat(out).cpu().numpy()

    # ------------------------------------------------------------------ scikit-learn API
    def fit(self, X, y=None):
        """Train a new RBM for ``n_iter`` epochs on X.

        Args:
            X: (n_samples, n_features) array-like or sparse matrix (densified for training: it needs
                n_samples x n_features numbers of memory).
            y: ignored.

        Returns:
            self.
        """
        self._check_params()
        X = validate_data(self, X, accept_sparse="csr", dtype=(np.float64, np.float32))
        self._new_model(X)
        callbacks = [_VerboseLines(self, X)] if self.verbose else None
        self._train(X, int(self.batch_size), int(self.n_iter), shuffle=True, callbacks=callbacks)
        return self

    def partial_fit(self, X, y=None):
        """One update on X as one minibatch (as ``BernoulliRBM``), creating the RBM on the first call.

        Args:
            X: (n_samples, n_features) array-like or sparse matrix; converted to float64, as
                ``BernoulliRBM`` does (later calls use the dtype of the first).
            y: ignored.

        Returns:
            self.
        """
        self._check_params()
        first = not hasattr(self, "model_")
        X = validate_data(self, X, accept_sparse="csr", dtype=np.float64, reset=first)
        if first:
            self._new_model(X)
        self._train(X, X.shape[0], 1, shuffle=False)
        return self

    def transform(self, X):
        """The hidden units' probabilities p(h = 1 | v) of each row.

        Args:
            X: (n_samples, n_features) array-like or sparse matrix.

        Returns:
            (n_samples, n_components) array in the common dtype of X and ``components_``.
        """
        check_is_fitted(self)
        X = validate_data(self, X, accept_sparse="csr", reset=False, dtype=(np.float64, np.float32))
        with torch.no_grad():
            out = [self.model_.prob_h_given_v(self._tensor(block)).cpu().numpy() for block in self._chunks(X)]
        return np.concatenate(out).astype(self._out_dtype(X), copy=False)

    def gibbs(self, v):
        """One block-Gibbs step from visible states: h ~ p(h | v), then v' ~ p(v | h).

        Successive calls continue one seeded random stream (``BernoulliRBM`` keeps ``random_state_``).

        Args:
            v: (n_samples, n_features) array-like or sparse matrix of visible states.

        Returns:
            (n_samples, n_features): a bool array for binary visible units (as ``BernoulliRBM``), the
            real values in the common dtype of v and ``components_`` for Gaussian ones.
        """
        check_is_fitted(self)
        v = validate_data(self, v, accept_sparse="csr", reset=False, dtype=(np.float64, np.float32))
        source = self.__dict__.get("_gibbs_source_")
        if source is None:
            source = self._gibbs_source_ = RandomSource(self._seed_ + 1, self.model_.device)
        with torch.no_grad():
            out = np.concatenate([self.model_.gibbs(self._tensor(block), 1, generator=source).cpu().numpy()
                                  for block in self._chunks(v)])
        return out > 0.5 if self.model_.binary_visible else out.astype(self._out_dtype(v), copy=False)

    def score_samples(self, X):
        """The stochastic pseudo-log-likelihood of each row, as ``BernoulliRBM``: n_features times
        log sigmoid(F(v~) - F(v)), with v~ the row with one visible unit i flipped (v_i -> 1 - v_i; grey
        levels are used as given, not thresholded), i drawn per row from ``random_state``. Gaussian
        visible units: -F(v), the log-likelihood up to log Z.

        Args:
            X: (n_samples, n_features) array-like or sparse matrix.

        Returns:
            (n_samples,) nats, in the common dtype of X and ``components_``.
        """
        check_is_fitted(self)
        X = validate_data(self, X, accept_sparse="csr", reset=False, dtype=(np.float64, np.float32))
        return self._score(X).astype(self._out_dtype(X), copy=False)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.input_tags.allow_nan = False
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags
