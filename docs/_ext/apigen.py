"""The API reference, generated from the ``__all__`` of every natural_bm module when the site builds.

Every module of the package that declares ``__all__`` gets a page (its docstring and a table of its
public names), and every public object gets one page of its own, written by autodoc. An object that
several ``__all__`` lists name (``natural_bm.RBM``, ``natural_bm.models.RBM``,
``natural_bm.models.rbm.RBM``) is documented once, under its shortest public path; the other paths,
and the module that defines it, are aliases that cross-references resolve to that page (the
``missing-reference`` handler below), so ``:class:`natural_bm.models.rbm.RBM``` and
``:class:`natural_bm.RBM``` both link, while a reference to a name that exists nowhere still fails
the nitpicky build.

The modules are found at build time (``pkgutil.walk_packages``), so a module that appears, moves or
goes away changes the reference by itself; a module that fails to import, or a public name whose
page autodoc could not fill, is a warning, which ``-W`` turns into a failed build.

Runnable without Sphinx: ``python docs/_ext/apigen.py`` prints the modules and names it would document.
"""

from __future__ import annotations

import builtins
import importlib
import inspect
import pkgutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

PACKAGE = "natural_bm"
OUT_DIR = "api/generated"  # relative to the Sphinx source folder
LONG_VALUE = 120  # data whose repr is longer than this is shown without its value


@dataclass
class PublicObject:
    """One documented object: its page name (the canonical path) and every path it is public under."""

    canonical: str
    kind: str  # "class", "exception", "function" or "data"
    obj: object
    paths: list[str] = field(default_factory=list)
    defined_in: str | None = None

    @property
    def home(self) -> str:
        """The module whose page lists this object's page in its toctree."""
        return self.canonical.rsplit(".", 1)[0]

    @property
    def name(self) -> str:
        return self.canonical.rsplit(".", 1)[1]


@dataclass
class ApiIndex:
    """What the package exposes: modules with ``__all__``, their names, the objects and the aliases."""

    modules: dict[str, list[str]]  # module -> its __all__, in order
    objects: dict[str, PublicObject]  # canonical path -> object
    aliases: dict[str, str]  # any public or defining path -> canonical path
    errors: list[str]
    docstrings: dict[str, str] = field(default_factory=dict)  # module -> first docstring line


def _kind(obj) -> str:
    if inspect.isclass(obj):
        return "exception" if issubclass(obj, BaseException) else "class"
    if inspect.isfunction(obj) or inspect.isbuiltin(obj) or inspect.ismethod(obj):
        return "function"
    return "data"


def _key(name: str, obj) -> tuple:
    # Classes and functions are one object wherever they are imported; data (numbers, strings, dicts)
    # may share identity by accident (small ints), so its name is part of its key.
    return (id(obj),) if _kind(obj) != "data" else (name, id(obj))


def _path_order(path: str) -> tuple:
    return (path.count("."), len(path), path)


def module_names(package: str = PACKAGE) -> tuple[list[str], list[str]]:
    """The package and every submodule whose dotted name has no part starting with ``_``, and the
    errors met while walking (one line each)."""
    errors: list[str] = []
    root = importlib.import_module(package)
    names = [package]

    def onerror(name):
        errors.append(f"{name}: {sys.exc_info()[1]!r}")

    for info in pkgutil.walk_packages(root.__path__, package + ".", onerror=onerror):
        if not any(part.startswith("_") for part in info.name.split(".")[1:]):
            names.append(info.name)
    return sorted(set(names)), errors


def collect(package: str = PACKAGE) -> ApiIndex:
    """Import every module of ``package`` and index the names of every ``__all__``."""
    names, errors = module_names(package)
    modules: dict[str, list[str]] = {}
    docstrings: dict[str, str] = {}
    found: dict[tuple, PublicObject] = {}
    for modname in names:
        try:
            module = importlib.import_module(modname)
        except Exception as exc:  # a module mid-refactor: reported, never hidden
            errors.append(f"{modname}: cannot be imported: {exc!r}")
            continue
        public = getattr(module, "__all__", None)
        if public is None:
            continue
        modules[modname] = list(public)
        docstrings[modname] = (inspect.getdoc(module) or "").strip().split("\n\n")[0].replace("\n", " ")
        for name in public:
            try:
                obj = getattr(module, name)
            except AttributeError:
                errors.append(f"{modname}.__all__ names {name!r}, which the module does not define")
                continue
            if inspect.ismodule(obj):
                continue
            key = _key(name, obj)
            entry = found.setdefault(key, PublicObject("", _kind(obj), obj))
            entry.paths.append(f"{modname}.{name}")
    objects: dict[str, PublicObject] = {}
    aliases: dict[str, str] = {}
    for entry in found.values():
        entry.paths.sort(key=_path_order)
        entry.canonical = entry.paths[0]
        module_of = getattr(entry.obj, "__module__", None) if entry.kind != "data" else None
        qualname = getattr(entry.obj, "__qualname__", None)
        if module_of and qualname and module_of.startswith(package):
            entry.defined_in = module_of
            aliases[f"{module_of}.{qualname}"] = entry.canonical
        objects[entry.canonical] = entry
        for path in entry.paths:
            aliases[path] = entry.canonical
    return ApiIndex(modules, objects, aliases, errors, docstrings)


