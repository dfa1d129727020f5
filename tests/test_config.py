"""The run config: one definition (natural_bm.run.config) and what derives from it, --set overrides, and the
two configs the runner used to get wrong."""

import dataclasses
import json
import math
import shutil

import numpy as np
import pytest
import torch
import yaml
from cli_helpers import one_error_line

from natural_bm import RBM
from natural_bm import run as run_package
from natural_bm.cli import main
from natural_bm.estimators import log_partition_exact
from natural_bm.run import ConfigError, apply_overrides, config_reference_markdown, defaults, resolve_config
from natural_bm.run.config import RunConfig, section_classes
from natural_bm.run.overrides import parse_override, refused_on_resume

CONFIG = {
    "model": {"type": "rbm", "n_hidden": 5},
    "data": {"name": "bars_and_stripes", "size": 3, "n_samples": 60},
    "training": {"epochs": 2, "batch_size": 20, "n_chains": 10},
    "optimizer": {"lr": 0.05, "momentum": 0.5},
    "ais": {"n_runs": 10, "n_betas": 50, "exact": True},
    "samples": {"n_chains": 2, "n_samples": 2, "plot_every": 2},
    "seed": 2,
}


def _write(folder, cfg, name="cfg.json"):
    path = folder / name
    path.write_text(yaml.safe_dump(cfg) if name.endswith(".yaml") else json.dumps(cfg))
    return path


def _all_keys():
    for f in dataclasses.fields(RunConfig):
        cls = section_classes().get(f.name)
        yield from ([(f.name, sub) for sub in (g.name for g in dataclasses.fields(cls))] if cls else [(None, f.name)])


# ---------------------------------------------------------------------------- one definition


def test_the_defaults_and_the_reference_come_from_one_definition():
    d = defaults()
    keys = list(_all_keys())
    assert len(keys) == sum(len(v) if isinstance(v, dict) else 1 for v in d.values())
    assert d["optimizer"]["lr"] == 0.01 and d["training"]["algorithm"] == "auto" and d["callbacks"] == []
    for f in dataclasses.fields(RunConfig):  # every key has a rule and a one-line meaning
        for g in dataclasses.fields(section_classes()[f.name]) if f.name in section_classes() else [f]:
            assert callable(g.metadata["rule"]) and g.metadata["rule"].allowed and "\n" not in g.metadata["doc"]
    table = config_reference_markdown()
    lines = table.strip().splitlines()
    assert lines[0] == "| section | key | type | default | allowed | meaning |" and len(lines) == 2 + len(keys)
    assert "| `optimizer` | `lr` | `float` | `0.01` | a number > 0 | learning rate |" in lines


def test_the_reference_is_a_valid_myst_table_with_every_key():
    pytest.importorskip("myst_parser")
    from markdown_it.renderer import RendererHTML
    from myst_parser.config.main import MdParserConfig
    from myst_parser.parsers.mdit import create_md_parser

    md = create_md_parser(MdParserConfig(), RendererHTML)
    tokens = md.parse(config_reference_markdown())
    rows = [t for t in tokens if t.type == "tr_open"]
    cells = [t for t in tokens if t.type in ("td_open", "th_open")]
    assert len(rows) == 1 + len(list(_all_keys())) and len(cells) == 6 * len(rows)
    assert not [t for t in tokens if t.type not in _TABLE_TOKENS], {t.type for t in tokens} - _TABLE_TOKENS
    inline = " ".join(c.type for t in tokens if t.type == "inline" for c in t.children or [])
    assert "myst_role" not in inline and "math" not in inline  # braces and dollars stayed text
    html = md.render(config_reference_markdown())
    assert "<code>int | None</code>" in html  # the escaped pipe of a type


_TABLE_TOKENS = {"table_open", "table_close", "thead_open", "thead_close", "tbody_open", "tbody_close", "tr_open",
                 "tr_close", "th_open", "th_close", "td_open", "td_close", "inline"}


