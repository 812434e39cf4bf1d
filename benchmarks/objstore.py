"""A loopback object store with settable latency and per-connection bandwidth, for remote-read benchmarks.

moto's S3 server answers at once and reads the whole object for every ranged GET, which hides exactly what a
remote cutout pays for: round trips and bytes. :class:`ObjectStore` serves the files of one local directory
on ``127.0.0.1`` as one S3 bucket (path-style addressing, anonymous access) that s3fs/botocore can read with
``endpoint_url``, and also as plain ``http://`` URLs that fsspec's HTTP filesystem can read with ``Range``:

* ``HEAD /bucket/key`` — ``Content-Length``, ``ETag``, ``Last-Modified``, ``Accept-Ranges``.
* ``GET /bucket/key`` with or without ``Range: bytes=a-b`` (also ``a-`` and ``-n``) — ``206`` and
  ``Content-Range`` for a range, the bytes read from the file chunk by chunk at the requested offset
  (the object is never read whole).
* ``GET /bucket?list-type=2&prefix=...&delimiter=/`` (ListObjectsV2, which s3fs uses when ``info`` finds no
  object), ``HEAD /bucket``, ``GET /bucket?location``.

Every response waits ``latency`` seconds before its first byte (after the request has been read), then sends
its body at no more than ``bandwidth`` bytes/s on that connection (checked after every chunk). Connections are
HTTP/1.1 keep-alive; a connection sends one response at a time, so the per-response throttle is a
per-connection throttle. A client gets more throughput only by opening more connections, as against a real
object store. The server is one asyncio event loop on a thread of its own (bodies go out with ``sendfile``): the
thread-per-connection ``http.server`` it replaced spent about 1 ms of CPU per 180 KB response (0.65 s for the
600 row requests of the remote-cube batch, against 0.43 s now), which on two cores shared with the client
limited what any client could reach.

:class:`ObjectStore` is a context manager: it starts on a free port, and stops (closing open connections) on
exit, or by itself after ``lifetime`` seconds. Counters (thread-safe, :meth:`ObjectStore.stats`): requests,
body bytes sent, connections opened, most requests in flight at once, and a per-request log
(:class:`Served`) that records the latency each response was given.

Example::

    with ObjectStore(directory, latency=0.030, bandwidth=100e6) as store:
        fs = s3fs.S3FileSystem(anon=True, endpoint_url=store.endpoint_url)
        fs.cat_file(store.uri("cube.fits"), start=0, end=2880)
        store.stats()   # {"requests": 2, "bytes_sent": 2880, ...}
"""

from __future__ import annotations

import email.utils
import hashlib
import logging
import os
import socket
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlsplit
from xml.sax.saxutils import escape

log = logging.getLogger(__name__)

__all__ = ["ObjectStore", "Served", "run_client"]

#: Body bytes sent per socket write; the bandwidth throttle is checked after each.
CHUNK = 128 * 1024
#: An idle keep-alive connection is closed after this many seconds.
IDLE_TIMEOUT = 60.0
_S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/"


@dataclass
class Served:
    """One answered request: method, key (or bucket-level path), Range header, status, body bytes sent, the
    latency the server applied before the first byte (seconds), and the connection it came on."""

    method: str
    path: str
    range: str | None
    status: int = 0
    nbytes: int = 0
    latency: float = 0.0
    connection: int = 0


class _Counters:
    """The store's counters; every access holds ``lock``."""

    def __init__(self):
        self.lock = threading.Condition()  # notified when a request ends
        self.served: list[Served] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.connections = 0
        self.open_connections = 0
        self.max_connections_open = 0


def _parse_range(header: str, size: int) -> tuple[int, int] | None:
    """``(start, stop)`` (stop exclusive) of a ``bytes=a-b`` / ``bytes=a-`` / ``bytes=-n`` header; ``None``
    if unsatisfiable. Multiple ranges are not supported (S3 does not support them either)."""
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, _, last = spec.strip().partition("-")
    try:
        if first == "":
            n = int(last)
            if n <= 0:
                return None
            return max(0, size - n), size
        start = int(first)
        stop = size if last == "" else min(int(last) + 1, size)
    except ValueError:
        return None
    if start >= size or stop <= start:
        return None
    return start, stop