# -- pages ------------------------------------------------------------------------------------------

def _title(text: str, char: str = "=") -> list[str]:
    return [text, char * len(text), ""]


def _parent_page(modname: str, modules: dict[str, list[str]]) -> str | None:
    parts = modname.split(".")
    for i in range(len(parts) - 1, 0, -1):
        parent = ".".join(parts[:i])
        if parent in modules:
            return parent
    return None


def page_name(canonical: str, index: ApiIndex) -> str:
    """The page of an object: its canonical path, unless a module has that name too (a package that
    re-exports a function named like one of its submodules, ``natural_bm.run.train``)."""
    if canonical in index.modules:
        return f"{canonical}-{index.objects[canonical].kind}"
    return canonical


def module_page(modname: str, index: ApiIndex) -> str:
    lines = _title(modname)
    lines += [f".. automodule:: {modname}", "   :no-members:"]
    if modname in index.objects:
        # the name is also a public object (documented on its own page): the module is not indexed,
        # so references to the name resolve to the object
        lines.append("   :no-index:")
    lines.append("")
    names = index.modules[modname]
    canon = [index.aliases[f"{modname}.{n}"] for n in names if f"{modname}.{n}" in index.aliases]
    if canon:
        lines += [".. rubric:: Public names", "",
                  f"Everything in ``{modname}.__all__``; a name documented under a shorter path links there.", "",
                  ".. autosummary::", "   :nosignatures:", ""]
        lines += [f"   {c.rsplit('.', 1)[1]}" if c.rsplit(".", 1)[0] == modname else f"   ~{c}" for c in canon]
        lines.append("")
    submodules = [m for m in index.modules if _parent_page(m, index.modules) == modname]
    if submodules:
        lines += [".. rubric:: Modules", "", ".. list-table::", "   :widths: 35 65", ""]
        for sub in submodules:
            lines += [f"   * - :doc:`{sub}`", f"     - {_summary(index.docstrings.get(sub, ''))}"]  # same folder
        lines.append("")
    own = sorted(c for c, o in index.objects.items() if o.home == modname)
    if own or submodules:
        lines += [".. toctree::", "   :hidden:", ""]
        lines += [f"   {sub}" for sub in submodules]
        lines += [f"   {page_name(c, index)}" for c in own]
        lines.append("")
    return "\n".join(lines)


def _foreign_bases(cls) -> list[str]:
    """The base classes defined outside natural_bm (torch's Module, scikit-learn's mixins, Exception...):
    their members are not repeated on natural_bm's pages (autodoc's ``inherited-members`` option)."""
    names = [base.__name__ for base in cls.__mro__[1:] if not base.__module__.startswith(PACKAGE)]
    return names or ["object"]


def _summary(text: str) -> str:
    text = " ".join(text.split())
    return text if text else "(no module docstring)"


def object_page(entry: PublicObject) -> str:
    lines = _title(entry.canonical)
    lines += [f".. currentmodule:: {entry.home}", ""]
    if entry.kind in ("class", "exception"):
        directive = "autoclass" if entry.kind == "class" else "autoexception"
        lines += [f".. {directive}:: {entry.name}", "   :members:",
                  f"   :inherited-members: {', '.join(_foreign_bases(entry.obj))}"]
        if entry.obj.__bases__ != (object,):
            lines.append("   :show-inheritance:")
        lines.append("")
    elif entry.kind == "function":
        lines += [f".. autofunction:: {entry.name}", ""]
    else:
        lines += [f".. autodata:: {entry.name}"]
        if len(repr(entry.obj)) > LONG_VALUE:
            lines.append("   :no-value:")
        lines.append("")
    others = [p for p in entry.paths if p != entry.canonical]
    where = []
    if entry.defined_in and entry.defined_in != entry.home:
        where.append(f"Defined in :mod:`{entry.defined_in}`." if entry.defined_in in _documented_modules
                     else f"Defined in ``{entry.defined_in}``.")
    if others:
        where.append("Also importable as " + ", ".join(f"``{p}``" for p in others) + ".")
    if where:
        lines += [".. rubric:: Import paths", "", " ".join(where), ""]
    return "\n".join(lines)


