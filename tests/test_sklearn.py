"""The scikit-learn estimator: scikit-learn's own estimator checks, and every public parameter, method and
attribute of ``BernoulliRBM`` compared with ``BernoulliRBM`` itself on the same inputs."""

import contextlib
import inspect
import io
import re

import numpy as np
import pytest
import torch

pytest.importorskip("sklearn")
import scipy.sparse as sp  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.neural_network import BernoulliRBM  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402
from sklearn.utils.estimator_checks import check_estimator  # noqa: E402

from natural_bm.datasets import load_digits  # noqa: E402
from natural_bm.sklearn import RBMTransformer  # noqa: E402

ATTRIBUTES = ("components_", "intercept_hidden_", "intercept_visible_", "h_samples_", "n_features_in_")


@pytest.fixture(scope="module")
def grey():
    """300 digits with grey levels in [0, 1] (float64, as BernoulliRBM's examples)."""
    return load_digits("probability", seed=0).train[:300].astype(np.float64)


def both(**kw):
    return BernoulliRBM(**kw), RBMTransformer(**kw)


def test_passes_scikit_learns_estimator_checks():
    results = check_estimator(RBMTransformer(n_components=4, n_iter=2, random_state=0), on_fail=None)
    failed = [(r["check_name"], str(r["exception"])[:200]) for r in results if r["status"] == "failed"]
    assert len(results) > 40 and failed == []


def test_every_parameter_of_bernoulli_rbm_with_its_default():
    ours = inspect.signature(RBMTransformer).parameters
    theirs = inspect.signature(BernoulliRBM).parameters
    for name, p in theirs.items():
        assert name in ours, name
        assert ours[name].default == p.default and ours[name].kind == p.kind, name
    assert {"momentum", "algorithm", "k", "visible", "device"} <= set(ours)
    assert RBMTransformer(verbose=10).get_params()["verbose"] == 10  # was a TypeError
    for bad in ({"n_components": 0}, {"learning_rate": 0.0}, {"batch_size": 0}, {"n_iter": -1}, {"verbose": -1},
                {"momentum": 1.0}, {"algorithm": "sml"}, {"visible": "binary"}, {"k": 0}):
        with pytest.raises(ValueError, match=f"`{next(iter(bad))}` must be"):
            RBMTransformer(**bad).fit(np.zeros((4, 3)))


@pytest.mark.parametrize("kind", ["float64", "float32", "int", "list"])
def test_attributes_and_outputs_match_bernoulli_rbm_in_name_shape_and_dtype(grey, kind):
    X = {"float64": grey, "float32": grey.astype(np.float32), "int": (grey > 0.5).astype(np.int64),
         "list": grey.tolist()}[kind]
    theirs, ours = both(n_components=7, batch_size=12, n_iter=2, random_state=0)
    theirs.fit(X)
    ours.fit(X)
    for name in ATTRIBUTES:
        a, b = getattr(theirs, name), getattr(ours, name)
        assert np.shape(a) == np.shape(b) and np.asarray(a).dtype == np.asarray(b).dtype, (name, kind)
    assert not hasattr(ours, "feature_names_in_") and not hasattr(theirs, "feature_names_in_")
    rows = X[:5]
    for method in ("transform", "score_samples", "gibbs"):
        # (BernoulliRBM.gibbs takes arrays only: a list fails inside it; ours takes lists too)
        a = getattr(theirs, method)(np.asarray(rows) if method == "gibbs" else rows)
        b = getattr(ours, method)(rows)
        assert a.shape == b.shape and a.dtype == b.dtype, (method, kind, a.dtype, b.dtype)
    assert ours.fit_transform(X).shape == theirs.fit_transform(X).shape == (len(X), 7)
    h = ours.h_samples_
    assert set(np.unique(h)) <= {0.0, 1.0} and h.shape == (12, 7)
    # float32 in, float32 out; BernoulliRBM's partial_fit converts to float64, and so does ours
    a, b = BernoulliRBM(n_components=3, random_state=0), RBMTransformer(n_components=3, random_state=0)
    a.partial_fit(X)
    b.partial_fit(X)
    for name in ATTRIBUTES:
        assert np.asarray(getattr(a, name)).dtype == np.asarray(getattr(b, name)).dtype, name
    assert a.transform(rows).dtype == b.transform(rows).dtype


