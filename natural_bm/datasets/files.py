"""Finding, verifying and downloading data files.

Search order for a file ``name``:

1. the folder given explicitly (``path=`` argument);
2. the folder in ``$NATURAL_BM_DATA``;
3. the cache folder: ``$NATURAL_BM_CACHE`` or ``~/.cache/natural_bm``;
4. a download from the mirrors into the cache folder (atomically, checksum
   verified before the file is moved into place).

Checksums are SHA-256 of the *uncompressed* bytes, so re-compressed copies of
the same data are accepted.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import urllib.error
import urllib.request
from pathlib import Path

from natural_bm.io import ENV_CACHE, atomic_path, cache_dir  # noqa: F401 (ENV_CACHE: re-exported)

ENV_DATA = "NATURAL_BM_DATA"


def read_gz(path: Path) -> bytes:
    """Uncompressed bytes of a .gz file (or of a plain file)."""
    with open(path, "rb") as f:
        magic = f.read(2)
    opener = gzip.open if magic == b"\x1f\x8b" else open
    with opener(path, "rb") as f:
        return f.read()


def verify(raw: bytes, sha256: str, path: Path) -> bytes:
    """Return ``raw`` if its SHA-256 is ``sha256``, else raise ValueError naming ``path``."""
    digest = hashlib.sha256(raw).hexdigest()
    if digest != sha256:
        raise ValueError(
            f"checksum mismatch for {path}: sha256 of the uncompressed bytes is {digest}, "
            f"expected {sha256}. Delete the file and fetch it again."
        )
    return raw


def download(url: str, dest: Path, timeout: float = 30.0) -> None:
    """Fetch ``url`` to ``dest`` atomically."""
    with atomic_path(dest) as tmp, urllib.request.urlopen(url, timeout=timeout) as response:
        tmp.write_bytes(response.read())


def fetch(
    name: str,
    sha256: str,
    mirrors: list[str],
    path: str | os.PathLike | None = None,
    download_missing: bool = True,
) -> bytes:
    """The verified uncompressed bytes of data file ``name`` (see module docstring)."""
    candidates: list[Path] = []
    if path is not None:
        folder = Path(path)
        if not folder.is_dir():
            raise FileNotFoundError(f"data folder `path`={folder} does not exist.")
        candidates.append(folder / name)
    if os.environ.get(ENV_DATA):
        candidates.append(Path(os.environ[ENV_DATA]) / name)
    cached = cache_dir() / name
    candidates.append(cached)
    for candidate in candidates:
        if candidate.is_file():
            return verify(read_gz(candidate), sha256, candidate)
    searched = ", ".join(str(c.parent) for c in candidates)
    if not download_missing:
        raise FileNotFoundError(
            f"{name} not found (searched {searched}); set ${ENV_DATA} to the folder holding it "
            "or allow downloading."
        )
    errors = []
    for mirror in mirrors:
        try:
            download(mirror + name, cached)
            raw = read_gz(cached)
            return verify(raw, sha256, cached)
        except (urllib.error.URLError, OSError, ValueError) as err:
            errors.append(f"{mirror}: {err}")
            if cached.exists():
                cached.unlink()
    raise FileNotFoundError(
        f"{name} not found (searched {searched}) and could not be downloaded "
        f"({'; '.join(errors) or 'no mirrors'}). Offline? Set ${ENV_DATA} to a folder "
        f"holding {name}."
    )
