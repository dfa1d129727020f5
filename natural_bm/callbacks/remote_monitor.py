"""``RemoteMonitor``: POST each epoch's logs to a server, within a deadline."""

from __future__ import annotations

import http.client
import json
import math
import socket
import threading
import time
import urllib.parse

from natural_bm.callbacks.callback import Callback
from natural_bm.validation import warn_user


class RemoteMonitor(Callback):
    """POSTs ``{"epoch": e, **logs}`` to ``root + path`` after every epoch.

    By default as a form field ``field`` holding the JSON text (Keras's
    format); with ``send_as_json`` as a JSON body. NaN and inf are sent as null.

    Each post has an overall deadline of ``timeout`` seconds, from connecting
    to reading the whole answer: a watchdog closes the connection when it
    passes, so a server that trickles bytes cannot hold training up. A server
    that is down, slow or answers an error status gives a ``RuntimeWarning``
    and training goes on: a dead or slow monitor costs at most ``timeout``
    seconds per epoch. A malformed ``root`` (no http/https scheme or host) is
    a ``ValueError`` when the callback is made, before training starts.
    """

    def __init__(self, root: str = "http://localhost:9000", path: str = "/publish/epoch/end/", field: str = "data",
                 headers: dict | None = None, send_as_json: bool = False, timeout: float = 5.0) -> None:
        super().__init__()
        url = urllib.parse.urlsplit(str(root) + str(path))
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"RemoteMonitor root must be an http:// or https:// URL with a host, got {root!r}.")
        try:
            url.port  # noqa: B018 - raises ValueError for a bad port
        except ValueError as err:
            raise ValueError(f"RemoteMonitor root {root!r} has a bad port ({err}).") from None
        if not (isinstance(timeout, (int, float)) and math.isfinite(timeout) and timeout > 0):
            raise ValueError(f"RemoteMonitor timeout must be a number of seconds > 0, got {timeout!r}.")
        self.root, self.path, self.field = root, path, field
        self.url = url
        self.headers = dict(headers or {})
        self.send_as_json = send_as_json
        self.timeout = float(timeout)
        self.last_seconds: float | None = None  # how long the last post took

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
        t0 = time.monotonic()
        try:
            status = self._post(body, headers)
            if status >= 400:
                raise OSError(f"HTTP status {status}")
        except (OSError, http.client.HTTPException, ValueError) as err:
            warn_user(f"RemoteMonitor could not reach {self.root + self.path}: {err or type(err).__name__}",
                          RuntimeWarning)
        finally:
            self.last_seconds = time.monotonic() - t0

    def _post(self, body: bytes, headers: dict) -> int:
        """POST ``body``; returns the status. Raises TimeoutError when the deadline passes."""
        url = self.url
        cls = http.client.HTTPSConnection if url.scheme == "https" else http.client.HTTPConnection
        conn = cls(url.hostname, url.port, timeout=self.timeout)
        expired = threading.Event()

        def abort() -> None:  # wake a blocked read: shut the socket down under it
            expired.set()
            sock = conn.sock
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

        watchdog = threading.Timer(self.timeout, abort)
        watchdog.daemon = True
        watchdog.start()
        try:
            target = (url.path or "/") + (f"?{url.query}" if url.query else "")
            conn.request("POST", target, body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            if expired.is_set():
                raise TimeoutError(f"no complete answer within {self.timeout:g} s")
            return response.status
        except (OSError, http.client.HTTPException) as err:
            if expired.is_set():
                raise TimeoutError(f"no complete answer within {self.timeout:g} s") from None
            raise err
        finally:
            watchdog.cancel()
            conn.close()
