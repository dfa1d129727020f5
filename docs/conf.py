"""Sphinx configuration of the natural_bm documentation (``make docs``).

Build: ``make docs`` (``sphinx-build -W --keep-going -b html docs docs/_build/html``). Environment:

* ``SPHINX_GALLERY_SKIP=1`` builds the gallery pages without running the examples (for work on the
  frame; CI runs them all);
* ``NATURAL_BM_DATA`` points at the MNIST files (set here to ``../shared/data/mnist`` when that
  folder exists and the variable is not set).

Nitpicky: every cross-reference must resolve. References to natural_bm objects resolve to the one page
of each public name (``docs/_ext/apigen.py`` maps every public and defining path to it); references to
other libraries render as plain text, since intersphinx is off (the build must not need the
internet); anything else that does not resolve fails the build.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(DOCS / "_ext"))
sys.path.insert(0, str(ROOT))

if os.environ.get("NATURAL_BM_DATA"):
    # absolute (a relative one is taken from the repository root, where `make docs` runs): Sphinx reads
    # this file from docs/ and sphinx-gallery runs each example in its own folder
    os.environ["NATURAL_BM_DATA"] = str((ROOT / os.environ["NATURAL_BM_DATA"]).resolve())
elif (ROOT.parent / "shared" / "data" / "mnist").is_dir():
    os.environ["NATURAL_BM_DATA"] = str(ROOT.parent / "shared" / "data" / "mnist")
os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("MPLBACKEND", "Agg")

import natural_bm  # noqa: E402

project = "natural_bm"
author = "the natural_bm developers"
copyright = "natural_bm developers, MIT licence"
release = natural_bm.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
    "sphinx_copybutton",
    # ours (docs/_ext)
    "temporary_warnings",
    "apigen",
    "results_pages",
    "generated_includes",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "**.ipynb_checkpoints", "gallery/README.rst", "benchmarks/*.md",
                    "auto_examples/*.ipynb", "auto_examples/*.py", "auto_examples/*.zip", "sg_execution_times.rst"]
templates_path = ["_templates"]
nitpicky = True
default_role = "py:obj"

# -- autodoc / autosummary / napoleon ----------------------------------------------------------------
autosummary_generate = False  # docs/_ext/apigen.py writes the pages, from the __all__ lists
autodoc_member_order = "groupwise"
autodoc_typehints = "signature"
# "short" writes ~module.Name inside generics, which the signature parser then splits at the commas
autodoc_typehints_format = "fully-qualified"
# False: preserving defaults re-reads each function's source, which fails ("pop from empty list") when a
# file changes on disk during a build, as it does while others edit the package
autodoc_preserve_defaults = False
autodoc_class_signature = "mixed"
python_maximum_signature_line_length = 96
python_use_unqualified_type_names = True
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
napoleon_use_ivar = True
napoleon_attr_annotations = True

# References to other libraries: no intersphinx (offline builds), so they render as text.
_EXTERNAL = (r"(torch|numpy|np|scipy|pandas|pd|matplotlib|plt|sklearn|PIL|yaml|tqdm|safetensors|tensorboard|"
             r"collections|typing_extensions|pathlib|os|io|json|argparse|logging|threading|datetime|contextlib|"
             r"enum|dataclasses|abc|types|functools|numbers|concurrent|http|urllib|socket|tarfile|csv|random)"
             r"(\..*)?")
nitpick_ignore_regex = [(r"py:.*", _EXTERNAL)]
nitpick_ignore: list[tuple[str, str]] = []

# -- TEMPORARY: docstring warnings in files other developers are editing this turn -------------------
# Each entry names one warning (file, object, message). They are printed as "temporarily tolerated"
# and listed at the end of every build; remove an entry once its docstring is fixed (the build warns
# when an entry matches nothing). Do not add entries for files outside this list of files in flux:
# models/base.py, training/, runner.py, run/, config_schema.py, cli.py, callbacks/callback_list.py,
# callbacks/ais_callback.py, estimators/ais.py, estimators/ais_engine.py, estimators/report.py,
# sklearn.py, sampling/tempering.py.
temporary_docstring_warnings: list[dict[str, str]] = []

# Markdown that guide pages include from _generated/ folders, written from the code at each build.
generated_includes = {
    "guide/_generated/config_reference.md": "natural_bm.run.reference:config_reference_markdown",
    "guide/_generated/fault_table.md": "scripts/fault_table.py:fault_table_markdown",
}

# -- MyST ---------------------------------------------------------------------------------------------
myst_enable_extensions = ["colon_fence", "deflist", "dollarmath", "substitution"]
myst_heading_anchors = 3

# -- sphinx-gallery -----------------------------------------------------------------------------------
_skip_gallery = os.environ.get("SPHINX_GALLERY_SKIP", "") not in ("", "0")
sphinx_gallery_conf = {
    "examples_dirs": "gallery",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "plot_gallery": "False" if _skip_gallery else "True",
    "download_all_examples": False,
    "remove_config_comments": True,
    "show_memory": False,
    "min_reported_time": 1,
    "capture_repr": ("_repr_html_",),
    "matplotlib_animations": False,
    "write_computation_times": False,
}

# -- HTML ---------------------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"natural_bm {release}"
html_static_path = ["_static"]
html_css_files = ["natural_bm.css"]
html_show_sourcelink = False
html_theme_options = {
    "navbar_start": ["navbar-logo"],
    "navbar_center": ["navbar-nav"],
    "navbar_end": ["theme-switcher"],
    "header_links_before_dropdown": 8,
    "show_toc_level": 2,
    "navigation_with_keys": False,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
    "logo": {"text": "natural_bm"},
}
html_sidebars = {"index": [], "changelog": [], "benchmarks": [], "getting_started": [], "results/*": []}
html_context = {"default_mode": "light"}
