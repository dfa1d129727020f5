"""The scikit-learn estimator: scikit-learn's own estimator checks, Pipelines, grid searches, attributes."""

import numpy as np
import pytest
import torch

pytest.importorskip("sklearn")
from sklearn.base import clone  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402
from sklearn.utils.estimator_checks import check_estimator  # noqa: E402

from natural_bm.datasets import load_digits  # noqa: E402
from natural_bm.sklearn import RBMTransformer  # noqa: E402


def test_passes_scikit_learns_estimator_checks():
    results = check_estimator(RBMTransformer(n_components=4, n_iter=2, random_state=0), on_fail=None)
    failed = [(r["check_name"], str(r["exception"])[:200]) for r in results if r["status"] == "failed"]
    assert len(results) > 40 and failed == []


def test_pipeline_grid_search_and_attributes():
    d = load_digits("probability", seed=0)
    pipe = Pipeline([("rbm", RBMTransformer(n_components=64, learning_rate=0.05, batch_size=20, n_iter=20,
                                            random_state=0)),
                     ("clf", LogisticRegression(max_iter=1000))])
    pipe.fit(d.train, d.train_labels)
    acc = float(np.mean(pipe.predict(d.test) == d.test_labels))
    assert acc > 0.84, acc  # 0.88 measured; 10 classes: chance is 0.1 (BernoulliRBM's features give 0.79)
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
    with pytest.raises(ValueError, match="visible='bernoulli' needs X in"):
        RBMTransformer(visible="bernoulli").fit(d.train)
    partial = RBMTransformer(n_components=6, random_state=0)
    for _ in range(2):
        partial.partial_fit(d.train[:100])
    assert partial._epoch_ == 2 and torch.isfinite(partial.model_.W).all()
