"""``CSVLogger``: one CSV row per epoch, readable by ``pandas.read_csv``."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

from natural_bm.callbacks.callback import Callback
from natural_bm.io import atomic_write_text


def _format(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    if hasattr(value, "item"):
        return repr(float(value.item()))
    if isinstance(value, (list, tuple)):
        return '"' + str(list(value)) + '"'
    return str(value)


class CSVLogger(Callback):
    """Writes the epoch logs to ``filename``: a header, then one row per epoch.

    Columns are ``epoch`` then the log keys in sorted order. The whole file is
    rewritten atomically after every epoch (temporary file, then rename), so a
    crash leaves a complete file with every finished epoch and never half a
    row. A key that first appears in a later epoch gets a new column, empty
    for earlier rows; NaN is written as ``nan``. Both read back as NaN.

    Args:
        filename: path of the CSV file (folders are created).
        separator: field separator.
        append: continue an existing file (its header and rows are kept)
            instead of overwriting it.
    """

    def __init__(self, filename: str | os.PathLike, separator: str = ",", append: bool = False) -> None:
        super().__init__()
        self.filename = Path(filename)
        self.sep = separator
        self.append = append

    def on_train_begin(self, logs=None):
        self.keys: list[str] = []
        self.rows: list[dict[str, str]] = []
        if self.append and self.filename.exists() and self.filename.stat().st_size > 0:
            with open(self.filename, newline="", encoding="utf-8") as f:
                reader = csv.DictReader(f, delimiter=self.sep)
                self.keys = [k for k in (reader.fieldnames or []) if k != "epoch"]
                self.rows = [dict(r) for r in reader]

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        for k in sorted(logs):
            if k not in self.keys:
                self.keys.append(k)
        row = {"epoch": str(epoch)}
        row.update({k: _format(v) for k, v in logs.items()})
        self.rows.append(row)
        self._write()

    def _write(self) -> None:
        buf = io.StringIO()
        writer = csv.DictWriter(
            buf, fieldnames=["epoch", *self.keys], delimiter=self.sep, restval="", lineterminator="\n"
        )
        writer.writeheader()
        writer.writerows(self.rows)
        atomic_write_text(self.filename, buf.getvalue())
