"""The benchmarks' results files (``scripts/bench_common.save_results_json``): the fields the benchmarks
page reads, with provenance filled in rather than typed."""

import json
import sys
from pathlib import Path

REPO = Path(__file__).parents[1]
sys.path.insert(0, str(REPO / "scripts"))

import bench_common  # noqa: E402


def test_results_file_has_the_recorded_tables_fields(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["scripts/bench_x.py", "--repeats", "3"])
    path = tmp_path / "table.json"
    rows = [["a", "1.00"], ["b", "2.50"]]
    bench_common.save_results_json(str(path), title="T", caption="C", header=["name", "s"], rows=rows, order=7,
                                   source="issue 0", conditions="quiet")
    written = json.loads(path.read_text())
    recorded = json.loads((REPO / "docs" / "benchmarks" / "bench_sklearn_cpu.json").read_text())
    assert set(written) == set(recorded)  # the page's renderer reads every one of these fields
    assert written["rows"] == rows and written["header"] == ["name", "s"] and written["order"] == 7
    assert written["script"] == "scripts/bench_x.py"
    assert written["command"] == "python scripts/bench_x.py --repeats 3"
    assert len(written["date"]) == 10 and written["date"][4] == "-"
    assert not list(tmp_path.glob("*.tmp*"))  # written atomically, nothing left beside it


def _describe(tmp_path, monkeypatch, cpuinfo_text: str) -> str:
    """``machine_description()`` with ``/proc/cpuinfo`` replaced by ``cpuinfo_text``."""
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(cpuinfo_text)
    real_path = bench_common.Path
    monkeypatch.setattr(bench_common, "Path", lambda p: real_path(cpuinfo) if p == "/proc/cpuinfo" else real_path(p))
    return bench_common.machine_description()


def test_machine_description_reads_cpuinfo(tmp_path, monkeypatch):
    text = _describe(tmp_path, monkeypatch, "processor\t: 0\nmodel name\t: Test CPU\ncpu family\t: 25\nmodel\t\t: 17\n"
                     "flags\t\t: fpu sse avx512_bf16\n\nprocessor\t: 1\nmodel name\t: Test CPU\n")
    assert text.startswith("Test CPU (family 25, model 17), ") and text.endswith("cores, AVX-512 BF16")


def test_machine_description_names_amx(tmp_path, monkeypatch):
    text = _describe(tmp_path, monkeypatch, "model name\t: Test Xeon\ncpu family\t: 6\nmodel\t\t: 143\n"
                     "flags\t\t: fpu avx512_bf16 amx_bf16 amx_tile\n")
    assert text.endswith("cores, AVX-512 BF16 and AMX")
