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

_NP_DTYPES = {torch.float32: np.float32, torch.float64: np.float64}


class RandomSource:
    """Seeded uniform, Bernoulli and permutation draws on ``device``."""

    def __init__(self, seed: int | None = None, device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)
        self.manual_seed(seed)

    def manual_seed(self, seed: int | None) -> "RandomSource":
        """Reset the stream to the one determined by ``seed`` (fresh entropy if None)."""
        from natural_bm.seeding import new_seed

        self.seed = new_seed() if seed is None else int(seed)
        if self.device.type == "cpu":
            self._np = np.random.Generator(np.random.PCG64(self.seed))
            self._torch = None
        else:
            self._np = None
            self._torch = torch.Generator(device=self.device).manual_seed(self.seed % 2**63)
        return self

    def uniform(self, shape, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """U[0, 1) numbers of ``shape`` on the source's device."""
        if self._np is not None:
            np_dtype = _NP_DTYPES.get(dtype)
            if np_dtype is None:
                return torch.from_numpy(self._np.random(tuple(shape), dtype=np.float32)).to(dtype)
            return torch.from_numpy(self._np.random(tuple(shape), dtype=np_dtype))
        return torch.empty(tuple(shape), device=self.device, dtype=dtype).uniform_(generator=self._torch)

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


def randint(high: int, size, generator: RandomSource | torch.Generator | None, device) -> torch.Tensor:
    """Integers in [0, high) from any kind of generator."""
    if isinstance(generator, RandomSource):
        return generator.randint(high, size).to(device)
    return torch.randint(0, high, tuple(size), generator=generator, device=device)
