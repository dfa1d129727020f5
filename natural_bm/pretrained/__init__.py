"""Trained models by name, with their measured results.

::

    import natural_bm.pretrained as pretrained

    for entry in pretrained.list():
        print(entry)                      # name: description; log Z, bracket, test log-likelihood
    rbm = pretrained.load("rbm500-cd25-anneal")
    rbm.pretrained.results["test_ll"]     # the results JSON shipped beside it (nats per image)

The best RBM (``rbm500-cd25-anneal``) and the best DBM (``dbm500-1000``) ship inside the installed
package, each with the ``*_results.json`` its run wrote (log Z with its +-3 sigma band, the
forward/reverse AIS bracket, test log-likelihoods). The other models the experiments trained live in
a source checkout of natural_bm, under ``experiments/``: ``load`` reads them from there, and says so
where there is no checkout. Names are case-insensitive, and ``_`` and ``-`` are the same.

``load`` attaches the catalogue entry to the model as ``model.pretrained`` (a ``Pretrained``:
``name``, ``description``, ``dataset``, ``path``, ``results``), so the model and its measured numbers
travel together; ``results(name)`` reads them without building the model.
"""

from __future__ import annotations

import builtins
import difflib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from natural_bm.models import load_model

__all__ = ["Pretrained", "describe_results", "is_name", "list", "load", "path", "results"]

HERE = Path(__file__).resolve().parent
#: the root of a source checkout, when this package sits in one (``experiments/`` beside ``natural_bm/``)
SOURCE_ROOT = HERE.parents[1]

_MNIST_STOCHASTIC = ("MNIST, 60,000 training images binarised afresh for every minibatch; scored on the "
                     "once-sampled test set (load_mnist('sampled'))")
_MNIST_STOCHASTIC_50K = ("MNIST, the first 50,000 training images binarised afresh for every minibatch (10,000 "
                         "held out); scored on the once-sampled test set (load_mnist('sampled'))")

#: name -> (file: in this package, or relative to a source checkout's root; description; data set)
_CATALOGUE: dict[str, tuple[str, str, str]] = {
    "rbm500-cd25-anneal": (
        "rbm500_cd25_anneal.pt",
        "784-500 RBM, CD-25 (rbm500-cd25-full), then 100 epochs with the learning rate annealed 100-fold: "
        "the best RBM", _MNIST_STOCHASTIC),
    "dbm500-1000": (
        "dbm500_1000_pretrained_centred_long3.pt",
        "784-500-1000 DBM, greedy pre-training, centred, trained in six rounds (the last three of 120 epochs each "
        "from a high rate): the best DBM", _MNIST_STOCHASTIC_50K),
    "dbm500-1000-pretrained-centred-long2": (
        "experiments/dbm_mnist_sh2009/models/dbm500_1000_pretrained_centred_long2.pt",
        "784-500-1000 DBM, the fifth round of dbm500-1000 (120 epochs from a high rate), which the sixth starts "
        "from", _MNIST_STOCHASTIC_50K),
    "rbm500-cd25": (
        "experiments/rbm_mnist_sm2008/models/rbm500_cd25.pt",
        "784-500 RBM, CD-k with k growing from 1 to 25, 150 epochs (Salakhutdinov & Murray 2008's recipe)",
        _MNIST_STOCHASTIC_50K),
    "rbm500-cd25-full": (
        "experiments/rbm_mnist_sm2008/models/rbm500_cd25_full.pt",
        "784-500 RBM, rbm500-cd25's recipe on all 60,000 images for 200 epochs", _MNIST_STOCHASTIC),
    "rbm500-pcd-decay": (
        "experiments/rbm_mnist_sm2008/models/rbm500_pcd_decay.pt",
        "784-500 RBM, PCD-1 with a learning rate decaying per update (Tieleman 2008)", _MNIST_STOCHASTIC_50K),
    "dbm500-1000-centred-lr": (
        "experiments/dbm_mnist_sh2009/models/dbm500_1000_centred_lr.pt",
        "784-500-1000 DBM, centred, without pre-training, 5x the learning rate", _MNIST_STOCHASTIC_50K),
    "dbm500-1000-recipe": (
        "experiments/dbm_mnist_sh2009/models/dbm500_1000_recipe.pt",
        "784-500-1000 DBM, pre-trained, with max-norm and sparsity targets", _MNIST_STOCHASTIC_50K),
    "dbm500-1000-pretrained-centred-more2": (
        "experiments/dbm_mnist_sh2009/models/dbm500_1000_pretrained_centred_more2.pt",
        "784-500-1000 DBM, the third round of dbm500-1000 (50 epochs annealed, 500 chains)", _MNIST_STOCHASTIC_50K),
    "class-rbm500": (
        "experiments/mnist_classification/models/class_rbm500.pt",
        "classification RBM: 784 pixels and 10 one-hot labels joined to 500 hidden units (Larochelle & Bengio "
        "2008)", "MNIST binarised once (load_mnist('sampled')), the first 50,000 training images with labels"),
}
#: other spellings of a name -> the name
_ALIASES = {"dbm500-1000-pretrained-centred-long3": "dbm500-1000"}


