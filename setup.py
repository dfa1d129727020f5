"""Installation script for natural_bm."""

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent

setup(
    name="natural_bm",
    version="0.2.0",
    description="Restricted and deep Boltzmann machines in PyTorch: training, "
    "exact and AIS partition functions, callbacks and experiments.",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["natural_bm", "natural_bm.*"]),
    # the best shipped RBM and DBM, loadable by name (natural_bm.pretrained; about 5 MB)
    package_data={"natural_bm.pretrained": ["*.pt", "*_results.json", "*_raise*.json"]},
    install_requires=[
        "torch>=2.2",
        "numpy",
        "scipy",
        "pandas",
        "matplotlib",
        "tqdm",
        "pillow",  # PNG grids written pixel-exact (already a matplotlib dependency)
        "pyyaml",  # YAML configs for `natural-bm train`
    ],
    extras_require={
        # hypothesis: property-based tests of the loaders and configs (inputs generated to break them);
        # pytest-xdist: make test runs one worker per core (797 s in one process, 394 s on 2 workers)
        "dev": ["pytest", "pytest-xdist", "ruff", "tensorboard", "hypothesis", "safetensors"],
        # the documentation site (make docs): Sphinx with autodoc/autosummary/napoleon, sphinx-gallery for the
        # examples that run when the site builds, myst-parser for the Markdown pages, the PyData theme
        "docs": ["sphinx", "sphinx-gallery", "myst-parser", "pydata-sphinx-theme", "sphinx-copybutton",
                 "scikit-learn"],
        # natural-bm export --format safetensors and load_model of .safetensors files (pickle-free tensors)
        "safetensors": ["safetensors"],
        # the TensorBoard callback writes through torch.utils.tensorboard, which needs it
        "tensorboard": ["tensorboard"],
        # natural_bm.sklearn (the scikit-learn estimator) and load_digits (the data set ships inside it)
        "sklearn": ["scikit-learn"],
        # scripts/bench_rbm.py and experiments/mnist_features compare with scikit-learn's BernoulliRBM
        "bench": ["scikit-learn"],
    },
    entry_points={"console_scripts": ["natural-bm=natural_bm.cli:main"]},
    license="MIT",
)
