"""Loopback servers for testing remote (s3:// and https://) inputs offline.

Two servers, both bound to 127.0.0.1 on a random free port, both counting what they send so tests can
assert how much a cutout transferred:

* :class:`S3Server` — moto's S3 server (``moto.server.ThreadedMotoServer``) with one bucket;
  :meth:`S3Server.upload` puts local files in it and :attr:`S3Server.fsspec_kwargs` gives the s3fs options
  (``endpoint_url``, ``key``, ``secret``) that reach it.
* :class:`RangeHTTPServer` — a threaded HTTP server serving one directory with ``rangehttpserver``'s
  ``RangeRequestHandler`` (honours ``Range: bytes=a-b``); :meth:`RangeHTTPServer.url` builds URLs. It also answers
  anonymous path-style S3 ``GET``s (``s3://<subdirectory>/<key>`` with ``endpoint_url`` = its
  :attr:`~RangeHTTPServer.endpoint_url`), and :meth:`RangeHTTPServer.fail_next` makes its next ``GET`` requests fail
  (5xx, S3 ``SlowDown``, 403/404, a dropped connection, a truncated body), for testing retries.

Both have a :class:`TransferLog` at ``.log`` with ``requests`` (list of :class:`Request`), ``bytes_sent``
(response body bytes), ``reset()``, and ``body_requests(method="GET")``.

Usage as pytest fixtures: import the fixture functions into a test module (or a conftest)::

    import servers

    s3_server = servers.s3_server      # re-export the fixtures into the test module
    http_server = servers.http_server

    def test_something(s3_server, tmp_path):
        uri = s3_server.upload(tmp_path / "image.fits")       # -> "s3://skycut-test/image.fits"
        ... open uri with fsspec_kwargs=s3_server.fsspec_kwargs ...
        assert s3_server.log.bytes_sent < 2_000_000

``s3_server`` is session-scoped (starting moto takes about a second); call ``s3_server.log.reset()`` before
measuring. ``http_server`` is function-scoped and serves the test's ``tmp_path``.
"""

from __future__ import annotations

import collections
import functools
import logging
import os
import shutil
import socket
import threading
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

__all__ = [
    "Request",
    "TransferLog",
    "S3Server",
    "RangeHTTPServer",
    "s3_server",
    "http_server",
    "http_server_factory",
]

BUCKET = "skycut-test"


@dataclass
class Request:
    """One request seen by a server: method, path, ``Range`` header (or None), response body bytes, status."""

    method: str
    path: str
    range: str | None
    nbytes: int = 0
    status: int = 0


@dataclass
class TransferLog:
    """Thread-safe record of the requests a server answered and the body bytes it sent."""

    requests: list[Request] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, request: Request) -> None:
        with self._lock:
            self.requests.append(request)

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()

    @property
    def bytes_sent(self) -> int:
        """Total response body bytes sent since the last reset."""
        with self._lock:
            return sum(r.nbytes for r in self.requests)

    @property
    def n_requests(self) -> int:
        with self._lock:
            return len(self.requests)

    def body_requests(self, method: str = "GET") -> list[Request]:
        """Requests with the given method (e.g. only the ``GET``s that carry file bytes)."""
        with self._lock:
            return [r for r in self.requests if r.method == method]