class _Request:
    """One parsed HTTP/1.1 request head: method, target, lower-cased headers."""

    __slots__ = ("method", "target", "headers")

    def __init__(self, head: bytes):
        lines = head.decode("latin-1").split("\r\n")
        self.method, self.target, _ = (lines[0].split(" ", 2) + ["", ""])[:3]
        self.headers = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                self.headers[name.strip().lower()] = value.strip()


_REASONS = {
    200: "OK",
    206: "Partial Content",
    400: "Bad Request",
    404: "Not Found",
    416: "Range Not Satisfiable",
}


async def _serve_connection(store: ObjectStore, reader, writer) -> None:
    """Answer the requests of one keep-alive connection, one at a time, until the client closes it."""
    import asyncio

    sock = writer.get_extra_info("socket")
    # headers and body go out in separate writes: without TCP_NODELAY, Nagle's algorithm and the client's
    # delayed ACK add ~40 ms to every small response
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    conn_id = store._connection_opened(writer)
    try:
        while True:
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), IDLE_TIMEOUT)
            except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
                return
            req = _Request(head[:-4])
            length = int(req.headers.get("content-length", "0") or 0)
            if length:  # S3 GET/HEAD carry no body; read and drop one if sent
                await reader.readexactly(length)
            await _answer(store, req, writer, conn_id)
            if req.headers.get("connection", "").lower() == "close":
                return
    except (ConnectionError, OSError):
        return
    finally:
        store._connection_closed(writer)
        writer.close()


async def _answer(store: ObjectStore, req: _Request, writer, conn_id: int) -> None:
    import asyncio

    url = urlsplit(req.target)
    path = unquote(url.path)
    parts = path.lstrip("/").split("/", 1)
    bucket, key = parts[0], (parts[1] if len(parts) > 1 else "")
    head = req.method == "HEAD"
    rec = Served(req.method, path, req.headers.get("range"), connection=conn_id)
    store._begin(rec)
    try:
        if store.latency > 0:
            await asyncio.sleep(store.latency)
        rec.latency = store.latency
        if bucket != store.bucket:
            await _error(writer, 404, "NoSuchBucket", f"no bucket {bucket!r}", head, rec)
        elif not key:
            query = parse_qs(url.query, keep_blank_values=True)
            if head:
                await _send_bytes(
                    writer, 200, b"", True, rec, "application/xml", {"x-amz-bucket-region": "us-east-1"}
                )
            elif "location" in query:
                body = f'<?xml version="1.0" encoding="UTF-8"?>\n<LocationConstraint xmlns="{_S3_NS}"/>'
                await _send_bytes(writer, 200, body.encode(), False, rec, "application/xml")
            else:
                await _send_bytes(writer, 200, store._list_xml(query), False, rec, "application/xml")
        else:
            await _object(store, key, req, head, writer, rec)
    finally:
        store._end(rec)


def _head_bytes(status: int, headers: dict) -> bytes:
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}", "Server: skycut-objstore"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def _send_bytes(
    writer, status: int, body: bytes, head: bool, rec: Served, content_type: str, extra=None
):
    headers = {"Content-Type": content_type, "Content-Length": str(len(body)), **(extra or {})}
    writer.write(_head_bytes(status, headers) + (b"" if head else body))
    rec.status = status
    rec.nbytes = 0 if head else len(body)
    await writer.drain()


async def _error(writer, status: int, code: str, message: str, head: bool, rec: Served, extra=None) -> None:
    body = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
        f"<Message>{escape(message)}</Message><Resource>{escape(rec.path)}</Resource></Error>"
    ).encode()
    await _send_bytes(writer, status, b"" if head else body, head, rec, "application/xml", extra)


async def _object(store: ObjectStore, key: str, req: _Request, head: bool, writer, rec: Served) -> None:
    path = store._resolve(key)
    if path is None:
        await _error(writer, 404, "NoSuchKey", "The specified key does not exist.", head, rec)
        return
    st = path.stat()
    size = st.st_size
    start, stop, status = 0, size, 200
    rng = req.headers.get("range")
    if rng and not head:
        parsed = _parse_range(rng, size)
        if parsed is None:
            await _error(
                writer,
                416,
                "InvalidRange",
                "The requested range is not satisfiable",
                head,
                rec,
                extra={"Content-Range": f"bytes */{size}"},
            )
            return
        (start, stop), status = parsed, 206
    headers = {
        "Content-Type": "application/octet-stream",
        "Content-Length": str(stop - start),
        "Accept-Ranges": "bytes",
        "ETag": store._etag(path, st),
        "Last-Modified": email.utils.formatdate(st.st_mtime, usegmt=True),
    }
    if status == 206:
        headers["Content-Range"] = f"bytes {start}-{stop - 1}/{size}"
    writer.write(_head_bytes(status, headers))
    rec.status = status
    if head:
        await writer.drain()
        return
    with open(path, "rb") as f:
        await _send_body(store, writer, f, start, stop, rec)