def test_train_help_lists_every_key_with_its_meaning(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = capsys.readouterr().out
    for section, name in _all_keys():
        assert (f"  {section}.{name}: " if section else f"  {name}: ") in text, (section, name)
    assert "--set KEY=VALUE" in text and "75" in text and "SIGUSR1" in text


def test_resolve_fills_every_default_and_is_idempotent():
    cfg = resolve_config({"model": {}})
    assert cfg["training"]["algorithm"] == "pcd"  # auto: pcd for an RBM
    assert resolve_config({"model": {"type": "dbm", "layer_sizes": [4, 3]}})["training"]["algorithm"] == "mfpcd"
    assert resolve_config(json.loads(json.dumps(cfg))) == cfg
    with pytest.raises(ConfigError, match=r"config section 'ais' must be a mapping, got \[1\] \(list\)"):
        resolve_config({"model": {}, "ais": [1]})


# ---------------------------------------------------------------------------- the two bugs


def test_an_rbm_config_trains_with_the_exact_gradient(tmp_path):
    """Before natural_bm.run, ExactGradient was handed k and the run died with a TypeError traceback."""
    cfg = {**CONFIG, "training": {**CONFIG["training"], "algorithm": "exact", "k": 3}}
    assert main(["train", str(_write(tmp_path, cfg)), "--out", str(tmp_path / "run"), "--verbose", "0"]) == 0
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    model = RBM.load(tmp_path / "run" / "model.pt")
    assert results["status"] == "complete" and results["logZ_exact"] == pytest.approx(log_partition_exact(model))
    by_hand = RBM(9, 5, seed=2).compile(run_package.build.build_optimizer(resolve_config(cfg)["optimizer"]), "exact")
    x, valid, _, _ = run_package.load_data(resolve_config(cfg))
    by_hand.init_from_data(x)
    by_hand.fit(x, batch_size=20, epochs=2, validation_data=valid, verbose=0, seed=2)
    for name in model.param_names:  # the run is ExactGradient's fit, nothing else
        torch.testing.assert_close(getattr(model, name), getattr(by_hand, name), rtol=0, atol=0)


@pytest.mark.parametrize("algorithm", ["cd", "pcd", "exact"])
def test_a_dbm_asked_for_an_rbm_algorithm_is_refused(algorithm, tmp_path, capsys):
    """Before natural_bm.run, a DBM asked for cd, pcd or exact silently trained with mfpcd."""
    cfg = {**CONFIG, "model": {"type": "dbm", "layer_sizes": [9, 4, 3]},
           "training": {**CONFIG["training"], "algorithm": algorithm}}
    assert main(["train", str(_write(tmp_path, cfg)), "--out", str(tmp_path / "run")]) == 2
    one_error_line(capsys, f"training.algorithm {algorithm!r} does not train a DBM", "'mfpcd' or 'pt'")
    assert not (tmp_path / "run").exists()


def test_a_dbm_trains_with_the_algorithm_it_is_asked_for(tmp_path):
    cfg = {**CONFIG, "model": {"type": "dbm", "layer_sizes": [9, 4, 3]},
           "training": {**CONFIG["training"], "algorithm": "pt", "n_temperatures": 3}}
    model = run_package.build_model(resolve_config(cfg), 9)
    alg = model.trainer.algorithm
    assert alg.name == "pt" and len(alg.betas) == 3 and alg.mf_steps == resolve_config(cfg)["training"]["mf_steps"]
    default = run_package.build_model(resolve_config({**cfg, "training": CONFIG["training"]}), 9)
    assert default.trainer.algorithm.name == "mfpcd"


def test_a_results_folder_written_before_reads_a_dbms_pcd_as_mfpcd(tmp_path):
    from natural_bm.run.checkpoints import read_run_config

    old = {**CONFIG, "model": {"type": "dbm", "layer_sizes": [9, 4, 3]},
           "training": {**CONFIG["training"], "algorithm": "pcd"}}
    (tmp_path / "config.json").write_text(json.dumps(old))
    assert read_run_config(tmp_path)["training"]["algorithm"] == "mfpcd"
    with pytest.raises(ConfigError, match="does not train a DBM"):
        resolve_config(old)


# ---------------------------------------------------------------------------- --set


def test_overrides_parse_yaml_values_and_nest():
    assert parse_override("optimizer.lr=1e-3") == (["optimizer", "lr"], "1e-3")  # YAML 1.1; the rule reads it
    assert parse_override("model.layer_sizes=[9, 4, 3]") == (["model", "layer_sizes"], [9, 4, 3])
    assert parse_override("training.centering={rate: 0.01}")[1] == {"rate": 0.01}
    assert parse_override("ais.n_betas=null")[1] is None and parse_override("ais.exact=true")[1] is True
    raw = apply_overrides({"model": {"n_hidden": 3}}, ["model.n_hidden=7", "seed=4", "training.centering.rate=0.1"])
    assert raw == {"model": {"n_hidden": 7}, "seed": 4, "training": {"centering": {"rate": 0.1}}}
    for bad, message in (("optimizer.lr", "write KEY=VALUE"), ("=3", "write KEY=VALUE"), ("a..b=1", "KEY=VALUE"),
                         ("model.n_hidden=[1, 2", "is not YAML"), ("model.n_hidden.x=1", "not a mapping")):
        with pytest.raises(ConfigError, match=message):
            apply_overrides({"model": {"n_hidden": 3}}, [bad])


def test_set_overrides_are_checked_as_the_file_is_and_recorded(tmp_path, capsys):
    path = _write(tmp_path, CONFIG, "cfg.yaml")
    out = tmp_path / "run"
    assert main(["train", str(path), "--out", str(out), "--verbose", "0", "--set", "optimizer.lr=0.02",
                 "--set", "model.n_hidden=4", "--set", "training.epochs=1"]) == 0
    saved = json.loads((out / "config.json").read_text())
    assert saved["optimizer"]["lr"] == 0.02 and saved["model"]["n_hidden"] == 4 and saved["training"]["epochs"] == 1
    assert RBM.load(out / "model.pt").n_hidden == 4
    for override, message in (("optimizer.lr=0", "optimizer.lr must be a finite number > 0, got 0"),
                              ("optimizer.learning_rate=1", "unknown key optimizer.learning_rate; valid keys:"),
                              ("trainnig.epochs=1", "unknown config key 'trainnig'; valid keys:"),
                              ("training.epochs='3'", "training.epochs must be an integer >= 1, got the string '3'")):
        capsys.readouterr()
        assert main(["train", str(path), "--out", str(tmp_path / "bad"), "--set", override]) == 2
        one_error_line(capsys, message)
        assert not (tmp_path / "bad").exists()


def test_set_on_resume_may_only_change_epochs_and_the_finish(tmp_path, capsys, recwarn):
    out = tmp_path / "run"
    assert main(["train", str(_write(tmp_path, CONFIG)), "--out", str(out), "--verbose", "0"]) == 0
    before = (out / "config.json").read_text()
    capsys.readouterr()
    assert main(["train", "--resume", str(out), "--set", "optimizer.lr=0.5"]) == 2
    one_error_line(capsys, "optimizer.lr: 0.05 -> 0.5",
                    "keeps its settings except training.epochs, ais.*, samples.* and threads")
    assert (out / "config.json").read_text() == before
    assert refused_on_resume(["ais.n_betas: 50 -> 60", "training.epochs: 2 -> 3", "training.k: 1 -> 2"]) == [
        "training.k: 1 -> 2"]
    # more epochs: the run goes on from its last checkpoint, and config.json records the override
    (out / "results.json").unlink()
    assert main(["train", "--resume", str(out), "--verbose", "0", "--set", "training.epochs=3"]) == 0
    assert json.loads((out / "config.json").read_text())["training"]["epochs"] == 3
    assert json.loads((out / "results.json").read_text())["epochs_run"] == 3
    assert not [w for w in recwarn if "was edited" in str(w.message)]  # a --set is recorded, not a hand edit


# ---------------------------------------------------------------------------- folders left unusable (issue 35)


def test_a_folder_holding_only_the_lock_starts_the_given_config(tmp_path, capsys):
    """A run killed in its first milliseconds leaves only .lock (and maybe a temporary file): --resume with a
    config starts that config there, as a fresh run would; without one it says how to start it."""
    fresh = tmp_path / "fresh"
    assert main(["train", str(_write(tmp_path, CONFIG)), "--out", str(fresh), "--verbose", "0"]) == 0
    killed = tmp_path / "killed"
    killed.mkdir()
    (killed / ".lock").write_text("123\n")
    (killed / ".config.json.ab12.tmp").write_text("{")  # half of the config a kill cut off
    assert main(["train", "--resume", str(killed)]) == 2
    one_error_line(capsys, "config.json not found", f"natural-bm train CONFIG --resume {killed}")
    assert sorted(p.name for p in killed.iterdir()) == [".config.json.ab12.tmp", ".lock"]
    assert main(["train", str(_write(tmp_path, CONFIG)), "--resume", str(killed), "--verbose", "0"]) == 0
    assert json.loads((killed / "results.json").read_text()) == json.loads((fresh / "results.json").read_text())
    assert not list(killed.glob(".*.tmp"))
    # a second time, the folder is a results folder: the config argument is ignored, the finished run kept
    assert main(["train", str(_write(tmp_path, CONFIG)), "--resume", str(killed), "--verbose", "0"]) == 0
    capsys.readouterr()
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    assert main(["train", str(_write(tmp_path, CONFIG)), "--resume", str(other)]) == 2
    one_error_line(capsys, "holds files but no run")


@pytest.mark.parametrize("layers", [None, [16, 4, 3]])
def test_real_valued_data_for_bernoulli_units_is_refused_before_anything_is_written(layers, tmp_path, capsys):
    x = torch.randn(40, 16, generator=torch.Generator().manual_seed(0)).numpy()
    np.save(tmp_path / "x.npy", x)
    model = {"type": "rbm", "n_hidden": 4} if layers is None else {"type": "dbm", "layer_sizes": layers}
    cfg = {**CONFIG, "model": model, "data": {"name": "files", "train": str(tmp_path / "x.npy"),
                                              "valid_fraction": 0.2}, "samples": {"image_shape": [4, 4]}}
    out = tmp_path / "run"
    (out).mkdir()
    assert main(["train", str(_write(tmp_path, cfg)), "--out", str(out)]) == 2
    fix = "[gaussian, bernoulli]" if layers is None else "[gaussian, bernoulli, bernoulli]"
    one_error_line(capsys, "the training rows must lie in [0, 1]", f"model: {{units: {fix}}}")
    assert list(out.iterdir()) == []  # as it was: empty
    cfg["model"]["units"] = ["gaussian", "bernoulli"] + ([] if layers is None else ["bernoulli"])
    cfg["ais"] = {"n_runs": 10, "n_betas": 50}
    if layers is None:  # the fix the message spells trains, into the same folder
        assert main(["train", str(_write(tmp_path, cfg)), "--out", str(out), "--verbose", "0"]) == 0
        assert json.loads((out / "results.json").read_text())["status"] == "complete"
    shutil.rmtree(out)
    x[3, 5] = math.nan
    np.save(tmp_path / "x.npy", x)
    assert main(["train", str(_write(tmp_path, cfg)), "--out", str(out)]) == 2
    one_error_line(capsys, "NaN")
    assert not out.exists()


def test_dbm_pretraining_epochs_per_rbm_are_checked_before_the_run(tmp_path, capsys):
    cfg = {**CONFIG, "model": {"type": "dbm", "layer_sizes": [9, 4, 3]}, "pretrain": {"epochs": [1, 1, 1]}}
    assert main(["train", str(_write(tmp_path, cfg)), "--out", str(tmp_path / "run")]) == 2
    one_error_line(capsys, "pretrain.epochs lists 3 numbers but the DBM pre-trains 2 RBMs")
    assert not (tmp_path / "run").exists()
