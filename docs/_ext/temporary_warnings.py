"""Keep named, known docstring warnings of files being edited by others out of the ``-W`` failure.

``conf.py`` lists each one in ``temporary_docstring_warnings``: a dict with the file (``"file"``), the
object whose docstring warns (``"where"``, a part of the location Sphinx prints, matched) and a part of the
message (``"message"``). A warning matching an entry is not counted; it is printed, marked
"temporarily tolerated", and listed again at the end of the build, so it stays visible until the
docstring is fixed and the entry removed. An entry that no longer matches anything is reported too
(as a warning, so stale entries do not pile up). Any other warning counts as usual.
"""

from __future__ import annotations

import logging

_MATCHED: dict[int, list[str]] = {}
_FULL_READ = {"full": False}  # stale entries are reported only when every page was read in this build


class _TemporaryFilter(logging.Filter):
    def __init__(self, app) -> None:
        super().__init__()
        self.app = app

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        entries = getattr(self.app.config, "temporary_docstring_warnings", None) or []
        if not entries:
            return True
        location = _location(self.app, record)
        try:
            message = record.getMessage()
        except Exception:
            message = str(record.msg)
        for i, entry in enumerate(entries):
            # "where" names the object (or generated page) in the location Sphinx prints; inherited
            # members carry the defining object's name under the subclass's file, so "file" is for people
            if entry["where"] in location and entry["message"] in message:
                _MATCHED.setdefault(i, []).append(f"{location}: {message}")
                return False
        return True


def _location(app, record) -> str:
    from sphinx.util.logging import get_node_location

    location = getattr(record, "location", None)
    if location is None:
        return ""
    if isinstance(location, tuple):
        docname, line = location
        return f"{app.env.doc2path(docname) if docname else ''}:{line or ''}"
    if hasattr(location, "source") or hasattr(location, "line"):
        return get_node_location(location) or ""
    return str(location)


def _install(app) -> None:
    sphinx_logger = logging.getLogger("sphinx")
    for handler in sphinx_logger.handlers:
        if handler.level >= logging.WARNING or type(handler).__name__ == "WarningStreamHandler":
            handler.filters.insert(0, _TemporaryFilter(app))


def _report(app, exception) -> None:
    from sphinx.util import logging as sphinx_logging

    logger = sphinx_logging.getLogger(__name__)
    entries = app.config.temporary_docstring_warnings or []
    if exception is not None:
        return
    for i, entry in enumerate(entries):
        hits = _MATCHED.get(i, [])
        if hits:
            logger.info(f"temporarily tolerated ({len(hits)}x), in a file others are editing: "
                        f"{entry['file']} [{entry['where']}] {entry['message']}")
            for hit in hits:
                logger.info(f"    {hit}")
        elif _FULL_READ["full"]:
            logger.warning(f"temporary_docstring_warnings entry no longer matches anything, remove it: {entry}",
                           type="temporary_warnings")


def _before_read(app, env, docnames) -> None:
    _FULL_READ["full"] = set(docnames) >= set(env.found_docs)


def setup(app):
    app.add_config_value("temporary_docstring_warnings", [], "env")
    app.connect("env-before-read-docs", _before_read)
    _install(app)
    app.connect("build-finished", _report, priority=900)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