async def _send_body(store: ObjectStore, writer, f, start: int, stop: int, rec: Served) -> None:
    """Send bytes ``[start, stop)`` of ``f`` chunk by chunk, throttled to the store's bandwidth.

    The bytes go from the file to the socket with the event loop's ``sendfile`` (``os.sendfile``: no copy
    through Python), so that the server, not the client, stays cheap when hundreds of requests are in flight.
    """
    import asyncio

    loop = asyncio.get_running_loop()
    bandwidth = store.bandwidth
    t0 = time.monotonic()
    sent = 0
    while sent < stop - start:
        n = await loop.sendfile(writer.transport, f, start + sent, min(CHUNK, stop - start - sent))
        if n == 0:
            break
        sent += n
        rec.nbytes = sent
        if bandwidth:
            wait = t0 + sent / bandwidth - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)


class ObjectStore:
    """Serve ``directory`` as bucket ``bucket`` on ``127.0.0.1``, with latency and per-connection bandwidth.

    Parameters
    ----------
    directory : path-like
        Files under it are the bucket's objects (keys are their relative paths with ``/``).
    bucket : str
        Bucket name (path-style: ``{endpoint_url}/{bucket}/{key}``).
    latency : float
        Seconds each response waits, after its request has been read, before its first byte.
    bandwidth : float or None
        Body bytes per second per connection (``None``: unthrottled).
    lifetime : float
        The server stops by itself this many seconds after :meth:`start` (a safety net; normally the context
        manager stops it).
    """

    def __init__(
        self,
        directory: str | os.PathLike,
        *,
        bucket: str = "skycut-bench",
        latency: float = 0.0,
        bandwidth: float | None = None,
        lifetime: float = 3600.0,
    ):
        self.directory = Path(directory).resolve()
        if not self.directory.is_dir():
            raise NotADirectoryError(f"object store directory {self.directory} does not exist")
        if latency < 0 or (bandwidth is not None and bandwidth <= 0):
            raise ValueError(f"latency must be >= 0 and bandwidth > 0 (got {latency!r}, {bandwidth!r})")
        self.bucket = bucket
        self.latency = float(latency)
        self.bandwidth = float(bandwidth) if bandwidth else None
        self.lifetime = float(lifetime)
        self._counters = _Counters()
        self._conn_ids = 0
        self._sockets: set = set()
        self._etags: dict = {}
        self._server = None  # asyncio.Server
        self._loop = None
        self._thread: threading.Thread | None = None
        self._timer: threading.Timer | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> ObjectStore:
        if self._server is not None:
            return self
        import asyncio

        loop = asyncio.new_event_loop()
        ready = threading.Event()

        async def serve() -> None:
            # a deep listen backlog: a client opening hundreds of connections at once must not meet SYN drops
            # (and their 1 s retransmits)
            self._server = await asyncio.start_server(
                lambda r, w: _serve_connection(self, r, w), "127.0.0.1", 0, backlog=1024, limit=1 << 16
            )
            ready.set()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.run_until_complete(serve())
            loop.run_forever()
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=run, name="objstore", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("object store did not start")
        self._timer = threading.Timer(self.lifetime, self._expire)
        self._timer.daemon = True
        self._timer.start()
        log.info(
            "object store on %s (bucket %s, latency %.0f ms, bandwidth %s per connection)",
            self.endpoint_url,
            self.bucket,
            self.latency * 1e3,
            f"{self.bandwidth / 1e6:.0f} MB/s" if self.bandwidth else "unlimited",
        )
        return self

    def _expire(self) -> None:
        log.warning(
            "object store %s reached its lifetime (%.0f s): stopping", self.endpoint_url, self.lifetime
        )
        self.stop()

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        if self._timer is not None and self._timer is not threading.current_thread():
            self._timer.cancel()
        loop = self._loop

        async def shutdown() -> None:
            server.close()
            with self._counters.lock:
                writers = list(self._sockets)
            for writer in writers:  # close keep-alive connections waiting for their next request
                writer.close()
            await server.wait_closed()

        import asyncio

        try:
            asyncio.run_coroutine_threadsafe(shutdown(), loop).result(timeout=5)
        except Exception:  # noqa: BLE001 - stopping: what is left is dropped with the loop
            log.debug("object store shutdown incomplete", exc_info=True)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> ObjectStore:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------------ addresses

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("object store not started")
        return self._server.sockets[0].getsockname()[1]

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def uri(self, key: str | os.PathLike) -> str:
        """``s3://bucket/key`` of a file (a key, or a path under the served directory)."""
        return f"s3://{self.bucket}/{self._key(key)}"

    def url(self, key: str | os.PathLike) -> str:
        """Plain ``http://`` URL of a file, for fsspec's HTTP filesystem."""
        return f"{self.endpoint_url}/{self.bucket}/{quote(self._key(key))}"

    @property
    def fsspec_kwargs(self) -> dict:
        """s3fs options reaching this store anonymously."""
        return {"anon": True, "endpoint_url": self.endpoint_url}

    def _key(self, key: str | os.PathLike) -> str:
        p = Path(key)
        if p.is_absolute():
            p = p.resolve().relative_to(self.directory)
        return p.as_posix()

    # ------------------------------------------------------------------ counters

    def stats(self) -> dict:
        """``requests``, ``bytes_sent`` (body bytes), ``connections`` (opened), ``connections_used`` (that
        carried a request, including keep-alive connections opened before the last :meth:`reset`),
        ``max_in_flight`` (most requests being answered at once), ``max_connections_open``,
        ``gets``/``heads``/``lists`` counts.

        Waits (up to 2 s) for the requests being answered to end: a client can hold a response's last bytes
        before the server has counted them.
        """
        c = self._counters
        with c.lock:
            c.lock.wait_for(lambda: c.in_flight == 0, timeout=2.0)
            served = list(c.served)
            return {
                "requests": len(served),
                "bytes_sent": sum(r.nbytes for r in served),
                "connections": c.connections,
                "connections_used": len({r.connection for r in served}),
                "max_in_flight": c.max_in_flight,
                "max_connections_open": c.max_connections_open,
                "gets": sum(r.method == "GET" and r.path.count("/") > 1 for r in served),
                "heads": sum(r.method == "HEAD" for r in served),
                "lists": sum(r.method == "GET" and r.path.count("/") <= 1 for r in served),
            }

    def served(self) -> list[Served]:
        """The log of answered requests since the last :meth:`reset` (waiting up to 2 s for those in progress)."""
        c = self._counters
        with c.lock:
            c.lock.wait_for(lambda: c.in_flight == 0, timeout=2.0)
            return list(c.served)

    def served_dicts(self) -> list[dict]:
        return [asdict(r) for r in self.served()]

    def reset(self) -> None:
        """Clear the counters and the request log (open connections stay open and uncounted)."""
        c = self._counters
        with c.lock:
            c.served = []
            c.max_in_flight = c.in_flight
            c.connections = 0
            c.max_connections_open = c.open_connections

    def _begin(self, rec: Served) -> None:
        c = self._counters
        with c.lock:
            c.served.append(rec)
            c.in_flight += 1
            c.max_in_flight = max(c.max_in_flight, c.in_flight)

    def _end(self, rec: Served) -> None:
        with self._counters.lock:
            self._counters.in_flight -= 1
            self._counters.lock.notify_all()

    def _connection_opened(self, writer) -> int:
        c = self._counters
        with c.lock:
            self._sockets.add(writer)
            c.connections += 1
            c.open_connections += 1
            c.max_connections_open = max(c.max_connections_open, c.open_connections)
            self._conn_ids += 1
            return self._conn_ids

    def _connection_closed(self, writer) -> None:
        c = self._counters
        with c.lock:
            self._sockets.discard(writer)
            c.open_connections -= 1

    # ------------------------------------------------------------------ objects

    def _resolve(self, key: str) -> Path | None:
        """The file of ``key``, or None (missing, a directory, or outside the served directory)."""
        path = (self.directory / key).resolve()
        if not path.is_relative_to(self.directory) or not path.is_file():
            return None
        return path

    def _etag(self, path: Path, st: os.stat_result) -> str:
        """A quoted ETag from the file's path, size and mtime (the content is not hashed: never read whole)."""
        ident = (str(path), st.st_size, st.st_mtime_ns)
        tag = self._etags.get(ident)
        if tag is None:
            tag = '"' + hashlib.md5(repr(ident).encode(), usedforsecurity=False).hexdigest() + '"'
            self._etags[ident] = tag
        return tag

    def _list_xml(self, query: dict) -> bytes:
        """ListObjectsV2 (and V1-compatible) listing of keys under ``prefix``, grouped by ``delimiter``."""
        prefix = query.get("prefix", [""])[0]
        delimiter = query.get("delimiter", [""])[0]
        max_keys = int(query.get("max-keys", ["1000"])[0] or 1000)
        after = query.get("start-after", [""])[0] or query.get("continuation-token", [""])[0]
        keys = sorted(
            p.relative_to(self.directory).as_posix() for p in self.directory.rglob("*") if p.is_file()
        )
        contents, prefixes = [], []
        for k in keys:
            if not k.startswith(prefix) or (after and k <= after):
                continue
            rest = k[len(prefix) :]
            if delimiter and delimiter in rest:
                common = prefix + rest.split(delimiter, 1)[0] + delimiter
                if common not in prefixes:
                    prefixes.append(common)
                continue
            contents.append(k)
        entries = sorted([(k, False) for k in contents] + [(p, True) for p in prefixes])
        truncated = len(entries) > max_keys
        entries = entries[:max_keys]
        out = [
            '<?xml version="1.0" encoding="UTF-8"?>',
            f'<ListBucketResult xmlns="{_S3_NS}">',
            f"<Name>{escape(self.bucket)}</Name><Prefix>{escape(prefix)}</Prefix>",
            f"<Delimiter>{escape(delimiter)}</Delimiter>" if delimiter else "",
            f"<MaxKeys>{max_keys}</MaxKeys><KeyCount>{len(entries)}</KeyCount>",
            f"<IsTruncated>{'true' if truncated else 'false'}</IsTruncated>",
        ]
        if truncated and entries:
            out.append(f"<NextContinuationToken>{escape(entries[-1][0])}</NextContinuationToken>")
        for name, is_prefix in entries:
            if is_prefix:
                out.append(f"<CommonPrefixes><Prefix>{escape(name)}</Prefix></CommonPrefixes>")
                continue
            path = self.directory / name
            st = path.stat()
            modified = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(st.st_mtime))
            out.append(
                f"<Contents><Key>{escape(name)}</Key><LastModified>{modified}</LastModified>"
                f"<ETag>{escape(self._etag(path.resolve(), st))}</ETag><Size>{st.st_size}</Size>"
                "<StorageClass>STANDARD</StorageClass></Contents>"
            )
        out.append("</ListBucketResult>")
        return "".join(out).encode()