def test_feature_names_in_and_out_as_bernoulli_rbm(grey):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(grey[:, :10], columns=[f"pixel{i}" for i in range(10)])
    theirs, ours = both(n_components=4, n_iter=1, random_state=0)
    theirs.fit(frame)
    ours.fit(frame)
    np.testing.assert_array_equal(ours.feature_names_in_, theirs.feature_names_in_)
    names = [n.replace("bernoullirbm", "rbmtransformer") for n in theirs.get_feature_names_out()]
    np.testing.assert_array_equal(ours.get_feature_names_out(), names)
    assert ours.get_feature_names_out()[0] == "rbmtransformer0" and len(names) == 4
    pipe = Pipeline([("rbm", clone(ours))]).set_output(transform="pandas")
    assert list(pipe.fit_transform(frame).columns) == names


def test_verbose_lines_in_bernoulli_rbms_format(grey):
    lines = {}
    for est in both(n_components=5, n_iter=3, verbose=1, random_state=0):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            est.fit(grey)
        lines[type(est).__name__] = out.getvalue().splitlines()
    pattern = r"\[{}\] Iteration {}, pseudo-likelihood = -?\d+\.\d\d, time = \d+\.\d\ds"
    for name, text in lines.items():
        assert len(text) == 3, text
        for i, line in enumerate(text, 1):
            assert re.fullmatch(pattern.format(name, i), line), line
    with contextlib.redirect_stdout(io.StringIO()) as quiet:
        silent = RBMTransformer(n_components=5, n_iter=2, random_state=0).fit(grey)
    assert quiet.getvalue() == ""
    # the fit loop's own pseudo-likelihood is skipped (nothing reads it), and verbose lines change nothing
    assert "pll" not in silent.model_.trainer.history.history
    with contextlib.redirect_stdout(io.StringIO()):
        loud = RBMTransformer(n_components=5, n_iter=2, verbose=1, random_state=0).fit(grey)
    np.testing.assert_array_equal(silent.components_, loud.components_)


@pytest.mark.parametrize("fmt", ["csr", "csc", "lil"])
def test_sparse_input_gives_what_dense_input_gives(grey, fmt):
    binary = (grey > 0.5).astype(np.float64)
    sparse = sp.csr_matrix(binary).asformat(fmt)
    dense_fit = RBMTransformer(n_components=6, n_iter=2, random_state=0).fit(binary)
    sparse_fit = RBMTransformer(n_components=6, n_iter=2, random_state=0).fit(sparse)
    np.testing.assert_array_equal(sparse_fit.components_, dense_fit.components_)
    for method in ("transform", "score_samples"):
        np.testing.assert_array_equal(getattr(dense_fit, method)(sparse), getattr(dense_fit, method)(binary))
    a, b = RBMTransformer(n_components=6, random_state=0), RBMTransformer(n_components=6, random_state=0)
    for lo in (0, 100):
        a.partial_fit(binary[lo:lo + 100])
        b.partial_fit(sparse[lo:lo + 100])
    np.testing.assert_array_equal(a.components_, b.components_)
    theirs = BernoulliRBM(n_components=6, n_iter=1, random_state=0).fit(sparse)  # BernoulliRBM takes them too
    assert theirs.transform(sparse).shape == dense_fit.transform(sparse).shape


def test_score_samples_is_bernoulli_rbms_pseudo_likelihood_without_thresholding(grey):
    ours = RBMTransformer(n_components=9, n_iter=2, random_state=3).fit(grey)
    theirs = BernoulliRBM(n_components=9, n_iter=1, random_state=3).fit(grey)
    theirs.components_ = ours.components_.copy()
    theirs.intercept_hidden_ = ours.intercept_hidden_.copy()
    theirs.intercept_visible_ = ours.intercept_visible_.copy()
    # the same parameters and random_state flip the same unit of each row: the same numbers, grey levels as given
    np.testing.assert_allclose(ours.score_samples(grey), theirs.score_samples(grey), rtol=1e-10, atol=1e-10)
    thresholded = theirs.score_samples((grey > 0.5).astype(np.float64))
    assert np.abs(ours.score_samples(grey) - thresholded).max() > 1.0  # grey levels are not binarised
    np.testing.assert_array_equal(ours.score_samples(grey), ours.score_samples(grey))  # an int seed: repeatable


