"""``SampleCallback``: grids of samples from persistent Gibbs chains."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from natural_bm.callbacks.callback import Callback
from natural_bm.rng import RandomSource
from natural_bm.sampling import GibbsSampler, chains_to
from natural_bm.viz import image_grid
from natural_bm.viz.images import image_format, tile_scale


def epoch_path(template: str | os.PathLike, epoch: int, suffix: str = ".png") -> Path:
    """``template`` formatted with ``epoch`` if it holds ``{epoch...}``, else ``<stem>_epoch<NNNN><suffix>``."""
    t = str(template)
    if "{epoch" in t:
        return Path(t.format(epoch=epoch))
    p = Path(t)
    stem = p.name[: -len(p.suffix)] if p.suffix == suffix else p.name
    return p.with_name(f"{stem}_epoch{epoch:04d}{suffix}")


class SampleCallback(Callback):
    """Saves a PNG grid of model samples at chosen epochs.

    ``n_chains`` persistent Gibbs chains (kept across epochs; started from
    random training rows when the fit provides them, else from uniform noise)
    are advanced ``plot_every`` steps ``n_samples`` times per chosen epoch; the
    grid has one row per chain and one column per snapshot, each tile the
    visible means p(v = 1 | h) reshaped to ``image_shape``.

    Args:
        model: the model to sample (the fitted model when None).
        savename: file path; ``{epoch}`` in it is formatted (``"s_{epoch:03d}.png"``),
            otherwise ``_epoch0007.png`` is appended to the stem.
        n_chains, n_samples, plot_every: rows, columns, Gibbs steps between columns.
        epoch_ls: epochs (0-based) at which to sample; every epoch if empty.
        image_shape: (height, width) of one tile; 28x28 for MNIST.
        seed: seed of the chains' random numbers.
        scale: whole-pixel enlargement of the grid; ``"auto"`` enlarges tiles
            smaller than 16 pixels a side (3x3 bars and stripes: 6x) so they
            are legible, and leaves MNIST's 28x28 as they are.

    After each grid, ``last_samples`` holds the (n_chains * n_samples, n_visible)
    tiles in grid order and ``saved`` the written paths.
    """

    def __init__(self, model=None, savename="samples.png", n_chains: int = 20, n_samples: int = 10,
                 plot_every: int = 2000, epoch_ls=(), image_shape=(28, 28), seed: int = 0,
                 scale: int | str = "auto") -> None:
        super().__init__()
        image_format(savename)  # .png, .jpg or .jpeg, checked before training starts
        self.sample_model = model
        self.savename = savename
        self.n_chains, self.n_samples, self.plot_every = int(n_chains), int(n_samples), int(plot_every)
        if min(self.n_chains, self.n_samples, self.plot_every) < 1:
            raise ValueError("n_chains, n_samples and plot_every must be >= 1.")
        self.epoch_ls = set(epoch_ls)
        self.image_shape = tuple(image_shape)
        self.seed = seed
        self.scale = tile_scale(self.image_shape, scale)  # tiny tiles (bars and stripes) enlarged
        self.chains: list | None = None  # the sampler's chains (a list of layer states)
        self.saved: list[Path] = []

    def _init_chains(self, model, gen: RandomSource) -> torch.Tensor:
        data = self.params.get("train_data")
        if data is not None:
            idx = gen.randint(data.shape[0], (self.n_chains,)).to(data.device)
            return GibbsSampler(model).init_chains(gen.bernoulli(data[idx].to(model.dtype)), gen)
        p = torch.full((self.n_chains, model.n_visible), 0.5, dtype=model.dtype, device=model.device)
        return GibbsSampler(model).init_chains(gen.bernoulli(p), gen)

    def on_epoch_end(self, epoch, logs=None):
        if self.epoch_ls and epoch not in self.epoch_ls:
            return
        self.sample(epoch)

    def state_dict(self) -> dict:
        chains = chains_to(self.chains, "cpu")
        return {"chains": [c.clone() if c is not None else None for c in chains] if chains else None,
                "saved": [str(p) for p in self.saved]}

    def load_state_dict(self, state: dict) -> None:
        model = self.sample_model or self.model
        self.chains = chains_to(state["chains"], model.device, model.dtype)
        self.saved = [Path(p) for p in state["saved"]]

    def sample(self, epoch: int = 0) -> Path:
        """Advance the chains, save the grid for ``epoch`` and return its path."""
        model = self.sample_model or self.model
        gen = RandomSource(self.seed * 1_000_003 + epoch, model.device)
        if self.chains is None:
            self.chains = self._init_chains(model, gen)
        snapshots = []
        sampler = GibbsSampler(model)
        with torch.no_grad():
            chains = self.chains
            for _ in range(self.n_samples):
                means, chains = sampler.snapshot(chains, self.plot_every, gen)
                snapshots.append(means)
            self.chains = chains
        tiles = torch.stack(snapshots, 1).reshape(-1, model.n_visible)  # row = chain, column = snapshot
        self.last_samples = tiles.cpu().double().numpy()
        path = epoch_path(self.savename, epoch, Path(str(self.savename)).suffix)
        # real-valued (Gaussian) visible units: each tile rescaled to its own range
        image_grid(self.last_samples, self.image_shape, n_cols=self.n_samples, path=path, scale=self.scale,
                   normalize=not model.binary_visible)
        self.saved.append(path)
        return path
