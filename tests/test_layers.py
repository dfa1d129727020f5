"""The package's imports go one way: core -> models -> sampling / training / estimators -> callbacks -> run / cli.

Three checks: importing a layer in a fresh interpreter loads nothing above it; a scan of every ``import``
statement (including those inside functions) finds no upward import at all, with no list of exceptions;
and imports inside functions are only of optional dependencies. The models' Keras-style facade
(``model.compile``, ``fit``, ``evaluate``, ``transform``) reaches the trainer through the package root's
public name ``natural_bm.Trainer``, loaded on first use, so ``natural_bm.models`` holds no import of
``natural_bm.training``.
"""

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "natural_bm"

#: layer of each top-level module or sub-package of natural_bm (higher imports lower, never the reverse)
LAYERS = {
    "rng": 0, "io": 0, "validation": 0, "kernels": 0, "compiling": 0, "onednn": 0, "seeding": 0, "distributed": 0,
    "datasets": 0, "viz": 0,
    "models": 1,
    "sampling": 2, "training": 2, "estimators": 2,
    "callbacks": 3,
    "run": 4, "cli": 4, "demo": 4, "sklearn": 4, "pretrained": 4,
}

#: the only modules a function may import: optional dependencies, loaded where they are used
OPTIONAL_DEPENDENCIES = {"sklearn", "safetensors", "torch.utils.tensorboard", "tensorboard"}

#: the hook machinery the fit loop drives sits in callbacks/ but on the training layer: the callbacks
#: package loads its names lazily, so importing these loads no callback that needs the estimators
HOOK_MODULES = {"callback", "callback_list", "history", "base_logger", "progbar_logger"}


#: names that ``from natural_bm import ...`` resolves, and the layer they come from
PACKAGE_NAMES = {"RBM": 1, "DBM": 1, "DBN": 1,
                 "BoltzmannMachine": 1, "LayeredBM": 1, "load_model": 1, "SGD": 2, "Adam": 2, "Trainer": 2,
                 "GibbsSampler": 2, "ParallelTempering": 2,
                 "__version__": 0}


def _layer_of(module: str) -> int | None:
    parts = module.split(".")
    if parts[0] != "natural_bm" or len(parts) < 2:
        return None
    if parts[1] == "callbacks" and len(parts) > 2 and parts[2] in HOOK_MODULES:
        return LAYERS["training"]
    return PACKAGE_NAMES[parts[1]] if parts[1] in PACKAGE_NAMES else LAYERS[parts[1]]


def _key(module: str) -> str:
    """What an upward import is reported as: the package, or callbacks.<hook module>."""
    parts = module.split(".")
    return ".".join(parts[1:3]) if parts[1] == "callbacks" and len(parts) > 2 and parts[2] in HOOK_MODULES \
        else parts[1]


def _imports(path: Path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names if node.module == "natural_bm")


def test_every_module_has_a_layer():
    names = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir()
             if (p.suffix == ".py" and p.stem != "__init__") or (p.is_dir() and (p / "__init__.py").exists())}
    assert names == set(LAYERS), sorted(names ^ set(LAYERS))


def test_no_upward_imports():
    found = set()
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel == "__init__.py":
            continue  # the package's lazy names
        own = _layer_of("natural_bm." + rel.removesuffix(".py").replace("/", "."))
        for module in _imports(path):
            target = _layer_of(module)
            if target is not None and target > own:
                found.add((rel, _key(module)))
    assert found == set(), sorted(found)


def test_functions_import_only_optional_dependencies():
    found = []
    for path in PACKAGE.rglob("*.py"):
        for fn in ast.walk(ast.parse(path.read_text())):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(fn):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    names = [node.module] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
                    found += [f"{path.relative_to(PACKAGE)}:{node.lineno}: {n}" for n in names
                              if not any(n == d or n.startswith(d + ".") for d in OPTIONAL_DEPENDENCIES)]
    assert found == [], found


@pytest.mark.parametrize("module", ["kernels", "models", "sampling", "training", "estimators", "callbacks",
                                    "training.fit"])
def test_importing_a_layer_loads_nothing_above_it(module):
    code = (f"import sys, json, natural_bm.{module}; "
            "print(json.dumps(sorted(n for n in sys.modules if n.startswith('natural_bm.'))))")
    loaded = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                       check=True).stdout)
    # the callbacks package itself is loaded as the parent of its hook modules; its names are lazy
    above = [m for m in loaded if _layer_of(m) > _layer_of(f"natural_bm.{module}") and m != "natural_bm.callbacks"]
    assert above == [], f"importing natural_bm.{module} loaded {above}"