def test_gibbs_gives_bernoulli_rbms_domain_and_continues_one_stream(grey):
    theirs, ours = both(n_components=8, n_iter=2, random_state=0)
    theirs.fit(grey)
    ours.fit(grey)
    a, b = theirs.gibbs(grey[:50]), ours.gibbs(grey[:50])
    assert a.dtype == b.dtype == np.bool_ and a.shape == b.shape == (50, 64)
    assert not np.array_equal(b, ours.gibbs(grey[:50]))  # successive calls continue the stream
    again = clone(ours).fit(grey)
    np.testing.assert_array_equal(again.gibbs(grey[:50]), b)  # the same random_state: the same draws
    # a draw of v' ~ p(v | h), h ~ p(h | v): its column means follow the model's mean (10,000 chains of one row)
    row = np.repeat(grey[:1], 10_000, 0)
    with torch.no_grad():
        m = ours.model_
        h = torch.bernoulli(m.prob_h_given_v(torch.as_tensor(row)), generator=torch.Generator().manual_seed(0))
        expected = m.prob_v_given_h(h).mean(0).numpy()
    np.testing.assert_allclose(ours.gibbs(row).mean(0), expected, atol=0.03)


def test_partial_fit_is_one_update_of_learning_rate_times_the_gradient(grey):
    rbm = RBMTransformer(n_components=5, learning_rate=0.05, batch_size=7, random_state=0)
    rbm.partial_fit(grey[:40])
    before = rbm.model_.detached_copy()
    rbm.partial_fit(grey[40:140])  # 100 rows, more than batch_size: still one update, as BernoulliRBM
    assert rbm.model_.trainer.optimizer.iterations == 2
    chains = rbm.model_.trainer.model_chains().double()  # the negative phase's samples (batch_size chains)
    assert chains.shape == (7, 64)
    with torch.no_grad():
        v = torch.as_tensor(grey[40:140])
        pos = v.T @ before.prob_h_given_v(v).double() / 100
        neg = chains.T @ before.prob_h_given_v(chains).double() / 7
    np.testing.assert_allclose(rbm.components_.T - before.W.double().numpy(), 0.05 * (pos - neg).numpy(),
                               atol=1e-12)


def test_pipeline_grid_search_and_attributes():
    d = load_digits("probability", seed=0)
    pipe = Pipeline([("rbm", RBMTransformer(n_components=64, learning_rate=0.1, batch_size=20, n_iter=20,
                                            random_state=0)),
                     ("clf", LogisticRegression(max_iter=1000))])
    pipe.fit(d.train, d.train_labels)
    acc = float(np.mean(pipe.predict(d.test) == d.test_labels))
    assert acc > 0.84, acc  # 10 classes: chance is 0.1 (BernoulliRBM with the same settings: 0.87)
    rbm = pipe.named_steps["rbm"]
    np.testing.assert_array_equal(rbm.components_, rbm.model_.W.detach().numpy().T)
    assert rbm.intercept_hidden_.shape == (64,) and rbm.intercept_visible_.shape == (64,)
    np.testing.assert_allclose(rbm.transform(d.test[:5]),
                               1 / (1 + np.exp(-(d.test[:5] @ rbm.components_.T + rbm.intercept_hidden_))),
                               rtol=1e-5)
    search = GridSearchCV(clone(pipe), {"rbm__n_components": [8, 16]}, cv=2).fit(d.train[:400],
                                                                               d.train_labels[:400])
    assert search.best_params_["rbm__n_components"] in (8, 16)


def test_real_valued_features_use_gaussian_units_and_score_minus_free_energy():
    d = load_digits("standardized", seed=0)
    rbm = RBMTransformer(n_components=6, learning_rate=0.01, n_iter=2, random_state=0).fit(d.train)
    assert rbm.model_.units[0].name == "gaussian"
    v = d.test[:4].astype(np.float64)
    W, b, c = rbm.components_.T.astype(np.float64), rbm.intercept_visible_, rbm.intercept_hidden_
    expected = -(0.5 * (v * v).sum(1) - v @ b - np.logaddexp(0, v @ W + c).sum(1))  # -F(v), sigma = 1
    np.testing.assert_allclose(rbm.score_samples(v), expected, rtol=1e-5)
    g = rbm.gibbs(v)
    assert g.dtype == np.float64 and g.shape == v.shape and len(np.unique(g)) > 2  # real values
    with pytest.raises(ValueError, match="visible='bernoulli' needs X in"):
        RBMTransformer(visible="bernoulli").fit(d.train)
    partial = RBMTransformer(n_components=6, random_state=0)
    for _ in range(2):
        partial.partial_fit(d.train[:100])
    assert partial._epoch_ == 2 and torch.isfinite(partial.model_.W).all()
