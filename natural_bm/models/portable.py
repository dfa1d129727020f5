"""Model files that numpy, JAX or Julia read without torch: ``.npz`` and ``.safetensors``.

``export_model(model, "rbm.npz")`` writes one; ``read_portable("rbm.npz")``
rebuilds the model from it (RBM, DBM of any topology and unit types, DBN).
Neither format runs code when read (no pickle). The file holds the model's
weights only: no optimiser, persistent chains or training history (``model.save``'s
``.pt`` files keep those, to resume training).

Layout
------
Both formats hold the same things:

* one array per parameter, named as the model names it, in C order,
  little-endian, float16, float32 or float64 (a bfloat16 model's arrays are
  stored as float32, exactly; the header's ``dtype`` says to cast back):

  - RBM: ``W`` (n_visible, n_hidden), ``vbias`` (n_visible,), ``hbias`` (n_hidden,);
  - DBM: ``W_i_j`` (n_i, n_j) for each edge (i, j), i < j, and ``b_k`` (n_k,) for each layer;
  - a learned Gaussian standard deviation of the visible layer: ``log_sigma_0`` (n_visible,);
  - DBN: the RBMs of the stack, ``rbms.l.W``, ``rbms.l.vbias``, ``rbms.l.hbias``;

* a JSON header (UTF-8) that describes the model, and its SHA-256 checksum.

In an ``.npz`` file (a zip archive of ``.npy`` arrays, ``numpy.load``) the
header is the entry ``header``, a uint8 array of its UTF-8 bytes, and the
checksum the entry ``checksum``, a uint8 array of 64 ASCII hex digits. In a
``.safetensors`` file they are the metadata strings ``header`` and
``checksum`` of the file's own JSON header (``__metadata__``).

The checksum is the SHA-256 of the header's UTF-8 bytes followed, for each
array in sorted name order, by the line ``name:dtype:shape`` and a newline
(e.g. ``W:float32:784,500``; a 0-d array has an empty shape) and the array's
raw bytes. It covers every number in the file, the header's too (a Gaussian
layer's sigma, an input factor), so a changed byte anywhere is refused.

The header's fields:

* ``format`` (``"natural_bm.portable"``), ``format_version`` (1), ``library_version``;
* ``class``: ``"RBM"``, ``"DBM"`` or ``"DBN"``; ``config``: the keyword
  arguments that rebuild it in natural_bm (``RBM(**config)``); ``dtype``;
* ``dataset``: the data set it was trained on, as given to ``export_model``, or null;
* ``layers``: ``[{"size": 784, "units": {"type": "bernoulli"}}, ...]``, visible first; units are
  ``bernoulli``, ``gaussian`` (``sigma``: one standard deviation per unit; ``learn_sigma``) or
  ``softmax`` (``group_size``: one unit on in each group of that many consecutive units);
* ``edges``: ``[{"layers": [i, j], "weights": "W_i_j"}, ...]`` (for a DBN also ``"directed"``: true
  below the top RBM); ``biases``: one array name per layer (for a DBN, ``rbms``: each RBM's arrays);
* ``input_factors``: ``[{"from": i, "to": j, "factor": f}]``, the factors (other than 1) that
  multiply edge (i, j)'s input to layer j (an RBM's ``up_factor`` and ``down_factor``);
* ``beta`` (1.0), ``energy`` (the energy in words), ``arrays`` ({name: {"dtype", "shape"}}),
  ``n_parameters``.

The energy of a layered model (RBM, DBM) is, with x_k the states of layer k,
a_kj the input factors::

    E(x) = - sum_edges x_i^T W_i_j x_j - sum_k b_k^T x_k + sum_(Gaussian k) sum_u x_ku^2 / (2 sigma_ku^2)

(input factors scale only the conditionals: layer j's input is b_j + sum_i a_ij x_i W_i_j), and
p(x) = exp(-beta E(x)) / Z. Summing out the hidden layer of an RBM gives its free energy (nats)::

    F(v) = sum_u v_u^2 / (2 sigma_u^2) [Gaussian visible units only] - vbias . v
           - sum_j softplus(hbias_j + up_factor (v W)_j)

Reading an .npz file with numpy alone::

    import hashlib
    import json

    import numpy as np

    def read_npz(path):
        with np.load(path) as f:
            arrays = {name: f[name] for name in f.files}
        header_bytes = arrays.pop("header").tobytes()
        stored = arrays.pop("checksum").tobytes().decode("ascii")
        h = hashlib.sha256(header_bytes)
        for name in sorted(arrays):
            a = np.ascontiguousarray(arrays[name])
            h.update(f"{name}:{a.dtype}:{','.join(map(str, a.shape))}\\n".encode())
            h.update(a.tobytes())
        if h.hexdigest() != stored:
            raise ValueError(f"{path} is damaged: checksum mismatch")
        return json.loads(header_bytes.decode("utf-8")), arrays

    def rbm_free_energy(header, arrays, v):
        W, b, c = arrays["W"], arrays["vbias"], arrays["hbias"]
        up = {(f["from"], f["to"]): f["factor"] for f in header["input_factors"]}.get((0, 1), 1.0)
        out = -v @ b - np.logaddexp(0, c + up * (v @ W)).sum(1)
        units = header["layers"][0]["units"]
        if units["type"] == "gaussian":
            sigma = np.exp(arrays["log_sigma_0"]) if units.get("learn_sigma") else np.asarray(units["sigma"])
            out = out + (v * v / (2 * sigma**2)).sum(1)
        return out
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import torch

import natural_bm
from natural_bm.io import atomic_path, first_line
from natural_bm.models.base import BoltzmannMachine
from natural_bm.models.dbm import DBM
from natural_bm.models.dbn import DBN
from natural_bm.models.layered import LayeredBM
from natural_bm.models.rbm import RBM

__all__ = ["FORMATS", "PORTABLE_FORMAT", "export_model", "is_portable_path", "load_model", "read_portable",
           "read_portable_header"]

PORTABLE_FORMAT = "natural_bm.portable"
PORTABLE_VERSION = 1
#: file formats by name, and the suffix each is written with
FORMATS = {"npz": ".npz", "safetensors": ".safetensors"}
_CLASSES = {"RBM": RBM, "DBM": DBM, "DBN": DBN}
_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32, "float64": torch.float64}
_SAFETENSORS_MISSING = ("the .safetensors format needs the safetensors package: pip install natural_bm[safetensors] "
                        "(or pip install safetensors), or use the .npz format.")


# ---------------------------------------------------------------------------- describing a model
def _json_config(config: dict) -> dict:
    """``get_config()`` as JSON values (tuples as lists, dict keys as strings)."""
    return json.loads(json.dumps(config))


def _layered_description(model: LayeredBM) -> dict:
    factors = [{"from": i, "to": j, "factor": float(f)} for (i, j), f in sorted(model.input_factors.items())
               if float(f) != 1.0]
    return {
        "layers": [{"size": int(n), "units": u.config()} for n, u in zip(model.layer_sizes, model.units, strict=True)],
        "edges": [{"layers": [i, j], "weights": model.weight_name(i, j)} for i, j in model.edges],
        "biases": [model.bias_name(k) for k in range(model.n_layers)],
        "input_factors": factors,
        "energy": "E(x) = -sum_edges x_i^T W_i_j x_j - sum_k b_k^T x_k + sum over Gaussian layers of "
                  "x^2 / (2 sigma^2); p(x) = exp(-beta E(x)) / Z",
    }


def _dbn_description(model: DBN) -> dict:
    top = len(model.rbms) - 1
    return {
        "layers": [{"size": int(n), "units": {"type": "bernoulli"}} for n in model.layer_sizes],
        "edges": [{"layers": [k, k + 1], "weights": f"rbms.{k}.W", "directed": k < top} for k in range(top + 1)],
        "rbms": [{"layers": [k, k + 1], "weights": f"rbms.{k}.W", "vbias": f"rbms.{k}.vbias",
                  "hbias": f"rbms.{k}.hbias"} for k in range(top + 1)],
        "input_factors": [],
        "energy": "top RBM (layers L-1, L): E = -x_{L-1}^T W x_L - vbias^T x_{L-1} - hbias^T x_L; below it, "
                  "p(x_l = 1 | x_{l+1}) = sigmoid(rbms.l.vbias + rbms.l.W x_{l+1}) (generative), "
                  "Q(x_{l+1} = 1 | x_l) = sigmoid(rbms.l.hbias + x_l rbms.l.W) (recognition)",
    }


def _parameters(model) -> dict[str, torch.Tensor]:
    """The arrays a portable file holds, by name (see the module docstring)."""
    if isinstance(model, DBN):
        return {f"rbms.{k}.{name}": p for k, rbm in enumerate(model.rbms) for name, p in rbm.parameter_dict().items()}
    return model.parameter_dict()


def _description(model) -> dict:
    if isinstance(model, DBN):
        return _dbn_description(model)
    if isinstance(model, LayeredBM):
        return _layered_description(model)
    raise TypeError(f"export_model takes an RBM, DBM or DBN (or the path of a model file), got {type(model).__name__}.")


def _model_dtype(model) -> torch.dtype:
    return model.top.dtype if isinstance(model, DBN) else model.dtype


# ---------------------------------------------------------------------------- checksum
def _checksum(header_bytes: bytes, arrays: dict[str, np.ndarray]) -> str:
    """SHA-256 (hex) of the header's bytes and every array (sorted by name: a line name:dtype:shape, then
    its raw bytes), as the module docstring defines it."""
    h = hashlib.sha256(header_bytes)
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}:{a.dtype}:{','.join(map(str, a.shape))}\n".encode())
        h.update(a.tobytes())
    return h.hexdigest()


# ---------------------------------------------------------------------------- writing
def _format_of(path: Path, format: str | None) -> str:
    suffix = path.suffix.lower()
    if format is None:
        for name, ext in FORMATS.items():
            if suffix == ext:
                return name
        raise ValueError(f"cannot tell the format of {path} from its suffix; name it .npz or .safetensors, or "
                         f"pass format='npz' or 'safetensors'.")
    if format not in FORMATS:
        raise ValueError(f"`format` must be one of {sorted(FORMATS)}, got {format!r}.")
    if suffix in FORMATS.values() and suffix != FORMATS[format]:
        raise ValueError(f"{path} has the suffix {suffix} but format={format!r}; name it {path.stem}{FORMATS[format]}.")
    return format


def export_model(model_or_path, path: str | os.PathLike, format: str | None = None, dataset=None) -> Path:
    """Write a model as a portable ``.npz`` or ``.safetensors`` file (layout: the module docstring), atomically.

    Args:
        model_or_path: an ``RBM``, ``DBM`` or ``DBN``, or the path of a natural_bm model file (``.pt``,
            ``.npz`` or ``.safetensors``).
        path: the file to write.
        format: ``"npz"`` or ``"safetensors"``; None (default): from the suffix of ``path``.
        dataset: the data set the model was trained on (a name such as ``"mnist (stochastic binarisation)"``
            or a JSON-able dict), recorded in the header; None (default) when unknown.

    Returns:
        The path written.

    Raises:
        ValueError: an unknown format, or a suffix that contradicts it; ``dataset`` not JSON-able.
        ImportError: ``.safetensors`` without the safetensors package (``pip install natural_bm[safetensors]``).
    """
    path = Path(path)
    fmt = _format_of(path, format)
    model = load_model(model_or_path) if isinstance(model_or_path, (str, os.PathLike)) else model_or_path
    description = _description(model)
    dtype = _model_dtype(model)
    store_dtype = torch.float32 if dtype == torch.bfloat16 else dtype  # (numpy has no bfloat16)
    arrays = {name: p.detach().to("cpu", store_dtype).contiguous().numpy() for name, p in _parameters(model).items()}
    try:
        json.dumps(dataset)
    except (TypeError, ValueError):
        raise ValueError(f"`dataset` must be None, a string or a JSON-able dict, got {type(dataset).__name__}.") \
            from None
    header = {
        "format": PORTABLE_FORMAT,
        "format_version": PORTABLE_VERSION,
        "library_version": natural_bm.__version__,
        "class": type(model).__name__,
        "config": _json_config(model.get_config()),
        "dtype": str(dtype).replace("torch.", ""),
        "dataset": dataset,
        "beta": 1.0,
        **description,
        "arrays": {name: {"dtype": str(a.dtype), "shape": list(a.shape)} for name, a in sorted(arrays.items())},
        "n_parameters": int(sum(a.size for a in arrays.values())),
    }
    header_bytes = json.dumps(header, indent=1, sort_keys=True).encode("utf-8")
    checksum = _checksum(header_bytes, arrays)
    if fmt == "npz":
        entries = {"header": np.frombuffer(header_bytes, np.uint8),
                   "checksum": np.frombuffer(checksum.encode("ascii"), np.uint8), **arrays}
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, **entries)
    else:
        try:
            from safetensors.numpy import save
        except ImportError:
            raise ImportError(_SAFETENSORS_MISSING) from None
        data = save(arrays, metadata={"header": header_bytes.decode("utf-8"), "checksum": checksum})
        with atomic_path(path) as tmp:
            tmp.write_bytes(data)
    return path


# ---------------------------------------------------------------------------- reading
def _read_npz(path: Path) -> tuple[bytes, str, dict[str, np.ndarray]]:
    with np.load(path, allow_pickle=False) as f:
        arrays = {name: f[name] for name in f.files}
    for key in ("header", "checksum"):
        if key not in arrays:
            raise ValueError(f"no {key!r} entry")
    return arrays.pop("header").tobytes(), arrays.pop("checksum").tobytes().decode("ascii"), arrays


def _read_safetensors(path: Path) -> tuple[bytes, str, dict[str, np.ndarray]]:
    try:
        from safetensors import safe_open
    except ImportError:
        raise ImportError(_SAFETENSORS_MISSING) from None
    with safe_open(str(path), framework="np") as f:
        metadata = f.metadata() or {}
        arrays = {name: f.get_tensor(name) for name in f.keys()}  # noqa: SIM118 (safe_open has no __iter__)
    for key in ("header", "checksum"):
        if key not in metadata:
            raise ValueError(f"no {key!r} metadata")
    return metadata["header"].encode("utf-8"), metadata["checksum"], arrays


def _read_verified(path) -> tuple[dict, dict[str, np.ndarray]]:
    """(header, arrays) of an intact portable file; one-line errors naming the file otherwise."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {path} (check the path).")
    fmt = _format_of(path, None)
    try:
        header_bytes, stored, arrays = _read_npz(path) if fmt == "npz" else _read_safetensors(path)
        header = json.loads(header_bytes.decode("utf-8"))
    except ImportError:
        raise
    except Exception as err:  # noqa: BLE001 (zip, npy, safetensors and JSON errors alike: one line naming the file)
        raise ValueError(f"{path} is not a readable natural_bm {fmt} model file (corrupt, truncated or another "
                         f"kind of file: {first_line(err)}).") from None
    if not isinstance(header, dict) or header.get("format") != PORTABLE_FORMAT:
        raise ValueError(f"{path} is not a natural_bm portable model file (no {PORTABLE_FORMAT!r} header).")
    if _checksum(header_bytes, arrays) != stored:
        raise ValueError(f"{path} is damaged: its checksum does not match its contents (a changed or flipped byte); "
                         f"use an intact copy or export the model again.")
    version = header.get("format_version")
    if not isinstance(version, int) or version > PORTABLE_VERSION:
        raise ValueError(f"{path}: portable format version {version!r} is not one this natural_bm reads "
                         f"(1 to {PORTABLE_VERSION}); upgrade natural_bm.")
    return header, arrays


