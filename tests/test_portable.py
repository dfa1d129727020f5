"""Portable model files (.npz, .safetensors): read by numpy alone as the module docstring documents, every
model class round-tripped through both formats, damaged files refused in one line."""

import ast
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

import natural_bm
from natural_bm import DBM, DBN, RBM
from natural_bm.models import portable
from natural_bm.models.portable import export_model, read_portable, read_portable_header

FORMATS = ["npz", "safetensors"]


def _randomised(model, seed: int = 0):
    """``model`` with every parameter drawn at random (biases and sigmas too, so each one matters)."""
    g = torch.Generator().manual_seed(seed)
    params = portable._parameters(model)
    with torch.no_grad():
        for p in params.values():
            p.copy_(0.3 * torch.randn(p.shape, generator=g, dtype=torch.float64))
    return model


def _models():
    return {
        "rbm": _randomised(RBM(12, 5, seed=0)),
        "rbm_factors": _randomised(RBM(12, 5, up_factor=2.0, down_factor=0.5, seed=0), 1),
        "gaussian_rbm": _randomised(RBM(12, 5, units=[{"type": "gaussian", "sigma": np.linspace(0.5, 2, 12).tolist()},
                                                      "bernoulli"], seed=0), 2),
        "learned_sigma_rbm": _randomised(RBM(12, 5, units=[{"type": "gaussian", "sigma": 0.7, "learn_sigma": True},
                                                           "bernoulli"], seed=0), 3),
        "dbm_softmax_skip": _randomised(DBM([8, 4, 6, 3], topology={0: [1, 3], 1: [2], 2: [3]},
                                            units=["gaussian", "bernoulli", {"type": "softmax", "group_size": 3},
                                                   "bernoulli"], seed=0), 4),
        "dbn": _randomised(DBN([12, 6, 4], seed=0), 5),
    }


def _docstring_reader() -> str:
    """The code block of portable.py's docstring "Reading an .npz file with numpy alone::" (the file is
    parsed, not imported, so the documentation itself is what runs)."""
    doc = ast.get_docstring(ast.parse(Path(portable.__file__).read_text()))
    block = doc.split("Reading an .npz file with numpy alone::", 1)[1]
    return textwrap.dedent(block)


def test_numpy_alone_reads_the_npz_and_reproduces_the_free_energy(tmp_path):
    models = {k: m for k, m in _models().items() if isinstance(m, RBM)}
    rng = np.random.default_rng(0)
    expected = {}
    for name, m in models.items():
        v = rng.random((5, 12)) if m.binary_visible else rng.normal(size=(5, 12))
        if m.binary_visible:
            v = (v > 0.5).astype(np.float64)
        np.save(tmp_path / f"{name}_rows.npy", v)
        export_model(m, tmp_path / f"{name}.npz")
        with torch.no_grad():
            expected[name] = m.detached_copy(dtype=torch.float64).free_energy(torch.as_tensor(v)).numpy()
    script = _docstring_reader() + textwrap.dedent(f"""
        import sys
        out = {{}}
        for name in {sorted(models)!r}:
            header, arrays = read_npz({str(tmp_path)!r} + f"/{{name}}.npz")
            v = np.load({str(tmp_path)!r} + f"/{{name}}_rows.npy")
            out[name] = rbm_free_energy(header, arrays, v).tolist()
        assert sys.modules.get("torch") is None  # (the blocker; nothing imported torch)
        print(json.dumps(out))
    """)
    blocker = "import sys; sys.modules['torch'] = None\n"  # any `import torch` now raises ImportError
    run = subprocess.run([sys.executable, "-c", blocker + script], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    got = json.loads(run.stdout)
    for name in models:
        np.testing.assert_allclose(got[name], expected[name], rtol=1e-6, err_msg=name)  # float32 weights
    assert len({round(float(np.mean(got[k])), 3) for k in got}) == len(got)  # four different models


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_model_class_round_trips(tmp_path, fmt):
    for name, m in _models().items():
        path = export_model(m, tmp_path / f"{name}.{fmt}", dataset={"name": "toy", "kind": "probability"})
        r = read_portable(path)
        assert type(r) is type(m) and r.get_config() == m.get_config(), name
        a, b = portable._parameters(m), portable._parameters(r)
        assert a.keys() == b.keys()
        for key in a:
            assert torch.equal(a[key], b[key]) and a[key].dtype == b[key].dtype, (name, key)
        if not isinstance(m, DBN):
            states = m.init_states(torch.rand(4, m.n_visible), torch.Generator().manual_seed(0))
            assert r.units_config() == m.units_config() and r.edges == m.edges
            assert torch.equal(r.free_energy_parity(states, sum_out=1), m.free_energy_parity(states, sum_out=1)), name
        header = read_portable_header(path)
        assert header["class"] == type(m).__name__ and header["dataset"] == {"name": "toy", "kind": "probability"}
        assert header["library_version"] == natural_bm.__version__ and header["beta"] == 1.0
        assert header["n_parameters"] == sum(p.numel() for p in a.values())
    dbm = read_portable_header(tmp_path / f"dbm_softmax_skip.{fmt}")
    assert [e["layers"] for e in dbm["edges"]] == [[0, 1], [0, 3], [1, 2], [2, 3]]
    assert dbm["layers"][2]["units"] == {"type": "softmax", "group_size": 3}
    assert read_portable_header(tmp_path / f"rbm_factors.{fmt}")["input_factors"] == [
        {"from": 0, "to": 1, "factor": 2.0}, {"from": 1, "to": 0, "factor": 0.5}]


@pytest.mark.parametrize("fmt", FORMATS)
def test_dtypes_round_trip_and_can_be_overridden(tmp_path, fmt):
    for dtype in (torch.float64, torch.bfloat16, torch.float16):
        m = _randomised(RBM(6, 3, dtype=dtype, seed=0))
        path = export_model(m, tmp_path / f"m.{fmt}")
        r = read_portable(path)
        assert r.dtype == dtype and torch.equal(r.W, m.W), dtype
    assert read_portable(path, dtype=torch.float32).dtype == torch.float32


def test_a_pt_file_exports_and_not_a_model_is_refused(tmp_path):
    m = _models()["rbm"]
    m.save(tmp_path / "m.pt")
    r = read_portable(export_model(tmp_path / "m.pt", tmp_path / "m.npz"))
    assert torch.equal(r.W, m.W)
    export_model(tmp_path / "m.npz", tmp_path / "m.safetensors")  # from one portable format to the other
    for suffix in (".pt", ".npz", ".safetensors"):  # load_model dispatches by suffix
        loaded = portable.load_model(tmp_path / f"m{suffix}", dtype=torch.float64)
        assert isinstance(loaded, RBM) and loaded.dtype == torch.float64 and torch.equal(loaded.W, m.W.double())
    with pytest.raises(ValueError, match="from its suffix"):
        export_model(m, tmp_path / "m.bin")
    with pytest.raises(ValueError, match="has the suffix .npz but format='safetensors'"):
        export_model(m, tmp_path / "m.npz", format="safetensors")
    with pytest.raises(ValueError, match="`format` must be one of"):
        export_model(m, tmp_path / "m", format="hdf5")
    with pytest.raises(TypeError, match="takes an RBM, DBM or DBN"):
        export_model(torch.nn.Linear(2, 2), tmp_path / "x.npz")
    with pytest.raises(FileNotFoundError, match="model file not found"):
        read_portable(tmp_path / "missing.npz")
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(ValueError, match="not a readable natural_bm npz model file.*no 'header' entry"):
        read_portable(tmp_path / "other.npz")
    export_model(m, tmp_path / "m2", format="npz")  # no suffix: written as asked, no .npz appended
    assert (tmp_path / "m2").is_file()


def test_safetensors_missing_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "safetensors", None)
    monkeypatch.setitem(sys.modules, "safetensors.numpy", None)
    with pytest.raises(ImportError, match=r"pip install natural_bm\[safetensors\]"):
        export_model(_models()["rbm"], tmp_path / "m.safetensors")


