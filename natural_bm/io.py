"""Atomic file writing: a crash leaves the old file or the new one, never half."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import tempfile
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
import torch.distributed as td

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: exclusive_lock runs unlocked
    fcntl = None

ENV_CACHE = "NATURAL_BM_CACHE"


def cache_dir() -> Path:
    """natural_bm's cache folder (downloads, compiled kernels): ``$NATURAL_BM_CACHE`` or ``~/.cache/natural_bm``."""
    return Path(os.environ.get(ENV_CACHE) or Path.home() / ".cache" / "natural_bm")


_UMASK = os.umask(0)  # read the process umask (set it back at once)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    The temporary file lives in the same folder so the final ``os.replace`` is
    atomic on POSIX and Windows. On an exception the temporary file is removed
    and ``path`` is left untouched.

    In a torch.distributed process group only rank 0 writes: the other ranks
    (which compute the same results) write to a throwaway temporary file.
    """
    if not writes_files():
        with tempfile.TemporaryDirectory(prefix="natural_bm_rank_") as scratch:
            yield Path(scratch) / Path(path).name
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.exists():  # mkstemp makes 0600 files: give the usual mode (0666 less the umask)
            os.chmod(tmp_path, 0o666 & ~_UMASK)
        os.replace(tmp_path, path)
    except OSError as err:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        if err.errno is not None and err.filename == str(tmp_path):  # name the file the caller asked for
            raise OSError(err.errno, f"{err.strerror} (writing it; any previous version is intact)",
                          str(path)) from err
        raise
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def atomic_write(path: str | os.PathLike, writer: Callable[[Path], None]) -> Path:
    """Call ``writer(tmp_path)`` and atomically move the result to ``path``."""
    with atomic_path(path) as tmp:
        writer(tmp)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))


def print_and_save(text: str, path: str | os.PathLike | None = None) -> None:
    """Print ``text`` (a result table) and, with ``path``, also write it there atomically."""
    print(text)
    if path:
        atomic_write_text(path, text + "\n")


# ---------------------------------------------------------------------------
# torch files with a checksum: model files, checkpoints, training states.

CHECKSUM_KEY = "checksum"
#: what a checksum looks like (SHA-256 in hex)
_CHECKSUM_TEXT = re.compile("[0-9a-f]{64}")


def _feed(h, obj, path: str) -> None:
    """Feed ``obj`` (nested dicts, lists, tensors, numbers, strings) into hash ``h`` in a canonical order."""
    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous()
        h.update(f"{path}:T:{t.dtype}:{tuple(t.shape)}:".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    elif isinstance(obj, dict):
        h.update(f"{path}:D{len(obj)}:".encode())
        for k in sorted(obj, key=str):
            _feed(h, obj[k], f"{path}/{k}")
    elif isinstance(obj, (list, tuple)):
        h.update(f"{path}:L{len(obj)}:".encode())
        for i, v in enumerate(obj):
            _feed(h, v, f"{path}/{i}")
    else:
        h.update(f"{path}:{type(obj).__name__}:{obj!r};".encode())


def payload_checksum(payload: dict) -> str:
    """SHA-256 (hex) of every tensor's bytes, dtype and shape and every other value of ``payload``,
    leaving out its own ``checksum`` entry."""
    h = hashlib.sha256()
    _feed(h, {k: v for k, v in payload.items() if k != CHECKSUM_KEY}, "")
    return h.hexdigest()


def save_torch_checked(payload: dict, path: str | os.PathLike) -> Path:
    """``torch.save`` ``payload`` plus its checksum to ``path`` atomically.

    Raises OSError (naming the file) when it cannot be written: a missing or
    read-only folder, a full disk or a file-size limit. The previous file at
    ``path``, if any, is left intact.
    """
    payload = dict(payload)
    payload[CHECKSUM_KEY] = payload_checksum(payload)
    buffer = io.BytesIO()  # serialise in memory, then write with plain file I/O: a failed write is an
    try:  # OSError with its errno (EFBIG, ENOSPC, EACCES), not torch's "enforce fail" RuntimeError
        torch.save(payload, buffer)
    except RuntimeError as err:
        raise OSError(f"could not write {path}: {str(err).splitlines()[0]}") from err
    data = buffer.getvalue()
    atomic_write(path, lambda p: p.write_bytes(data))
    return Path(path)


def first_line(err: BaseException) -> str:
    """The gist of a load error in one line (without torch's advice to load with weights_only=False)."""
    text = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
    for line in text:
        if line.startswith("WeightsUnpickler error:"):
            return line
    if text and text[0].startswith("Weights only load failed"):
        return "not a file of plain tensors"
    return text[0] if text else type(err).__name__


def load_torch_checked(path: str | os.PathLike, what: str, file_format: str, require_checksum: bool = True) -> dict:
    """Read a file written by ``save_torch_checked`` and verify it.

    Args:
        path: the file.
        what: words for messages ("model file", "training-state file").
        file_format: the value the payload's ``format`` entry must have.
        require_checksum: refuse a payload without a checksum (older files pass False; a payload that
            holds a checksum under another key, its name damaged, is refused either way).

    Raises:
        FileNotFoundError: no such file.
        ValueError: one line naming the file, for anything that is not an
            intact file of that format (text, random bytes, truncated, a
            flipped bit, another format).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path} (check the path).")
    try:
        with warnings.catch_warnings():  # (torch warns of odd pickle protocols in damaged files)
            warnings.simplefilter("ignore")
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except MemoryError:
        raise ValueError(f"{path}: reading this {what} needs more memory than is free (a damaged length field, "
                         f"or a file too large for this machine).") from None
    except Exception as err:  # noqa: BLE001 - damaged bytes raise anything: zip, pickle, torch, assertions
        raise ValueError(f"{path} is not a readable {what} (corrupt, truncated or not a natural_bm file: "
                         f"{first_line(err)}).") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("format"), str) or payload["format"] != file_format:
        raise ValueError(f"{path} is not a natural_bm {what} (no '{file_format}' header).")
    stored = payload.get(CHECKSUM_KEY)
    if stored is None:
        renamed = [k for k, v in payload.items() if isinstance(v, str) and _CHECKSUM_TEXT.fullmatch(v)]
        if require_checksum or renamed:  # (a checksum under another key: its name was damaged)
            raise ValueError(f"{path} has no checksum; it is damaged or was not written by natural_bm.")
        return payload
    try:
        actual = payload_checksum(payload)
    except Exception:  # noqa: BLE001 - contents the checksum cannot read (a damaged tensor type) are damaged
        actual = None
    if not isinstance(stored, str) or stored != actual:
        raise ValueError(f"{path} is damaged: its checksum does not match its contents (a changed or flipped "
                         f"byte); use an intact copy or an earlier checkpoint.")
    return payload


def writes_files() -> bool:
    """Whether this process writes results: always, except on ranks other than 0 of a process group."""
    return not (td.is_available() and td.is_initialized() and td.get_rank() != 0)


class LockedError(RuntimeError):
    """Another process holds the lock (``exclusive_lock``)."""


@contextlib.contextmanager
def exclusive_lock(path: str | os.PathLike, what: str | None = None) -> Iterator[Path]:
    """Hold an exclusive OS lock on ``path`` (created if missing) for the ``with`` block.

    The lock is ``flock``-based: the OS releases it when the process exits,
    crashes or is killed, so it never goes stale. A second holder gets a
    ``LockedError`` at once (no waiting) naming ``what`` (default: the path).
    On systems without ``fcntl`` (Windows) the block runs unlocked.
    """
    path = Path(path)
    if not writes_files():  # rank 0 of a process group holds the lock for all ranks
        yield path
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    if fcntl is None:  # pragma: no cover - Windows
        yield path
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666 & ~_UMASK)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LockedError(f"{what or path} is in use by another natural-bm process (lock {path}); "
                              "wait for it to finish or choose another folder.") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        try:
            yield path
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