def read_portable_header(path: str | os.PathLike) -> dict:
    """The verified JSON header of a portable model file (class, layers, data set, library version, ...)."""
    return _read_verified(path)[0]


def read_portable(path: str | os.PathLike, device=None, dtype: torch.dtype | None = None) -> LayeredBM | DBN:
    """Rebuild the model written by ``export_model`` (checksum verified), on ``device`` (default CPU) in
    ``dtype`` (default: the exported model's).

    The model carries no trainer: ``compile`` it to train on. Raises FileNotFoundError for a missing
    file and a one-line ValueError naming the file for one that is damaged, truncated or not a natural_bm
    portable file.
    """
    header, arrays = _read_verified(path)
    name = header.get("class")
    cls = _CLASSES.get(name)
    if cls is None:
        raise ValueError(f"{path} holds an unknown model class {name!r}; natural_bm reads {sorted(_CLASSES)}.")
    saved_dtype = _DTYPES.get(str(header.get("dtype")))
    if saved_dtype is None:
        raise ValueError(f"{path}: unknown dtype {header.get('dtype')!r} in the header.")
    dt = dtype or saved_dtype
    try:
        model = cls(**header["config"], device=device, dtype=dt)
    except (TypeError, ValueError, KeyError) as err:
        raise ValueError(f"{path}: the header's config does not build a {name} ({first_line(err)}).") from None
    rebuilt = _description(model)
    for key in ("layers", "edges", "input_factors"):
        if header.get(key) != rebuilt[key]:
            raise ValueError(f"{path}: the header's {key!r} do not match the model its config builds; the file was "
                             f"not written by natural_bm's export_model.")
    own = _parameters(model)
    if set(own) != set(arrays):
        raise ValueError(f"{path} holds the arrays {sorted(arrays)}, but a {name} with this config has "
                         f"{sorted(own)}.")
    with torch.no_grad():
        for key, p in own.items():
            a = arrays[key]
            if tuple(a.shape) != tuple(p.shape) or a.dtype.kind != "f":
                raise ValueError(f"{path}: array {key!r} is {a.dtype} {tuple(a.shape)}, the model expects floating "
                                 f"point {tuple(p.shape)}.")
            p.copy_(torch.from_numpy(np.array(a)).to(device=p.device, dtype=p.dtype))
    return model


def is_portable_path(path: str | os.PathLike) -> bool:
    """Whether ``path`` names a portable file by its suffix (``.npz``, ``.safetensors``)."""
    return Path(path).suffix.lower() in FORMATS.values()


def load_model(path: str | os.PathLike, device=None, dtype: torch.dtype | None = None):
    """Load any natural_bm model file, by its suffix: ``.npz`` and ``.safetensors`` (``export_model``)
    through ``read_portable``; anything else (``model.save``'s ``.pt``, with its training state if saved)
    through ``BoltzmannMachine.load``. On ``device`` (default CPU) in the saved dtype unless ``dtype``."""
    if is_portable_path(path):
        return read_portable(path, device=device, dtype=dtype)
    return BoltzmannMachine.load(path, device=device, dtype=dtype)

