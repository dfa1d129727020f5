"""``RemoteMonitor``: POST each epoch's logs to a server."""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.parse
import urllib.request
import warnings

from natural_bm.callbacks.callback import Callback


class RemoteMonitor(Callback):
    """POSTs ``{"epoch": e, **logs}`` to ``root + path`` after every epoch.

    By default as a form field ``field`` holding the JSON text (Keras's
    format); with ``send_as_json`` as a JSON body. A server that is down, slow
    (``timeout`` seconds) or answers an error status gives a ``RuntimeWarning``,
    never an exception. NaN and inf are sent as null.
    """

    def __init__(self, root: str = "http://localhost:9000", path: str = "/publish/epoch/end/", field: str = "data",
                 headers: dict | None = None, send_as_json: bool = False, timeout: float = 5.0) -> None:
        super().__init__()
        self.root, self.path, self.field = root, path, field
        self.headers = dict(headers or {})
        self.send_as_json = send_as_json
        self.timeout = timeout

    def on_epoch_end(self, epoch, logs=None):
        payload = {"epoch": epoch}
        for k, v in (logs or {}).items():
            v = float(v) if hasattr(v, "__float__") else v
            payload[k] = None if isinstance(v, float) and not math.isfinite(v) else v
        headers = dict(self.headers)
        if self.send_as_json:
            body = json.dumps(payload).encode()
            headers.setdefault("Content-Type", "application/json")
        else:
            body = urllib.parse.urlencode({self.field: json.dumps(payload)}).encode()
            headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        request = urllib.request.Request(self.root + self.path, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                response.read()
        except (urllib.error.URLError, OSError, ValueError) as err:
            warnings.warn(f"RemoteMonitor could not reach {self.root + self.path}: {err}", RuntimeWarning,
                          stacklevel=2)