def _rewrite_checksum(path: Path, fmt: str) -> None:
    """Write ``path`` again with its checksum replaced by that of other contents."""
    wrong = "0" * 64
    if fmt == "npz":
        with np.load(path) as f:
            entries = {k: f[k] for k in f.files}
        entries["checksum"] = np.frombuffer(wrong.encode(), np.uint8)
        with open(path, "wb") as f:
            np.savez(f, **entries)
    else:
        from safetensors import safe_open
        from safetensors.numpy import save

        with safe_open(str(path), framework="np") as f:
            meta, arrays = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
        path.write_bytes(save(arrays, metadata={**meta, "checksum": wrong}))


@pytest.mark.parametrize("fmt", FORMATS)
def test_damaged_files_are_refused_in_one_line(tmp_path, fmt):
    m = _models()["gaussian_rbm"]
    good = export_model(m, tmp_path / f"good.{fmt}").read_bytes()
    W = m.W.detach().numpy().tobytes()
    w_at = good.find(W[:64])  # where the weights' bytes lie (npz members are stored uncompressed)
    assert w_at > 0
    h_at = good.find(b"format_version")  # a byte of the JSON header
    flip = lambda data, at: data[:at] + bytes([data[at] ^ 0x04]) + data[at + 1:]  # noqa: E731
    damaged = {"truncated": good[: len(good) // 2], "weights_bit_flipped": flip(good, w_at + 10),
               "header_bit_flipped": flip(good, h_at + 3)}
    for name, data in damaged.items():
        assert data != good, name
        path = tmp_path / f"{name}.{fmt}"
        path.write_bytes(data)
        with pytest.raises(ValueError) as err:
            read_portable(path)
        message = str(err.value)
        assert "\n" not in message and str(path) in message, (name, message)
        assert ("damaged" in message) or ("not a readable" in message), (name, message)
    wrong = tmp_path / f"wrong_checksum.{fmt}"
    wrong.write_bytes(good)
    _rewrite_checksum(wrong, fmt)
    with pytest.raises(ValueError, match="is damaged: its checksum does not match") as err:
        read_portable(wrong)
    assert "\n" not in str(err.value)
    # a sigma changed in the header (the file otherwise intact) is caught by the checksum too
    if fmt == "safetensors":
        from safetensors import safe_open
        from safetensors.numpy import save

        with safe_open(str(tmp_path / f"good.{fmt}"), framework="np") as f:
            meta, arrays = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
        header = json.loads(meta["header"])
        header["layers"][0]["units"]["sigma"][0] = 0.25
        changed = tmp_path / "sigma_changed.safetensors"
        changed.write_bytes(save(arrays, metadata={**meta, "header": json.dumps(header, indent=1, sort_keys=True)}))
        with pytest.raises(ValueError, match="is damaged"):
            read_portable(changed)
