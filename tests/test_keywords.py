"""A typo in a keyword names the valid keywords and the nearest one (issue 36: the first hour of a new user)."""

import pytest

from natural_bm import RBM
from natural_bm.callbacks import CSVLogger, EarlyStopping, PeriodicSave
from natural_bm.training import get_algorithm
from natural_bm.validation import check_keywords


def test_callback_keyword_typo_names_the_nearest_and_every_keyword():
    with pytest.raises(TypeError, match=r"EarlyStopping\(\) got unexpected keyword argument 'patiense' "
                                        r"\(did you mean 'patience'\?\); it takes monitor, min_delta, patience"):
        EarlyStopping(patiense=3)
    assert EarlyStopping(patience=3).patience == 3  # the right spelling still works, positionally too
    assert EarlyStopping("loss", 0.1, 4).patience == 4
    with pytest.raises(TypeError, match=r"PeriodicSave\(\) got unexpected keyword argument 'keep_lst'.*'keep_last'"):
        PeriodicSave("w.pt", keep_lst=2)
    assert CSVLogger("log.csv").filename.name == "log.csv"


def test_compile_keyword_typo_names_the_algorithm_settings_and_compiles_own():
    with pytest.raises(TypeError, match=r"compile\(\) with the 'pcd' algorithm got unexpected keyword argument "
                                        r"'n_chain' \(did you mean 'n_chains'\?\); it takes k, n_chains, "
                                        r"precision, l1, l2"):
        RBM(4, 3).compile("sgd", "pcd", n_chain=10)
    with pytest.raises(TypeError, match=r"'l_2' \(did you mean 'l2'\?\)"):
        RBM(4, 3).compile("sgd", "cd", l_2=0.1)
    with pytest.raises(TypeError, match=r"'exact' algorithm got unexpected keyword argument 'k'; it takes l1"):
        RBM(4, 3).compile("sgd", "exact", k=1)  # the exact gradient has no Gibbs steps
    trainer = RBM(4, 3).compile("sgd", "pcd", n_chains=10, k=2).trainer
    assert (trainer.algorithm.n_chains, trainer.algorithm.k) == (10, 2)


def test_get_algorithm_and_check_keywords():
    with pytest.raises(TypeError, match=r"the 'mfpcd' algorithm got unexpected keyword argument 'mf_step' "
                                        r"\(did you mean 'mf_steps'\?\)"):
        get_algorithm("mfpcd", mf_step=3)
    check_keywords({"a": 1}, ["a", "b"], "f()")  # nothing unknown: no error
    with pytest.raises(TypeError, match=r"f\(\) got unexpected keyword arguments 'zz', 'bb' \(did you mean 'b'\?\); "
                                        r"it takes a, b\."):
        check_keywords({"zz": 1, "bb": 2}, ["a", "b"], "f()")


def test_warnings_point_at_the_users_line_not_the_librarys():
    """A warning raised deep inside natural_bm is attributed to the caller's line (this file), so the printed
    warning shows the user's code."""
    import warnings

    import torch

    from natural_bm.estimators import log_likelihood, log_partition_exact

    m = RBM(6, 3, seed=0)
    grey = torch.full((4, 6), 0.5)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        log_likelihood(m, grey, log_partition_exact(m))  # warns: grey levels are not binary data
    assert caught and all(w.filename == __file__ for w in caught), [(w.filename, w.lineno) for w in caught]
