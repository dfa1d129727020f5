"""``RandomSource``: the random numbers of training and estimation.

On the CPU, torch's Mersenne-Twister generator fills about 200 M uniforms/s
on the project machines, numpy's PCG64 about 500 M/s (measured: 100x784
float32 uniforms take 367 us with ``torch.Tensor.uniform_`` and 149 us with
``numpy.random.Generator.random``). Sampling the units is a large share of an
RBM's CPU training time, so natural_bm draws CPU randomness from numpy's
PCG64 and GPU randomness from torch's CUDA (Philox) generator. Either way the
stream is fully determined by the seed.

Every sampling function of the library accepts ``generator=`` as a
``RandomSource``, a ``torch.Generator`` or None (torch's global generator).
"""

from __future__ import annotations

import numpy as np
import torch

from natural_bm.seeding import new_seed

__all__ = ["RandomSource", "bernoulli", "counter_uniform", "counter_uniform_pair", "gibbs_uniforms", "randint",
           "splitmix64", "stream_key", "uniform", "uniform_"]

_NP_DTYPES = {torch.float32: np.float32, torch.float64: np.float64}


class RandomSource:
    """Seeded uniform, Bernoulli and permutation draws on ``device``."""

    def __init__(self, seed: int | None = None, device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)
        self.manual_seed(seed)

    def manual_seed(self, seed: int | None) -> "RandomSource":
        """Reset the stream to the one determined by ``seed`` (fresh entropy if None)."""
        self.seed = new_seed() if seed is None else int(seed)
        if self.device.type == "cpu":
            self._np = np.random.Generator(np.random.PCG64(self.seed))
            self._torch = None
        else:
            self._np = None
            self._torch = torch.Generator(device=self.device).manual_seed(self.seed % 2**63)
        return self

    def fills_in_sequence(self) -> bool:
        """Whether filling one buffer gives the numbers of consecutive draws of its parts, in order (numpy's
        stream on the CPU: one call can replace several; torch's CUDA generator advances by blocks)."""
        return self._np is not None

    def uniform(self, shape, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """U[0, 1) numbers of ``shape`` on the source's device."""
        if self._np is not None:
            np_dtype = _NP_DTYPES.get(dtype)
            if np_dtype is None:
                return torch.from_numpy(self._np.random(tuple(shape), dtype=np.float32)).to(dtype)
            return torch.from_numpy(self._np.random(tuple(shape), dtype=np_dtype))
        return torch.empty(tuple(shape), device=self.device, dtype=dtype).uniform_(generator=self._torch)

    def uniform_(self, out: torch.Tensor) -> torch.Tensor:
        """Fill ``out`` (on the source's device) with the numbers ``uniform(out.shape, out.dtype)`` would
        return, without a new tensor where it can (a contiguous float32 or float64 ``out``); returns ``out``."""
        if self._np is not None:
            np_dtype = _NP_DTYPES.get(out.dtype)
            if np_dtype is None or not out.is_contiguous():
                return out.copy_(self.uniform(out.shape, out.dtype))
            self._np.random(out=out.numpy(), dtype=np_dtype)
            return out
        return out.uniform_(generator=self._torch)

    def bernoulli(self, p: torch.Tensor) -> torch.Tensor:
        """{0, 1} samples (dtype of ``p``) with success probabilities ``p``."""
        u = self.uniform(p.shape, p.dtype)
        if u.device != p.device:
            u = u.to(p.device)
        return u.lt_(p)

    def randperm(self, n: int) -> torch.Tensor:
        """A random permutation of range(n) (int64) on the source's device."""
        if self._np is not None:
            return torch.from_numpy(self._np.permutation(n))
        return torch.randperm(n, generator=self._torch, device=self.device)

    def randint(self, high: int, size) -> torch.Tensor:
        """Integers uniform in [0, high) of ``size`` (int64)."""
        if self._np is not None:
            return torch.from_numpy(self._np.integers(0, high, size=tuple(size), dtype=np.int64))
        return torch.randint(0, high, tuple(size), generator=self._torch, device=self.device)


def bernoulli(p: torch.Tensor, generator: RandomSource | torch.Generator | None = None) -> torch.Tensor:
    """{0, 1} samples with probabilities ``p`` from any kind of generator."""
    if isinstance(generator, RandomSource):
        return generator.bernoulli(p)
    return torch.bernoulli(p, generator=generator)


def uniform(shape, dtype: torch.dtype, generator: RandomSource | torch.Generator | None, device) -> torch.Tensor:
    """U[0, 1) numbers of ``shape`` on ``device`` from any kind of generator."""
    if isinstance(generator, RandomSource):
        return generator.uniform(shape, dtype).to(device)  # (no copy when already there)
    return torch.rand(tuple(shape), generator=generator, dtype=dtype, device=device)


def uniform_(out: torch.Tensor, generator: RandomSource | torch.Generator | None) -> torch.Tensor:
    """Fill ``out`` with U[0, 1) numbers from any kind of generator: the numbers ``uniform(out.shape,
    out.dtype, generator, out.device)`` would give, written in place; returns ``out``."""
    if isinstance(generator, RandomSource):
        if generator.device == out.device:
            return generator.uniform_(out)
        return out.copy_(generator.uniform(out.shape, out.dtype))
    return out.uniform_(generator=generator)


def randint(high: int, size, generator: RandomSource | torch.Generator | None, device) -> torch.Tensor:
    """Integers in [0, high) from any kind of generator."""
    if isinstance(generator, RandomSource):
        return generator.randint(high, size).to(device)
    return torch.randint(0, high, tuple(size), generator=generator, device=device)


# ---------------------------------------------------------------------------
# Counter-based uniforms for compiled code.
#
# Inside torch.compile'd CPU code, torch.rand_like costs about 8.5 ns per
# number on the project machines (668 us for 100x784), which would dominate
# AIS. SplitMix64 (Steele, Lea & Flood 2014; the output function of Java's
# SplittableRandom, which passes BigCrush on sequential counters) needs only
# int64 multiplies, xors and shifts, so the compiler vectorises it: 86 us for
# the same 100x784 block, bit-identical to the pure-Python definition and to
# eager torch. Number i of a stream with key K is mix64(K + (i + 1) * GAMMA).

_GAMMA = -7046029254386353131  # 0x9E3779B97F4A7C15 as a signed int64
_MIX1 = -4658895280553007687  # 0xBF58476D1CE4E5B9
_MIX2 = -7723592293110705685  # 0x94D049BB133111EB


def _srl(z: torch.Tensor, s: int) -> torch.Tensor:
    """Logical right shift of int64 values."""
    return (z >> s) & ((1 << (64 - s)) - 1)


def splitmix64(index: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
    """SplitMix64 output for counters ``index`` (int64) of the stream ``key`` (int64)."""
    z = key + (index + 1) * _GAMMA
    z = (z ^ _srl(z, 30)) * _MIX1
    z = (z ^ _srl(z, 27)) * _MIX2
    return z ^ _srl(z, 31)


def counter_uniform(index: torch.Tensor, key: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """U[0, 1) numbers (24 random bits for float32, 53 for float64) for counters ``index``."""
    z = splitmix64(index, key)
    if dtype == torch.float64:
        return _srl(z, 11).to(torch.float64) * (1.0 / 9007199254740992.0)
    return _srl(z, 40).to(dtype) * (1.0 / 16777216.0)


def counter_uniform_pair(index: torch.Tensor, key: torch.Tensor, dtype: torch.dtype = torch.float32):
    """Two independent U[0, 1) arrays of ``index``'s shape from one SplitMix64 output each:
    bits 40-63 and bits 8-31 (24 bits apiece), halving the hashing work."""
    z = splitmix64(index, key)
    scale = 1.0 / 16777216.0
    return _srl(z, 40).to(dtype) * scale, ((z >> 8) & 0xFFFFFF).to(dtype) * scale


def gibbs_uniforms(index: torch.Tensor, key: torch.Tensor, n_visible: int, n_hidden: int, dtype: torch.dtype):
    """Uniforms for one Gibbs step v -> h -> v: ``(u_h (rows, n_hidden), u_v (rows, n_visible))``.

    ``index`` holds (rows, max(n_visible, n_hidden)) counters; each SplitMix64
    output gives one number of each array (``counter_uniform_pair``).
    """
    u_big, u_small = counter_uniform_pair(index, key, dtype)
    return (u_small[:, :n_hidden], u_big) if n_visible >= n_hidden else (u_big, u_small[:, :n_visible])


def stream_key(seed: int, stream: int = 0) -> int:
    """A well-mixed signed int64 key for stream ``stream`` of ``seed`` (pure Python)."""
    m = (1 << 64) - 1
    z = (int(seed) * 0x9E3779B97F4A7C15 + (int(stream) + 1) * 0xD1B54A32D192ED03) & m
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & m
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & m
    z ^= z >> 31
    return z - (1 << 64) if z >= 1 << 63 else z
