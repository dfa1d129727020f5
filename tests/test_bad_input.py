"""Every bad input to fit/evaluate/transform gives a ValueError naming the argument."""

import numpy as np
import pytest
import torch

from natural_bm import RBM

GOOD = (np.random.default_rng(0).random((20, 6)) < 0.5).astype(np.float32)


def _bad_cases():
    nan = GOOD.copy()
    nan[3, 2] = np.nan
    inf = GOOD.copy()
    inf[0, 0] = np.inf
    return [
        (nan, ValueError, "NaN"),
        (inf, ValueError, "inf"),
        (GOOD * 2, ValueError, r"\[0, 1\]"),
        (GOOD - 0.5, ValueError, r"\[0, 1\]"),
        (GOOD[:, :5], ValueError, "columns"),
        (GOOD[:0], ValueError, "empty"),
        (GOOD[0], ValueError, "2-D"),
        ([[0.0, 1.0], [1.0]], TypeError, "list of equal-length rows"),
        ({"a": 1}, TypeError, "numpy array or a torch tensor"),
        (GOOD.astype(str), TypeError, "numbers"),
    ]


@pytest.mark.parametrize("x,exc,msg", _bad_cases())
@pytest.mark.parametrize("method", ["fit", "evaluate", "transform"])
def test_bad_data_is_rejected(method, x, exc, msg):
    m = RBM(6, 3).compile()
    with pytest.raises(exc, match=msg) as info:
        getattr(m, method)(x) if method != "fit" else m.fit(x, verbose=0)
    assert "`x`" in str(info.value)


@pytest.mark.parametrize("x,exc,msg", _bad_cases()[:5])
def test_bad_validation_data_is_named(x, exc, msg):
    with pytest.raises(exc, match="validation_data"):
        RBM(6, 3).fit(GOOD, validation_data=x, verbose=0)


@pytest.mark.parametrize("bs", [0, -1, 2.5, True])
def test_bad_batch_size(bs):
    m = RBM(6, 3)
    for call in (lambda: m.fit(GOOD, batch_size=bs, verbose=0), lambda: m.evaluate(GOOD, batch_size=bs),
                 lambda: m.transform(GOOD, batch_size=bs)):
        with pytest.raises(ValueError, match="batch_size"):
            call()


def test_other_bad_arguments():
    with pytest.raises(ValueError, match="n_hidden"):
        RBM(6, 0)
    with pytest.raises(ValueError, match="init"):
        RBM(6, 3, init="xavier")
    with pytest.raises(ValueError, match="verbose"):
        RBM(6, 3).fit(GOOD, verbose=5)
    with pytest.raises(ValueError, match="unknown algorithm"):
        RBM(6, 3).compile(algorithm="cd2")
    with pytest.raises(ValueError, match="l2"):
        RBM(6, 3).compile(l2=-1)
    with pytest.raises(ValueError, match="beta"):
        RBM(6, 3).free_energy(torch.zeros(1, 6), beta=-1.0)
    with pytest.raises(ValueError, match="k"):
        RBM(6, 3).compile(algorithm="pcd", k=0)


def test_numpy_and_torch_inputs_give_identical_training():
    a = RBM(6, 3, seed=0).compile()
    b = RBM(6, 3, seed=0).compile()
    a.fit(GOOD, batch_size=5, epochs=2, verbose=0, seed=3)
    b.fit(torch.from_numpy(GOOD), batch_size=5, epochs=2, verbose=0, seed=3)
    assert torch.equal(a.W, b.W)
    # integer and float64 arrays are accepted and converted
    c = RBM(6, 3, seed=0).compile()
    c.fit(GOOD.astype(np.int64), batch_size=5, epochs=2, verbose=0, seed=3)
    assert torch.equal(a.W, c.W)


def test_lists_dataframes_and_sparse_matrices_are_accepted():
    import pandas as pd
    import scipy.sparse as sp

    m = RBM(6, 3, seed=0)
    want = m.transform(GOOD)
    for x in (GOOD.tolist(), pd.DataFrame(GOOD), sp.csr_matrix(GOOD)):
        got = m.transform(x)
        assert isinstance(got, np.ndarray) and np.array_equal(got, want)
    m.compile().fit(pd.DataFrame(GOOD), epochs=1, verbose=0, validation_data=GOOD.tolist())
    frame = pd.DataFrame({"a": ["x"] * 20, **{f"p{i}": GOOD[:, i] for i in range(5)}})
    with pytest.raises(TypeError, match="non-numeric columns"):
        m.transform(frame)