_documented_modules: set[str] = set()


def index_include(index: ApiIndex) -> str:
    """The module table of the API index page (included by ``docs/api/index.rst``)."""
    top = [m for m in index.modules if _parent_page(m, index.modules) is None]
    lines = [".. list-table::", "   :header-rows: 1", "   :widths: 30 70", "", "   * - module", "     - what it holds"]
    for mod in top:
        lines += [f"   * - :doc:`generated/{mod}`", f"     - {_summary(index.docstrings.get(mod, ''))}"]
    lines += ["", ".. toctree::", "   :hidden:", ""]
    lines += [f"   generated/{mod}" for mod in top]
    return "\n".join(lines) + "\n"


def write_pages(srcdir: Path, index: ApiIndex) -> list[Path]:
    """Write every page under ``srcdir/api/generated``; files whose text is unchanged are left alone
    (so Sphinx does not re-read them), and pages of names that no longer exist are removed."""
    out = srcdir / OUT_DIR
    out.mkdir(parents=True, exist_ok=True)
    _documented_modules.clear()
    _documented_modules.update(index.modules)
    pages = {f"{m}.rst": module_page(m, index) for m in index.modules}
    pages.update({f"{page_name(c, index)}.rst": object_page(o) for c, o in index.objects.items()})
    pages["index.rst.inc"] = index_include(index)
    written = []
    for name, text in pages.items():
        path = out / name
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
        written.append(path)
    for stale in out.iterdir():
        if stale.is_file() and stale.name not in pages:
            stale.unlink()
    return written


# -- Sphinx -----------------------------------------------------------------------------------------

_INDEX: ApiIndex | None = None


def _import_path(path: str):
    """The object a dotted path names (a module, then attributes), or None."""
    parts = path.split(".")
    for i in range(len(parts), 0, -1):
        module = sys.modules.get(".".join(parts[:i]))
        if module is None:
            try:
                module = importlib.import_module(".".join(parts[:i]))
            except Exception:
                continue
        obj = module
        for part in parts[i:]:
            obj = getattr(obj, part, None)
            if obj is None:
                return None
        return obj
    return None


def _resolve_target(target: str, index: ApiIndex, modname: str | None) -> str | None:
    """The canonical path for ``target``: an alias, an alias plus attribute names, or a name that the
    current module (``modname``) binds to a public object."""
    target = target.lstrip(".~")
    if target in index.aliases:
        return index.aliases[target]
    parts = target.split(".")
    for i in range(len(parts) - 1, 0, -1):
        prefix = ".".join(parts[:i])
        if prefix in index.aliases:
            return ".".join([index.aliases[prefix], *parts[i:]])
    obj = _lookup(target, modname)
    if obj is not None:
        for entry in index.objects.values():
            if entry.obj is obj and entry.kind != "data":
                return entry.canonical
    if "." not in target and not hasattr(builtins, target):  # a bare class name (never a builtin's)
        matches = {c for c, entry in index.objects.items()
                   if entry.name == target and entry.kind in ("class", "exception")}
        if len(matches) == 1:
            return matches.pop()
    return None


def _lookup(target: str, modname: str | None):
    """The natural_bm object ``target`` names, absolutely or from inside module ``modname``."""
    target = target.lstrip(".~")
    candidates = [target] if target.startswith(PACKAGE + ".") else []
    if modname and modname.startswith(PACKAGE):
        candidates.append(f"{modname}.{target}")
    for path in candidates:
        obj = _import_path(path)
        if obj is not None and (inspect.ismodule(obj) or str(getattr(obj, "__module__", "")).startswith(PACKAGE)):
            return obj
    if "." not in target and not hasattr(builtins, target):  # a bare class name: the one natural_bm class
        found = {id(o): o for name, m in list(sys.modules.items()) if name.startswith(PACKAGE + ".")
                 for o in [getattr(m, target, None)] if inspect.isclass(o) and o.__module__.startswith(PACKAGE)}
        if len(found) == 1:
            return next(iter(found.values()))
    return None


