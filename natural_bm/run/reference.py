"""The config's keys in words, derived from their definition (``natural_bm.run.config``): the text of
``natural-bm train --help`` and the documentation's Markdown table."""

from __future__ import annotations

import dataclasses
import json
import textwrap

from natural_bm.run.config import RunConfig, defaults, section_classes

__all__ = ["config_help_text", "config_reference_markdown", "config_sections_line"]


def _rows():
    """(section or None, key, type, default, allowed, meaning) of every key, in config order."""
    for f in dataclasses.fields(RunConfig):
        cls = section_classes().get(f.name)
        if cls is None:
            yield None, f.name, str(f.type), _default(f), f.metadata["rule"].allowed, f.metadata["doc"]
            continue
        for sub in dataclasses.fields(cls):
            yield f.name, sub.name, str(sub.type), _default(sub), sub.metadata["rule"].allowed, sub.metadata["doc"]


def _default(f: dataclasses.Field):
    return f.default_factory() if f.default is dataclasses.MISSING else f.default


def config_sections_line() -> str:
    """Each section with its keys and defaults, one line a section (JSON values)."""
    lines = []
    for section, value in defaults().items():
        if isinstance(value, dict):
            lines.append(f"  {section}: " + ", ".join(f"{k}={json.dumps(v)}" for k, v in value.items()))
        else:
            lines.append(f"  {section}: {json.dumps(value)}")
    return "\n".join(lines)


def config_help_text(width: int = 100) -> str:
    """The config's keys for ``natural-bm train --help``: the sections with their defaults, then every key
    with what it may be and what it means."""
    out = ["config sections and their defaults (every key is optional but the model section):",
           config_sections_line(), "", "config keys (section.key: allowed values; meaning):"]
    for section, name, _, _, allowed, doc in _rows():
        path = name if section is None else f"{section}.{name}"
        out.append(textwrap.fill(f"{path}: {allowed}; {doc}", width, initial_indent="  ",
                                 subsequent_indent="      "))
    return "\n".join(out)


def _cell(text: str) -> str:
    """Text safe in a Markdown table cell (MyST, GitHub): pipes escaped, no line breaks."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _code(text: str) -> str:
    return f"``{_cell(text)}``" if "`" in text else f"`{_cell(text)}`"


def config_reference_markdown() -> str:
    """A Markdown table (MyST and GitHub flavoured) of every config key: section, key, type, default,
    allowed values and meaning; the documentation build writes it to
    ``docs/guide/_generated/config_reference.md``."""
    lines = ["| section | key | type | default | allowed | meaning |", "|---|---|---|---|---|---|"]
    for section, name, kind, default, allowed, doc in _rows():
        lines.append(f"| {_code(section) if section else '(top level)'} | {_code(name)} | {_code(kind)} | "
                     f"{_code(json.dumps(default))} | {_cell(allowed)} | {_cell(doc)} |")
    return "\n".join(lines) + "\n"
