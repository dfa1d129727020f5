"""Write the Markdown files that pages include from ``_generated/`` folders, before the pages are read.

``conf.py`` maps each file (relative to the documentation folder) to the function that returns its
text, as ``"module:function"`` or ``"path/to/script.py:function"`` (a path relative to the
repository root) (``generated_includes``). The files are build outputs (ignored by
git); a function that cannot be imported or fails is a warning, so ``-W`` fails the build rather
than including a stale or missing table.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path


def _module(name: str, root: Path):
    """A module by its dotted name, or a script by its path (relative to ``root``)."""
    if not name.endswith(".py"):
        return importlib.import_module(name)
    path = root / name
    key = f"_generated_includes_{path.stem}"
    spec = importlib.util.spec_from_file_location(key, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[key] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _write(app) -> None:
    from sphinx.util import logging

    logger = logging.getLogger(__name__)
    for target, spec in (app.config.generated_includes or {}).items():
        module_name, _, func_name = spec.rpartition(":")
        try:
            text = getattr(_module(module_name, Path(app.confdir).parent), func_name)()
        except Exception as exc:
            logger.warning(f"generated include {target}: {spec} failed: {exc!r}", type="generated_includes")
            continue
        path = Path(app.srcdir) / target
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")


def setup(app):
    app.add_config_value("generated_includes", {}, "env")
    app.connect("builder-inited", _write, priority=300)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