def run_client(
    store: ObjectStore,
    code: str,
    args: dict,
    *,
    what: str,
    cwd: str | os.PathLike,
    pycache: str | os.PathLike,
    before_go=None,
    timeout: float = 900.0,
) -> tuple[dict, dict] | None:
    """Run a benchmark client against ``store`` in a child process; return its figures and the store's counters.

    The child runs ``python -c code json(args)``, anonymously (no AWS credentials in its environment, as against
    MAST's public bucket). After its warm-up it prints ``ready`` and waits for a line on stdin; then
    ``before_go()`` runs (if given), the store's counters are reset, the child is told to go, and its last line
    of output is read as JSON. The counters then cover exactly the timed part. The child is killed after
    ``timeout`` seconds; a failing child is logged (naming ``what``) and gives None.
    """
    import json
    import subprocess
    import sys

    env = dict(os.environ, AWS_DEFAULT_REGION="us-east-1", PYTHONPYCACHEPREFIX=str(pycache))
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        env.pop(k, None)
    proc = subprocess.Popen(
        [sys.executable, "-c", code, json.dumps(args)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=str(cwd),
    )
    killer = threading.Timer(timeout, proc.kill)  # bounded: a hung child is killed
    killer.start()
    try:
        if proc.stdout.readline().strip() == "ready":
            if before_go is not None:
                before_go()
            store.reset()
            proc.stdin.write("go\n")
            proc.stdin.flush()
        stdout, stderr = proc.communicate()
    finally:
        killer.cancel()
    if proc.returncode:
        log.warning("%s failed (rc %s): %s", what, proc.returncode, stderr[-2000:])
        return None
    figures = json.loads(stdout.strip().splitlines()[-1])
    time.sleep(0.05)  # let the server close its books on the last responses
    return figures, store.stats()