@dataclass(frozen=True)
class Pretrained:
    """A catalogue entry: a trained model and its measured results.

    Attributes:
        name: the name ``load`` takes.
        description: one line: the architecture and how it was trained.
        dataset: the data it was trained on and scored on.
        path: the model file (None where it needs a source checkout and none is found).
        source: where the file lives: ``"natural_bm/pretrained/..."`` (shipped) or ``"experiments/..."``.
        results: the run's ``*_results.json`` (``logZ``, ``logZ_lo``, ``logZ_hi``, ``bracket``,
            ``test_ll``, ``test_ll_stderr``, ...; log-likelihoods in nats per image), None where unread.
    """

    name: str
    description: str
    dataset: str
    path: Path | None
    source: str
    results: dict | None

    @property
    def shipped(self) -> bool:
        """Whether the model file ships inside the installed package."""
        return self.source.startswith("natural_bm/")

    def __str__(self) -> str:
        where = "" if self.shipped else (f" [in a source checkout: {self.source}]" if self.path is None
                                         else f" [{self.source}]")
        figures = describe_results(self.results) if self.results else "results need a source checkout"
        return f"{self.name}: {self.description}{where}. {figures}"


def describe_results(results: dict) -> str:
    """One line from a results JSON: log Z with its +-3 sigma band, the AIS bracket, test figures (nats)."""
    parts = []
    if "logZ" in results:
        z = f"log Z {results['logZ']:.2f}"
        if "logZ_lo" in results and "logZ_hi" in results:
            lo, hi = float(results["logZ_lo"]), float(results["logZ_hi"])
            z += (f" (±3σ {lo:.2f} to {hi:.2f})" if lo > float("-inf")
                  else f" (+3σ {hi:.2f}; -3σ unbounded: few effective AIS runs)")
        parts.append(z)
    if results.get("bracket"):
        parts.append(str(results["bracket"]))
    # a DBM's test_ll is its mean-field bound, test_ll_importance the importance-sampled estimate
    bound = "test mean-field bound" if "test_ll_importance" in results else "test"
    for key, what in (("test_ll_importance", "test (importance-sampled)"), ("test_ll", bound)):
        if key in results:
            text = f"{what} {results[key]:.2f}"
            if f"{key}_stderr" in results:
                text += f" ± {results[f'{key}_stderr']:.2f}"
            if f"{key}_reverse" in results:
                text += f" ({results[f'{key}_reverse']:.2f} with the reverse log Z)"
            parts.append(text + " nats per image")
    if "test_accuracy" in results:
        parts.append(f"test accuracy {results['test_accuracy']:.4f}")
    return "; ".join(parts)


def _canonical(name: str) -> str:
    if not isinstance(name, str):
        raise TypeError(f"a pretrained model's name is a string, got {type(name).__name__}.")
    key = name.strip().lower().replace("_", "-")
    key = key[:-3] if key.endswith(".pt") else key
    key = _ALIASES.get(key, key)
    if key not in _CATALOGUE:
        near = difflib.get_close_matches(key, builtins.list(_CATALOGUE) + builtins.list(_ALIASES), n=1)
        hint = f" Did you mean {near[0]!r}?" if near else ""
        raise ValueError(f"no pretrained model is called {name!r}.{hint} Names: {sorted(_CATALOGUE)} "
                         f"(natural_bm.pretrained.list() describes them).")
    return key


def _entry(name: str) -> Pretrained:
    file, description, dataset = _CATALOGUE[name]
    if "/" in file:  # under experiments/ of a source checkout
        source, found = file, SOURCE_ROOT / file
    else:
        source, found = f"natural_bm/pretrained/{file}", HERE / file
    found = found if found.is_file() else None
    results_file = None if found is None else found.with_name(found.stem + "_results.json")
    loaded = json.loads(results_file.read_text()) if results_file is not None and results_file.is_file() else None
    return Pretrained(name, description, dataset, found, source, loaded)


def list() -> builtins.list[Pretrained]:  # noqa: A001 (the catalogue's verb, as natural_bm.pretrained.list())
    """Every catalogued model, shipped ones first: ``Pretrained`` entries whose ``str`` is one line (name,
    description, and log Z, bracket and test figures from its results JSON)."""
    entries = [_entry(name) for name in _CATALOGUE]
    return sorted(entries, key=lambda e: not e.shipped)


def path(name: str) -> Path:
    """The model file of ``name`` (for the command line: ``natural-bm logz rbm500-cd25-anneal``).

    Raises:
        ValueError: an unknown name (naming the nearest one and every name).
        FileNotFoundError: a model that lives in a source checkout, where there is none.
    """
    entry = _entry(_canonical(name))
    if entry.path is None:
        if entry.shipped:  # pragma: no cover - an installation without its package data
            raise FileNotFoundError(f"{entry.source} is missing from this installation of natural_bm; reinstall it.")
        raise FileNotFoundError(f"{entry.name!r} is not shipped in the installed package: it lives at {entry.source} "
                                f"in a source checkout of natural_bm (git clone the repository and install it with "
                                f"pip install -e .), or load the file by its path.")
    return entry.path


def results(name: str) -> dict | None:
    """The results JSON of ``name`` (None where it needs a source checkout and none is found)."""
    return _entry(_canonical(name)).results


def load(name: str, device=None, dtype=None):
    """The model called ``name`` (see ``list()``), on ``device`` in ``dtype`` (default: as saved), with its
    catalogue entry, measured results included, as ``model.pretrained``.

    Raises:
        ValueError: an unknown name. FileNotFoundError: a model that needs a source checkout (see ``path``).
    """
    entry = _entry(_canonical(name))
    model = load_model(path(entry.name), device=device, dtype=dtype)
    model.pretrained = entry
    return model


def is_name(text: str | os.PathLike) -> bool:
    """Whether ``text`` is a catalogued name rather than a path (an existing file wins): for the command line."""
    if isinstance(text, os.PathLike) or Path(str(text)).exists():
        return False
    try:
        _canonical(str(text))
    except ValueError:
        return False
    return True

