"""The fault table of the reliability guide: every kind of fault the test suite injects, with the number of
cases tried for each, counted from the suite itself.

The counts come from collecting the tests (``pytest --collect-only`` of the default run, ``-m "not slow"``,
in a child process): a plain test item is one case, and a property-based test is the number of examples
Hypothesis is set to try under the default profile ("quick", ``tests/conftest.py``). Nothing is typed by
hand but the fault kinds, which tests inject them (``FAULTS``: test files and a pattern of test names) and
what the tests check. A fault kind whose tests are not in the suite yet counts 0 and says so.

Usage: python scripts/fault_table.py [--out docs/guide/_generated/fault_table.md]
(the documentation build calls ``fault_table_markdown()``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import is_hypothesis_test, settings
from hypothesis.errors import InvalidArgument

from natural_bm.io import atomic_write_text

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "docs" / "guide" / "_generated" / "fault_table.md"
MARK = "FAULT_TABLE_COLLECTED "


@dataclasses.dataclass(frozen=True)
class Fault:
    """A kind of fault, the tests that inject it (file, pattern of the test's name with its parameters) and
    what they check."""

    kind: str
    tests: tuple[tuple[str, str], ...]
    checked: str


R, C = "tests/test_reliability.py", "tests/test_cli.py"
FAULTS = (
    Fault("kill in the middle of a run (the files a crash in epoch 2 leaves)",
          ((C, r"test_resume_equals_uninterrupted$"),),
          "`--resume`: same weights and log as the uninterrupted run"),
    Fault("kill after the last checkpoint, before the results",
          ((R, r"test_resume_after_a_kill_past_the_last_checkpoint"),),
          "`--resume` writes model, AIS, samples, summary and results: identical to the uninterrupted run's"),
    Fault("`--resume` of a finished run", ((R, r"test_resume_of_a_finished_run"),),
          "every file byte-identical; exit 0"),
    Fault("`--resume` after `config.json` was edited (and, as a control, not edited)",
          ((R, r"test_resume_warns_about_an_edited_config|test_resume_of_an_unedited_config"),),
          "one warning naming each changed key, old and new value; the run finishes with the edited config; no "
          "warning without an edit"),
    Fault("kill in epoch 0, before any checkpoint", ((R, r"test_resume_with_no_checkpoint"),),
          "`--resume` restarts from `config.json`: the same results as a fresh run"),
    Fault("kill at start (a folder holding only `.lock`)",
          (("tests/test_config.py", r"test_a_folder_holding_only_the_lock"),),
          "`--resume` with a config starts the run there; without one, one line saying how to start it"),
    Fault("kill during a DBM's greedy pre-training, or after the DBM's epoch 0",
          ((R, r"test_a_killed_dbm_run_resumes|test_resume_during_pretraining"),),
          "`--resume` continues that RBM (or the DBM) from its checkpoint: the uninterrupted run's weights and "
          "pre-training logs, bit for bit, also from a `natural-bm snapshot` unpacked elsewhere"),
    Fault("kill with stateful callbacks (schedules, early stopping, checkpoints, snapshot ensembles, samples)",
          ((R, r"test_kill_and_resume_is_bit_identical_for_stateful_callbacks|"
               r"test_without_the_callback_state"),),
          "kill after epoch 1 and resume: bit-identical weights, logs and callback records; without the saved "
          "state CyclicLR's resume differs (a test of the test)"),
    Fault("pre-emption signal (SIGTERM, SIGUSR1) during training, one process and under `torchrun`",
          (("tests/test_preemption.py", r""),),
          "the current update finishes, the last checkpoint is kept, exit status 75; `--resume` continues "
          "bit-identically"),
    Fault("a lost rank: one of 2 `torchrun` ranks killed (SIGKILL) or frozen (SIGSTOP) in an epoch",
          (("tests/test_lost_rank.py", r""),),
          "the other rank ends within the collective timeout with one line naming the lost rank; `--resume` "
          "gives the uninterrupted run's weights, bit for bit"),
    Fault("damaged latest checkpoint (truncated state file) and orphaned `*.tmp` files",
          ((R, r"test_a_damaged_latest_checkpoint"),),
          "warning naming the file, resume from the previous checkpoint, the same final weights; orphans removed"),
    Fault("one flipped bit in a model file", ((R, r"test_one_flipped_bit"),),
          "`ValueError` / `natural-bm logz` exit 2: \"damaged: its checksum does not match\""),
    Fault("hostile model files: text, random bytes, empty, int64 dtype header, unknown optimiser class",
          ((R, r"test_hostile_model_files"),),
          "one line naming the file, exit 2; no traceback, no torch `weights_only` advice"),
    Fault("generated model files: random truncations, flipped bits, overwritten and appended bytes of saved "
          "models and checkpoints, random bytes",
          (("tests/test_model_file_properties.py", r""),),
          "a one-line `ValueError` naming the file, or (damage to nothing read) exactly the file's contents"),
    Fault("damaged `log.csv` on resume: empty, binary, truncated", ((R, r"test_damaged_log_on_resume"),),
          "one line naming the file and the way out, exit 2"),
    Fault("bad config values, by hand (zero, negative, non-finite, wrong types, unknown keys, malformed "
          "RemoteMonitor URLs)",
          ((R, r"test_bad_config_values|test_yaml_strings_and_missing_sections|"
               r"test_remote_monitor_malformed_root"),),
          "one line naming the key and the expected type or range, exit 2, nothing written"),
    Fault("generated configs: random mappings of keys and values",
          (("tests/test_config_properties.py", r"test_any_config_trains"),),
          "trains, or one line naming a key before any file is written"),
    Fault("data the model refuses (real values for Bernoulli units), once refused only after the folder was made",
          (("tests/test_config.py", r"test_real_valued_data_for_bernoulli_units_is_refused"),
           ("tests/test_config_properties.py", r"test_any_data_file_trains_or_is_refused")),
          "refused before anything is written (generated data files too: random shapes, ranges, NaN, inf, "
          "integers); the folder is left as it was"),
    Fault("generated data files: .npy, .npz and .csv of random shapes, dtypes and values, truncated, "
          "extended, bit-flipped, with headers, other delimiters and extra columns",
          (("tests/test_file_properties.py", r""),),
          "the documented float32 matrix, equal to an independent reading, or one line naming the file"),
    Fault("output path is a file or under a file", ((R, r"test_output_paths_that_cannot_be_folders"),),
          "one line, exit 2, the file untouched"),
    Fault("full disk (`ulimit -f 1` in a subshell, resume writing `model.pt`)", ((R, r"test_a_full_disk"),),
          "one line \"File too large: .../model.pt\", exit 2; every previous file byte-identical, no temporary "
          "file left"),
    Fault("checkpoint retention (keep the newest 2 and the best)", ((R, r"test_checkpoint_retention"),),
          "only those epochs' files remain; the newest is always kept, so resume is unaffected"),
    Fault("two runs into one folder (a held lock; two processes started together)",
          ((R, r"test_a_second_run_into_a_locked_folder|test_two_runs_started_together"),),
          "one runs, the other gets one line and exit 2; the folder holds one seed's checkpoints, model and "
          "results"),
    Fault("divergence (learning rate 1e38 from epoch 2, TerminateOnNaN)", ((R, r"test_diverged_run"),),
          "exit 3, status `diverged`, no `model.pt`, checkpoints 0-1 only and finite; `--resume` continues from "
          "epoch 1"),
    Fault("non-finite weights or `log_z` given to an estimator; a model far below the uniform baseline",
          ((R, r"test_estimators_refuse_non_finite|test_a_model_below_the_uniform_baseline"),),
          "`ValueError` naming the parameter; a `RuntimeWarning` when the mean log-likelihood is over 1 nat "
          "below -n_visible log 2"),
    Fault("a monitor server that sends one byte every 0.3 s", ((R, r"test_remote_monitor_deadline"),),
          "each post ends at its deadline with a warning; training goes on"),
    Fault("sparse or meta-device tensors as data", ((R, r"test_sparse_and_meta_data"),),
          "`TypeError` naming the argument"),
)


# ---------------------------------------------------------------------------- collecting (child process)


class _Collector:
    """A pytest plugin that records every test item of the session after deselection, with the examples
    Hypothesis is set to try for it (1 for a plain test)."""

    def __init__(self) -> None:
        self.items: list[dict] = []
        self.profile: dict = {}

    def pytest_collection_finish(self, session) -> None:
        for item in session.items:
            fn = getattr(item, "obj", None)
            examples = 1
            if fn is not None and is_hypothesis_test(fn):
                # the test's own settings (a multiple of the profile's, or the profile's when it sets none)
                own = getattr(fn, "_hypothesis_internal_use_settings", None)
                examples = (own or settings.default).max_examples
            self.items.append({"nodeid": item.nodeid, "examples": examples})
        try:
            nightly = settings.get_profile("nightly").max_examples
        except InvalidArgument:  # (no such profile registered)
            nightly = None
        self.profile = {"name": settings.get_current_profile_name(), "max_examples": settings.default.max_examples,
                        "nightly": nightly}


def _collect_here(files: list[str]) -> int:
    collector = _Collector()
    code = pytest.main(["--collect-only", "-q", "-p", "no:cacheprovider", "-m", "not slow", *files],
                       plugins=[collector])
    print(MARK + json.dumps({"code": int(code), "items": collector.items, "profile": collector.profile}))
    return 0


def collect(files: list[str]) -> dict:
    """The default run's test items of ``files`` (paths relative to the repository), from a child process:
    {"items": [{"nodeid", "examples"}], "profile": {...}}. RuntimeError when collecting fails."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("NATURAL_BM_HYPOTHESIS_PROFILE", None)  # the default profile's counts
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--collect-in-process", *files],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=1200)
    lines = [line for line in proc.stdout.splitlines() if line.startswith(MARK)]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"collecting {files} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    result = json.loads(lines[-1][len(MARK):])
    if result["code"] not in (0, 5):  # 5: no tests collected
        raise RuntimeError(f"collecting {files} failed (pytest exit {result['code']}):\n{proc.stdout[-3000:]}")
    return result


# ---------------------------------------------------------------------------- the table


def counts(faults=FAULTS) -> tuple[list[tuple[Fault, int, int, list[str]]], dict]:
    """(fault, cases, test items, missing files) for each fault, and the Hypothesis profile."""
    files = sorted({path for f in faults for path, _ in f.tests if (REPO / path).is_file()})
    collected = collect(files) if files else {"items": [], "profile": {}}
    rows = []
    for fault in faults:
        cases, items, missing = 0, 0, []
        for path, pattern in fault.tests:
            if not (REPO / path).is_file():
                missing.append(path)
                continue
            for item in collected["items"]:
                file, _, name = item["nodeid"].partition("::")
                if file == path and re.search(pattern, name):
                    cases += item["examples"]
                    items += 1
        rows.append((fault, cases, items, missing))
    return rows, collected["profile"]


def fault_table_markdown() -> str:
    """The table as MyST Markdown (what ``docs/guide/_generated/fault_table.md`` holds)."""
    rows, profile = counts()
    lines = ["| fault | cases | what the tests check |", "|---|---:|---|"]
    for fault, cases, items, _missing in rows:
        if items:
            shown = f"{cases:,}" + (f" ({items} test{'s' if items > 1 else ''})" if cases != items else "")
        else:  # (its test file, or its tests in a file, are still to be written)
            shown = "0 (not in the suite yet)"
        lines.append(f"| {fault.kind} | {shown} | {fault.checked} |")
    name, quick, nightly = profile.get("name"), profile.get("max_examples"), profile.get("nightly")
    note = ("\nCases: one per test of the default run (`pytest -m \"not slow\"`, parametrised cases counted "
            "one by one); for the generated inputs, the examples Hypothesis tries, summed over their tests")
    if quick:
        note += f" (profile \"{name}\": {quick:,} per test unless the test asks for a multiple)"
    if nightly and quick:
        note += (f"; `NATURAL_BM_HYPOTHESIS_PROFILE=nightly` tries {nightly // quick:,} times as many, new ones "
                 f"each run")
    return "\n".join(lines) + "\n" + note + ". Counted by `scripts/fault_table.py` from the test suite.\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=OUT, help=f"file to write (default {OUT.relative_to(REPO)})")
    p.add_argument("--collect-in-process", nargs="*", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.collect_in_process is not None:
        return _collect_here(args.collect_in_process)
    text = fault_table_markdown()
    atomic_write_text(args.out, text)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