# Existing natural_bm objects that are in no __all__ (so have no page), referenced from the pages:
# rendered as plain text, and listed at the end of the build so they can be exported or renamed.
_UNPAGED: dict[str, int] = {}


def _missing_reference(app, env, node, contnode):
    if node.get("refdomain") != "py" or _INDEX is None:
        return None
    target = node.get("reftarget", "")
    if _is_external(target):
        return contnode  # another library's name: no intersphinx (offline builds), so plain text
    canonical = _resolve_target(target, _INDEX, node.get("py:module"))
    if not canonical or canonical == target:
        obj = _lookup(target, node.get("py:module"))
        if obj is not None and not inspect.ismodule(obj):
            # it exists, but no __all__ exports it (a private base class, a helper type)
            name = f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', target)}"
            _UNPAGED[name] = _UNPAGED.get(name, 0) + 1
            return contnode
        return None
    domain = env.get_domain("py")
    for role in (node.get("reftype", "obj"), "obj"):
        found = domain.resolve_xref(env, node["refdoc"], app.builder, role, canonical,
                                    _exact(node), contnode)
        if found is not None:
            return found
    return None


def _is_external(target: str) -> bool:
    """A dotted name whose first part is an importable top-level module other than natural_bm."""
    first = target.lstrip(".~").split(".")[0]
    if "." not in target.lstrip(".~") or first == PACKAGE:
        return False
    if first in sys.modules:
        return True
    import importlib.util

    try:
        return importlib.util.find_spec(first) is not None
    except (ImportError, ValueError):
        return False


def _exact(node):
    copy = node.deepcopy()
    copy["refspecific"] = False
    copy["py:module"] = None
    copy["py:class"] = None
    return copy


def _builder_inited(app) -> None:
    global _INDEX
    from sphinx.util import logging

    logger = logging.getLogger(__name__)
    _INDEX = collect()
    for error in _INDEX.errors:
        logger.warning(f"API reference: {error}", type="apigen")
    pages = write_pages(Path(app.srcdir), _INDEX)
    logger.info(f"API reference: {len(_INDEX.modules)} modules, {len(_INDEX.objects)} public objects, "
                f"{len(pages)} pages under {OUT_DIR}")


def _check_every_name_documented(app, exception) -> None:
    """Every public object must have been registered by autodoc (else its page is empty)."""
    if exception is not None or _INDEX is None:
        return
    from sphinx.util import logging

    logger = logging.getLogger(__name__)
    for name, count in sorted(_UNPAGED.items()):
        logger.info(f"API reference: {name} is referenced {count}x but is in no __all__, so it has no page "
                    "(shown as plain text)")
    objects = app.env.get_domain("py").objects
    for canonical in sorted(_INDEX.objects):
        if canonical not in objects:
            logger.warning(f"API reference: {canonical} (in {', '.join(_INDEX.objects[canonical].paths)}) has no "
                           "documented entry: autodoc could not import or document it", type="apigen")


def _dataclass_factories(app, what, name, obj, options, signature, return_annotation):
    """A dataclass field with a ``default_factory`` shows its default as ``<factory>``, which is not
    Python, so the signature parser falls back to splitting at commas (and ``dict[str, X]`` becomes two
    broken references). Show it as ``<factory>`` the parser can read: a call."""
    if signature and "<factory>" in signature:
        return signature.replace("<factory>", "factory()"), return_annotation
    return None


def _no_type_docstrings(app, what, name, obj, options, lines):
    """A public constant without a doc-comment would show its type's docstring (``dict()`` -> new
    empty dictionary ...), which says nothing about it and is not even valid reST: drop it."""
    if what not in ("data", "attribute") or not lines:
        return
    type_doc = inspect.getdoc(type(obj)) or ""
    if type_doc and "\n".join(lines).strip() == type_doc.strip():
        lines.clear()


def setup(app):
    app.connect("autodoc-process-signature", _dataclass_factories)
    app.connect("autodoc-process-docstring", _no_type_docstrings)
    app.connect("builder-inited", _builder_inited, priority=400)
    app.connect("missing-reference", _missing_reference, priority=400)
    app.connect("build-finished", _check_every_name_documented)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}


if __name__ == "__main__":
    result = collect()
    for mod, names in result.modules.items():
        print(f"{mod}: {', '.join(names)}")
    print(f"{len(result.objects)} objects; errors: {result.errors or 'none'}")
