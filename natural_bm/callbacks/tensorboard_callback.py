"""``TensorBoard``: scalars, histograms and images for TensorBoard."""

from __future__ import annotations

import math
from pathlib import Path

import torch

from natural_bm.callbacks.callback import Callback
from natural_bm.rng import RandomSource
from natural_bm.sampling import GibbsSampler
from natural_bm.viz import image_grid


class TensorBoard(Callback):
    """Writes TensorBoard event files to ``log_dir`` with ``torch.utils.tensorboard``
    (needs the ``tensorboard`` package: ``pip install natural_bm[tensorboard]``).

    * every numeric epoch log key as a scalar (step = epoch); with
      ``update_freq='batch'`` or an integer N also ``batch/<key>`` every N
      batches (step = global batch count);
    * with ``histogram_freq = k > 0``, every k epochs a histogram of every
      parameter (weights and biases);
    * with ``write_images``, at the same epochs, the hidden units' receptive
      fields (``filters``) and a grid of samples (``samples``: visible means
      after ``sample_steps`` Gibbs sweeps from training rows), as images, when
      the visible layer is a square image or ``image_shape`` is given.
    """

    def __init__(self, log_dir="./logs", histogram_freq: int = 0, update_freq="epoch", write_images: bool = False,
                 image_shape=None, sample_steps: int = 100) -> None:
        super().__init__()
        try:
            from torch.utils.tensorboard import SummaryWriter  # noqa: F401
        except ImportError as err:  # pragma: no cover - depends on the installation
            raise ImportError("TensorBoard needs the `tensorboard` package: pip install tensorboard") from err
        if update_freq not in ("epoch", "batch") and not (isinstance(update_freq, int) and update_freq > 0):
            raise ValueError(f"update_freq must be 'epoch', 'batch' or a positive int, got {update_freq!r}.")
        self.log_dir = Path(log_dir)
        self.histogram_freq = int(histogram_freq)
        self.update_freq = 1 if update_freq == "batch" else update_freq
        self.write_images = write_images
        self.image_shape = image_shape
        self.sample_steps = sample_steps
        self.writer = None
        self.global_batch = 0

    def on_train_begin(self, logs=None):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(self.log_dir))

    def state_dict(self) -> dict:
        return {"global_batch": self.global_batch}

    def load_state_dict(self, state: dict) -> None:
        self.global_batch = int(state["global_batch"])

    def on_train_batch_end(self, batch, logs=None):
        self.global_batch += 1
        if self.update_freq != "epoch" and self.global_batch % self.update_freq == 0:
            for k, v in (logs or {}).items():
                if k not in ("batch", "size") and isinstance(v, (int, float)):
                    self.writer.add_scalar(f"batch/{k}", v, self.global_batch)

    def _shape(self, n: int):
        if self.image_shape is not None:
            return tuple(self.image_shape)
        side = int(math.isqrt(n))
        return (side, side) if side * side == n else None

    def on_epoch_end(self, epoch, logs=None):
        for k, v in (logs or {}).items():
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
                self.writer.add_scalar(k, v, epoch)
        if self.histogram_freq and epoch % self.histogram_freq == 0:
            for name, p in self.model.parameter_dict().items():
                self.writer.add_histogram(name, p.detach().cpu(), epoch)
            if self.write_images:
                self._images(epoch)
        self.writer.flush()

    def _images(self, epoch: int) -> None:
        m = self.model
        shape = self._shape(m.n_input)
        if shape is None:
            return
        filters = image_grid(m.filters().detach().cpu().double().numpy().T[:100], shape, normalize=True)
        self.writer.add_image("filters", torch.from_numpy(filters)[None], epoch)
        data = self.params.get("train_data")
        if data is not None:
            gen = RandomSource(int(self.params.get("seed") or 0) + epoch, m.device)
            with torch.no_grad():
                sampler = GibbsSampler(m)
                means, _ = sampler.snapshot(sampler.init_chains(gen.bernoulli(data[:16].to(m.dtype)), gen),
                                            self.sample_steps, gen)
            grid = image_grid(means.cpu().double().numpy(), shape)
            self.writer.add_image("samples", torch.from_numpy(grid)[None], epoch)

    def on_train_end(self, logs=None):
        if self.writer is not None:
            self.writer.close()