def free_port() -> int:
    """A currently free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------------------------- S3 (moto)


class _CountingApp:
    """WSGI middleware counting requests and response body bytes."""

    def __init__(self, app, log: TransferLog):
        self.app = app
        self.log = log

    def __call__(self, environ, start_response):
        req = Request(
            environ.get("REQUEST_METHOD", ""), environ.get("PATH_INFO", ""), environ.get("HTTP_RANGE")
        )

        def _start(status, headers, exc_info=None):
            try:
                req.status = int(str(status).split()[0])
            except ValueError:
                pass
            return start_response(status, headers, exc_info)

        self.log.add(req)  # logged first; bytes are counted before they are sent, so a client never sees
        result = self.app(environ, _start)  # its data before the log does
        try:
            for chunk in result:
                req.nbytes += len(chunk)
                yield chunk
        finally:
            if hasattr(result, "close"):
                result.close()


class _LoopbackServer:
    """A server running in a daemon thread on loopback; subclasses set ``_server``/``_thread`` in ``start``."""

    _server = None
    _thread: threading.Thread | None = None

    def start(self):  # pragma: no cover - overridden
        raise NotImplementedError

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class S3Server(_LoopbackServer):
    """moto's S3 server on loopback with one bucket, counting transferred bytes.

    Attributes
    ----------
    endpoint_url : str
        ``http://127.0.0.1:<port>``.
    bucket : str
    log : TransferLog
    fsspec_kwargs : dict
        ``{"endpoint_url", "key", "secret"}`` for ``s3fs`` / ``skycut`` ``fsspec_kwargs``.
    """

    key = "testing"
    secret = "testing"

    def __init__(self, bucket: str = BUCKET):
        self.bucket = bucket
        self.log = TransferLog()
        self._server = None
        self._thread: threading.Thread | None = None
        self.endpoint_url = ""

    def start(self) -> S3Server:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        for name, value in (
            ("AWS_ACCESS_KEY_ID", self.key),
            ("AWS_SECRET_ACCESS_KEY", self.secret),
            ("AWS_DEFAULT_REGION", "us-east-1"),
        ):
            os.environ.setdefault(name, value)
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        app = _CountingApp(DomainDispatcherApplication(create_backend_app), self.log)
        self._server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=MotoRequestHandler)
        host, port = self._server.server_address[:2]
        self.endpoint_url = f"http://{host}:{port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="moto-s3", daemon=True
        )
        self._thread.start()
        self._client().create_bucket(Bucket=self.bucket)
        self.log.reset()
        return self

    def _client(self):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.key,
            aws_secret_access_key=self.secret,
            region_name="us-east-1",
        )

    @property
    def fsspec_kwargs(self) -> dict:
        return {"endpoint_url": self.endpoint_url, "key": self.key, "secret": self.secret}

    def upload(self, path: str | os.PathLike, key: str | None = None) -> str:
        """Upload a local file (streamed, so sparse 200 MB files are fine) and return its ``s3://`` URI."""
        path = Path(path)
        key = key or path.name
        with open(path, "rb") as fh:
            self._client().upload_fileobj(fh, self.bucket, key)
        self.log.reset()
        return f"s3://{self.bucket}/{key}"

    def delete(self, key: str) -> None:
        self._client().delete_object(Bucket=self.bucket, Key=key)


# --------------------------------------------------------------------------------------------- HTTP (Range)


class _CountingWriter:
    def __init__(self, raw, counter: Request):
        self.raw = raw
        self.counter = counter

    def write(self, data) -> int:
        self.counter.nbytes += len(data)  # before the bytes can reach the client
        return self.raw.write(data)

    def flush(self) -> None:
        self.raw.flush()


#: What :meth:`RangeHTTPServer.fail_next` can make a ``GET`` do instead of answering: an HTTP status (plain body),
#: S3's ``SlowDown`` (503 with S3's XML error), closing the connection before answering (``"drop"``), or sending
#: the headers and half the body, then closing (``"truncate"``); ``"ok"`` answers normally (to skip a request).
FAULTS = ("500", "502", "503", "slowdown", "403", "404", "drop", "truncate", "ok")
_SLOWDOWN = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code><Message>Please reduce your '
    b"request rate.</Message><RequestId>0</RequestId></Error>"
)


