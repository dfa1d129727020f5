"""What the benchmark scripts share: interleaved timing rounds, the median table, and the results file
the benchmarks page reads (``docs/benchmarks/*.json``)."""

from __future__ import annotations

import datetime
import json
import os
import platform
import shlex
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

from natural_bm.io import atomic_write_text
from natural_bm.run.provenance import git_commit


def interleaved(contestants: dict[str, Callable[[int], float]], repeats: int, unit: str = "s",
                digits: int = 2) -> dict[str, list[float]]:
    """Call every contestant once per round (A, B, C, A, B, C, ...: the machines are shared and noisy,
    so each round sees the same conditions), ``repeats`` rounds; each call gets the round index and
    returns its time. Prints each round; returns {name: [times]}."""
    times: dict[str, list[float]] = {k: [] for k in contestants}
    for r in range(repeats):
        for name, fn in contestants.items():
            times[name].append(fn(r))
        print(f"round {r + 1}/{repeats}: " + ", ".join(f"{k} {v[-1]:.{digits}f} {unit}" for k, v in times.items()),
              flush=True)
    return times


def markdown_lines(caption: str, header: list[str], rows: list[list[str]]) -> list[str]:
    """A result table as printed: its caption, a blank line, then the markdown header and rows."""
    return [caption, "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(row) + " |" for row in rows)]


def median_rows(times: dict[str, list[float]], last_column: Callable[[float], str], digits: int = 3) -> list[str]:
    """One markdown row per contestant: name, median, min, and ``last_column(median)``."""
    rows = []
    for name, ts in times.items():
        med = statistics.median(ts)
        rows.append(f"| {name} | {med:.{digits}f} | {min(ts):.{digits}f} | {last_column(med)} |")
    return rows


def machine_description() -> str:
    """The CPU, its core count and whether it has bfloat16 products, e.g. "AMD EPYC (family 25, model 1),
    2 cores, no AVX-512 BF16" (from /proc/cpuinfo where there is one; "AVX-512 BF16 and AMX" where the CPU
    has Intel's AMX tiles)."""
    info: dict[str, str] = {}
    flags: set[str] = set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key, value = key.strip(), value.strip()
            if key in ("model name", "cpu family", "model") and key not in info:
                info[key] = value
            elif key == "flags" and not flags:
                flags = set(value.split())
    except OSError:
        return platform.processor() or platform.machine()
    cores = os.cpu_count()
    bf16 = "AVX-512 BF16" if "avx512_bf16" in flags else "no AVX-512 BF16"
    if "amx_bf16" in flags:  # Intel's matrix tiles, which oneDNN uses for bfloat16 products
        bf16 += " and AMX"
    return f"{info.get('model name', '?')} (family {info.get('cpu family', '?')}, model {info.get('model', '?')}), " \
           f"{cores} cores, {bf16}"


def short_commit() -> str:
    """The checkout's short commit, marked where natural_bm's files differ from it (``git_commit``)."""
    commit, dirty = git_commit()
    if commit is None:
        return "unknown"
    return commit[:7] + (" (with uncommitted changes to natural_bm/)" if dirty else "")


def save_results_json(path: str, *, title: str, caption: str, header: list[str], rows: list[list[str]],
                      order: int, source: str, conditions: str) -> None:
    """Write a benchmarks-page table (``docs/benchmarks/*.json``) atomically, with its provenance read
    here rather than typed: the script and its command line, today's date, the commit and the machine."""
    record = {
        "script": Path(sys.argv[0]).as_posix(),
        "order": order,
        "title": title,
        "command": "python " + " ".join(shlex.quote(a) for a in sys.argv),
        "caption": caption,
        "date": datetime.date.today().isoformat(),
        "commit": short_commit(),
        "machine": machine_description(),
        "conditions": conditions,
        "source": source,
        "header": header,
        "rows": rows,
    }
    atomic_write_text(path, json.dumps(record, indent=1) + "\n")
