"""MNIST loader (splits, checksums, kinds, file search) and bars and stripes."""

import gzip
import shutil
import urllib.error

import numpy as np
import pytest

from natural_bm.datasets import (
    bars_and_stripes,
    bars_and_stripes_log_likelihood,
    bars_and_stripes_patterns,
    files,
    load_mnist,
)
from natural_bm.datasets.mnist import FILES, parse_idx


@pytest.fixture(scope="module")
def mnist(mnist_dir):
    return load_mnist(path=mnist_dir, download=False)


def test_mnist_splits_and_known_facts(mnist):
    assert mnist.train.shape == (50000, 784) and mnist.valid.shape == (10000, 784) and mnist.test.shape == (10000, 784)
    assert mnist.train.dtype == np.float32 and mnist.train.min() == 0.0 and mnist.train.max() == 1.0
    all_labels = np.concatenate([mnist.train_labels, mnist.valid_labels])
    assert np.bincount(all_labels).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    full_mean = np.concatenate([mnist.train, mnist.valid]).mean()
    assert full_mean == pytest.approx(0.1307, abs=5e-5)


def test_mnist_configurable_splits(mnist_dir):
    d = load_mnist(path=mnist_dir, n_train=1000, n_valid=500, download=False)
    full = load_mnist(path=mnist_dir, download=False)
    assert d.train.shape[0] == 1000 and d.valid.shape[0] == 500
    np.testing.assert_array_equal(d.valid, np.concatenate([full.train, full.valid])[-500:])
    with pytest.raises(ValueError, match="n_train"):
        load_mnist(path=mnist_dir, n_train=55000, n_valid=10000)


def test_mnist_kinds(mnist_dir, mnist):
    thr = load_mnist("threshold", path=mnist_dir, n_train=2000, download=False)
    np.testing.assert_array_equal(thr.train, (mnist.train[:2000] > 0.5).astype(np.float32))
    s1 = load_mnist("sampled", path=mnist_dir, n_train=2000, download=False)
    s2 = load_mnist("sampled", path=mnist_dir, n_train=5000, download=False)
    assert set(np.unique(s1.train)) == {0.0, 1.0}
    np.testing.assert_array_equal(s1.train, s2.train[:2000])  # fixed binarisation
    np.testing.assert_array_equal(s1.test, s2.test)
    assert abs(s1.train.mean() - mnist.train[:2000].mean()) < 0.002
    with pytest.raises(ValueError, match="kind"):
        load_mnist("grey", path=mnist_dir)


def test_checksum_mismatch_is_reported(tmp_path, mnist_dir):
    for name, _ in FILES.values():
        shutil.copy(f"{mnist_dir}/{name}", tmp_path / name)
    name = FILES["test_labels"][0]
    raw = gzip.decompress((tmp_path / name).read_bytes())
    (tmp_path / name).write_bytes(gzip.compress(raw[:-1] + bytes([raw[-1] ^ 1])))
    with pytest.raises(ValueError, match="checksum mismatch.*t10k-labels"):
        load_mnist(path=tmp_path, download=False)


def test_search_order_explicit_then_env_then_cache(tmp_path, monkeypatch, mnist_dir):
    name, sha = FILES["test_labels"]
    env_dir, cache = tmp_path / "env", tmp_path / "cache"
    env_dir.mkdir()
    cache.mkdir()
    shutil.copy(f"{mnist_dir}/{name}", cache / name)
    monkeypatch.setenv("NATURAL_BM_DATA", str(env_dir))
    monkeypatch.setenv("NATURAL_BM_CACHE", str(cache))
    monkeypatch.setattr(files, "download", lambda url, dest: pytest.fail("must not download"))
    assert len(parse_idx(files.fetch(name, sha, ["http://x/"]))) == 10000  # found in the cache
    (env_dir / name).write_bytes(b"garbage")
    with pytest.raises(ValueError, match="checksum mismatch.*env"):
        files.fetch(name, sha, ["http://x/"])  # env folder is searched before the cache
    explicit = tmp_path / "explicit"
    explicit.mkdir()
    shutil.copy(f"{mnist_dir}/{name}", explicit / name)
    assert len(parse_idx(files.fetch(name, sha, ["http://x/"], path=explicit))) == 10000


def test_offline_error_names_the_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("NATURAL_BM_DATA", str(tmp_path))
    monkeypatch.setenv("NATURAL_BM_CACHE", str(tmp_path / "cache"))

    def offline(url, dest):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(files, "download", offline)
    with pytest.raises(FileNotFoundError, match="NATURAL_BM_DATA"):
        load_mnist()
    with pytest.raises(FileNotFoundError, match="NATURAL_BM_DATA"):
        load_mnist(download=False)
    with pytest.raises(FileNotFoundError, match="path"):
        load_mnist(path=tmp_path / "missing")


def test_download_path_verifies_and_caches(tmp_path, monkeypatch, mnist_dir):
    name, sha = FILES["test_labels"]
    monkeypatch.delenv("NATURAL_BM_DATA", raising=False)
    monkeypatch.setenv("NATURAL_BM_CACHE", str(tmp_path))
    monkeypatch.setattr(files, "download", lambda url, dest: shutil.copy(f"{mnist_dir}/{name}", dest))
    raw = files.fetch(name, sha, ["http://mirror/"])
    assert (tmp_path / name).is_file() and len(parse_idx(raw)) == 10000


def test_parse_idx_rejects_garbage():
    with pytest.raises(ValueError, match="IDX"):
        parse_idx(b"\x01\x02\x03\x04\x00\x00\x00\x01")


def test_bars_and_stripes_distribution():
    x, p = bars_and_stripes_patterns(3)
    assert len(x) == 2 ** 4 - 2 and p.sum() == pytest.approx(1.0)
    assert p[x.sum(1) == 0][0] == pytest.approx(1 / 8) and p[x.sum(1) == 3][0] == pytest.approx(1 / 16)
    s = bars_and_stripes(20000, 3, seed=0)
    idx = [int(np.flatnonzero((x == row).all(1))[0]) for row in s[:2000]]
    freq = np.bincount(idx, minlength=len(x)) / 2000
    np.testing.assert_allclose(freq, p, atol=0.03)
    assert bars_and_stripes_log_likelihood(3) == pytest.approx(float((p * np.log(p)).sum()))