def _handler_class(log: TransferLog, faults: collections.deque | None = None):
    from RangeHTTPServer import RangeRequestHandler

    class CountingRangeHandler(RangeRequestHandler):
        def log_message(self, format, *args):  # noqa: A002 - silence the default stderr log
            pass

        def do_GET(self):
            try:
                fault = faults.popleft() if faults else None
            except IndexError:  # another thread took the last one
                fault = None
            if fault is None or fault == "ok":
                return super().do_GET()
            req = Request("GET", self.path, self.headers.get("Range"))
            log.add(req)
            if fault in ("drop", "truncate"):
                if fault == "truncate":
                    self._skycut_req = req
                    body = super().send_head()  # status and headers of the real answer
                    if body is not None:  # half of the announced bytes, from where the answer starts
                        with body:
                            size = os.fstat(body.fileno()).st_size
                            first, last = getattr(self, "range", None) or (0, None)
                            last = size - 1 if last is None else min(last, size - 1)
                            body.seek(first)
                            part = body.read((last - first + 1) // 2)
                        self.wfile.write(part)
                        req.nbytes = len(part)
                self.close_connection = True
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
                return None
            status = 503 if fault == "slowdown" else int(fault)
            body = _SLOWDOWN if fault == "slowdown" else f"injected fault {status}".encode()
            req.status = status
            self.send_response(status)
            self.send_header("Content-Type", "application/xml" if fault == "slowdown" else "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            req.nbytes = len(body)
            return None

        def send_head(self):
            self._skycut_req = Request(self.command, self.path, self.headers.get("Range"))
            log.add(self._skycut_req)  # logged first, bytes counted as written: no race with the client
            return super().send_head()

        def send_response(self, code, message=None):
            if hasattr(self, "_skycut_req"):
                self._skycut_req.status = int(code)
            super().send_response(code, message)

        def copyfile(self, source, outputfile):
            super().copyfile(source, _CountingWriter(outputfile, self._skycut_req))

    return CountingRangeHandler


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # the default (5) drops bursts of concurrent range requests (SYN retries, ~1 s)
    daemon_threads = True


class RangeHTTPServer(_LoopbackServer):
    """A threaded HTTP server honouring ``Range`` requests, serving ``directory`` on loopback."""

    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory)
        self.log = TransferLog()
        self.faults: collections.deque[str] = collections.deque()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.base_url = ""

    def start(self) -> RangeHTTPServer:
        handler = functools.partial(_handler_class(self.log, self.faults), directory=str(self.directory))
        self._server = _Server(("127.0.0.1", 0), handler)
        host, port = self._server.server_address[:2]
        self.base_url = f"http://{host}:{port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="range-http", daemon=True
        )
        self._thread.start()
        return self

    def fail_next(self, *kinds: str) -> None:
        """Make the next ``GET`` requests fail, one per kind, in order (see :data:`FAULTS`); each is logged."""
        unknown = [k for k in kinds if k not in FAULTS]
        if unknown:
            raise ValueError(f"unknown fault(s) {unknown}; known: {FAULTS}")
        self.faults.extend(kinds)

    @property
    def endpoint_url(self) -> str:
        """The server as an S3 endpoint (path style, anonymous): ``s3://<dir>/<key>`` reads ``<dir>/<key>``."""
        return self.base_url

    def url(self, name: str | os.PathLike) -> str:
        """URL of a file given by its name relative to the served directory (or an absolute path in it)."""
        p = Path(name)
        if p.is_absolute():
            p = p.relative_to(self.directory)
        return f"{self.base_url}/{p.as_posix()}"

    def add(self, path: str | os.PathLike) -> str:
        """Copy a file into the served directory (if it is not there already) and return its URL."""
        path = Path(path)
        if path.parent.resolve() != self.directory.resolve():
            shutil.copy(path, self.directory / path.name)
        return self.url(path.name)


# --------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def s3_server():
    """A running :class:`S3Server` (moto) shared by the session; its log is reset on upload."""
    pytest.importorskip("moto")
    server = S3Server().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def http_server(tmp_path):
    """A running :class:`RangeHTTPServer` serving this test's ``tmp_path``."""
    pytest.importorskip("RangeHTTPServer")
    with RangeHTTPServer(tmp_path) as server:
        yield server


@pytest.fixture
def http_server_factory():
    """Start :class:`RangeHTTPServer` instances on any directory; all are stopped after the test."""
    started: list[RangeHTTPServer] = []

    def make(directory: str | os.PathLike) -> RangeHTTPServer:
        server = RangeHTTPServer(directory).start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()
