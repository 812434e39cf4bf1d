"""The one remote layer: which inputs are remote, the fsspec options of a URI, byte-range reads, errors.

Everything in skycut that reads a local path, an ``https://`` URL or an ``s3://`` URI goes through here:

* :func:`is_remote` / :func:`protocol` say what an input is.
* :func:`storage_options` turns a URI plus the user's options (a manifest's ``fsspec`` section or a library
  call's ``fsspec_kwargs``: ``anon``, ``endpoint_url``, ``key``, ``secret``, ``token``, ``block_size``,
  ``requester_pays``, ...) into the options of that URI's filesystem. S3 options reach only ``s3://``; an
  ``http(s)://`` URL gets only what :class:`fsspec.implementations.http.HTTPFileSystem` (and the aiohttp request
  it makes) accepts; dropped options are logged at debug level. So one option set serves a mix of inputs, and
  ``anon=True`` next to an ``https://`` URL is harmless. :func:`filesystem` builds the filesystem from them.
* :func:`open_source` gives a byte source with ``size``, ``read(start, end)`` and ``read_ranges(ranges)``:
  :class:`LocalFile` (``os.pread``) or :class:`RemoteFile`. A remote file's ranges go out together through the
  filesystem's ``cat_ranges``: for the asynchronous filesystems (s3fs, HTTP) that is one batch of concurrent
  requests on fsspec's event loop over the filesystem's pooled connections (filesystem instances are cached
  per option set, so every file of a batch shares them). No thread pool of skycut's own.
* :func:`remote_error` makes the error of a failed remote access: it names the URI and the cause (not found,
  access denied, connection refused, bad option, ...), read from the exception chain that fsspec, s3fs,
  botocore and aiohttp leave.
* FITS images on top of that: :func:`open_fits_handle` opens local files with ``memmap=True`` and
  ``lazy_load_hdus=True`` (only headers are parsed up front) and remote files through fsspec with small blocks
  (opening fetches the header blocks and little else). Pixels of an uncompressed image are then fetched by
  :class:`RangeSection` as one byte range per needed row (adjacent rows merged when the gap between them is
  small) through :meth:`RemoteFile.read_ranges`. Tile-compressed and scaled images fall back to astropy's
  ``hdu.section``, which also reads only the needed tiles/rows through the same fsspec file. The ASDF reader
  (:mod:`skycut.image.asdf_io`) and the cube reader (:mod:`skycut.tess.cube_reader`) use the same sources.

S3 access is anonymous by default (public buckets such as MAST's), unless credentials (``key``/``secret``,
``token``, ``profile``) or ``anon`` are given.
"""

from __future__ import annotations

import contextlib
import errno
import io
import logging
import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..exceptions import InvalidInputError

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Iterator

    from astropy.io import fits

log = logging.getLogger(__name__)

#: Block size for remote reads: large enough for a typical header in one or two requests, small enough that
#: opening a 200 MB file costs ~64 KB.
DEFAULT_BLOCK_SIZE = 64 * 1024
#: Adjacent row ranges closer than this many bytes are fetched as one range.
DEFAULT_MERGE_GAP = 16 * 1024
#: Connections s3fs's client may keep open to one endpoint (botocore's default, 10, caps the requests in flight:
#: 600 ranged reads at 30 ms latency take 2.2 s with 10 and 1.3 s with 64 connections).
S3_MAX_POOL_CONNECTIONS = 64
#: Seconds a remote request may wait to connect, and then for each answer, unless the user's ``timeout`` option
#: says otherwise: botocore's ``connect_timeout``/``read_timeout`` for s3, aiohttp's ``sock_connect``/``sock_read``
#: for http(s). A server that accepts a connection and never answers fails the read after this long, naming the
#: URI and "timed out", instead of stalling the job.
DEFAULT_TIMEOUT = 60.0
#: botocore's own retries are off (one attempt per call): skycut's :class:`RetryPolicy` retries, once, bounded and
#: logged (botocore's default would multiply with it and with s3fs's, up to 25 attempts per read).
#: (A fresh copy goes to every filesystem: botocore adds keys to the dict it is given, which would change the
#: option set, and so the cached filesystem and its connection pool, after the first use.)
S3_BOTOCORE_RETRIES = {"total_max_attempts": 1}

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_S3_PROTOCOLS = ("s3", "s3a")
_HTTP_PROTOCOLS = ("http", "https")
#: Options of any fsspec filesystem (instance cache and listings cache of ``AbstractFileSystem``).
_GENERIC_OPTIONS = frozenset({"skip_instance_cache", "use_listings_cache", "listings_expiry_time", "max_paths"})
#: What ``s3fs.S3FileSystem`` accepts (``block_size`` is translated to ``default_block_size``).
_S3_OPTIONS = frozenset({
    "anon", "endpoint_url", "key", "secret", "token", "profile", "username", "password", "use_ssl",
    "client_kwargs", "requester_pays", "default_block_size", "default_fill_cache", "default_cache_type",
    "version_aware", "config_kwargs", "s3_additional_kwargs", "session", "cache_regions", "max_concurrency",
    "fixed_upload_size",
})
#: What ``HTTPFileSystem`` accepts: its own parameters, plus keyword arguments of the aiohttp requests it makes
#: (HTTPFileSystem hands every other option to each request, which is why ``anon`` used to break https inputs).
_HTTP_OPTIONS = frozenset({
    "block_size", "simple_links", "same_scheme", "size_policy", "cache_type", "cache_options", "client_kwargs",
    "get_client", "encoded", "headers", "auth", "cookies", "ssl", "proxy", "proxy_auth", "allow_redirects",
    "timeout",
})
_CREDENTIAL_KEYS = ("key", "secret", "token", "profile", "username", "password", "session")
_SECRET_KEYS = frozenset({"key", "secret", "token", "password", "session"})


def is_remote(path: Any) -> bool:
    """True for URLs/URIs (``https://``, ``s3://``, any ``scheme://`` fsspec knows) other than ``file://``.

    Local paths (``str`` or path-like) and ``file://`` URLs are not remote.
    """
    if not isinstance(path, str):
        return False
    match = _SCHEME.match(path)
    return match is not None and match.group(1).lower() != "file"


def protocol(path: str) -> str:
    """``"s3"``, ``"https"``, ``"http"``, ... or ``"file"`` for a local path."""
    return path.split("://", 1)[0].lower() if is_remote(path) else "file"


def build_fsspec_kwargs(*, anon: bool | None = None, endpoint_url: str | None = None, key: str | None = None,
                        secret: str | None = None, token: str | None = None,
                        block_size: int | None = None, **extra: Any) -> dict[str, Any]:
    """Collect fsspec/s3fs options (``None`` values dropped), e.g. from a manifest's ``fsspec`` section.

    The result is protocol-neutral; :func:`storage_options` turns it into the options of one filesystem.
    """
    values = {"anon": anon, "endpoint_url": endpoint_url, "key": key, "secret": secret, "token": token,
              "block_size": block_size, **extra}
    return {k: v for k, v in values.items() if v is not None}


def storage_options(path: str, fsspec_kwargs: dict[str, Any] | None = None) -> dict[str, Any]:
    """The fsspec filesystem options for ``path``: the user's options that apply to its protocol, plus defaults.

    Parameters
    ----------
    path : str
        A URI (``s3://``, ``http(s)://``, ...) or a local path.
    fsspec_kwargs : dict, optional
        The user's options, protocol-neutral (one set may serve ``s3://`` and ``https://`` inputs alike).

    Returns
    -------
    dict
        * ``s3://``: the s3fs options among the user's; ``anon=True`` unless credentials or ``anon`` are given;
          ``block_size`` becomes ``default_block_size`` (default :data:`DEFAULT_BLOCK_SIZE`); the client's
          connection pool holds :data:`S3_MAX_POOL_CONNECTIONS` and botocore does not retry
          (:data:`S3_BOTOCORE_RETRIES`) unless ``config_kwargs`` says otherwise.
        * ``http(s)://``: only what ``HTTPFileSystem`` accepts; ``block_size`` defaults to
          :data:`DEFAULT_BLOCK_SIZE`. S3 options (``anon``, ``endpoint_url``, credentials, ...) are dropped.
        * both: the ``timeout`` option (seconds, default :data:`DEFAULT_TIMEOUT`; ``None`` in the user's options
          also means the default) becomes botocore's ``connect_timeout``/``read_timeout`` (s3) or an aiohttp
          ``ClientTimeout(sock_connect, sock_read)`` in ``client_kwargs`` (http); explicit ``config_kwargs`` /
          ``client_kwargs`` timeouts win.
        * other remote protocols: the user's options as given (skycut knows nothing of their filesystems).
        * local paths: nothing.

        Every dropped option is logged at debug level.
    """
    opts = {k: v for k, v in (fsspec_kwargs or {}).items() if v is not None}
    proto = protocol(path)
    if proto in _S3_PROTOCOLS:
        block = opts.pop("block_size", None)
        keep = _S3_OPTIONS | _GENERIC_OPTIONS
    elif proto in _HTTP_PROTOCOLS:
        block = None
        keep = _HTTP_OPTIONS | _GENERIC_OPTIONS
    elif proto == "file":
        block, keep = None, frozenset()
    else:
        return opts
    timeout = opts.pop("timeout", DEFAULT_TIMEOUT) if proto != "file" else None
    dropped = sorted(k for k in opts if k not in keep)
    if dropped:
        log.debug("options %s do not apply to %s:// inputs; ignored for %s", dropped, proto, path)
        opts = {k: v for k, v in opts.items() if k in keep}
    if proto in _S3_PROTOCOLS:
        if "anon" not in opts and not any(k in opts for k in _CREDENTIAL_KEYS):
            opts["anon"] = True
        opts.setdefault("default_block_size", block or DEFAULT_BLOCK_SIZE)
        opts["config_kwargs"] = {"max_pool_connections": S3_MAX_POOL_CONNECTIONS, "retries": dict(S3_BOTOCORE_RETRIES),
                                 **(opts.get("config_kwargs") or {})}
        if timeout is not None:
            opts["config_kwargs"] = {"connect_timeout": timeout, "read_timeout": timeout, **opts["config_kwargs"]}
    elif proto in _HTTP_PROTOCOLS:
        opts.setdefault("block_size", DEFAULT_BLOCK_SIZE)
        if timeout is not None:
            import aiohttp

            client = dict(opts.get("client_kwargs") or {})
            client.setdefault("timeout", aiohttp.ClientTimeout(total=None, sock_connect=timeout, sock_read=timeout))
            opts["client_kwargs"] = client
    return opts


def _shown(opts: dict[str, Any]) -> dict[str, Any]:
    return {k: ("***" if k in _SECRET_KEYS else v) for k, v in opts.items()}


def filesystem(uri: str, fsspec_kwargs: dict[str, Any] | None = None, *, what: str = "remote file"
               ) -> tuple[Any, str]:
    """``(fsspec filesystem, path in it)`` for ``uri`` with the options :func:`storage_options` gives.

    fsspec caches filesystem instances per option set, so repeated calls share one filesystem (and its
    connection pool). Raises :class:`InvalidInputError` naming ``uri`` when the options are refused.
    """
    import fsspec

    opts = storage_options(uri, fsspec_kwargs)
    try:
        fs, path = fsspec.core.url_to_fs(uri, **opts)
    except Exception as exc:  # unknown protocol, bad option value, missing backend
        raise remote_error(uri, exc, what=what) from exc
    if protocol(uri) in _S3_PROTOCOLS and getattr(fs, "retries", 1) != 1:
        fs.retries = 1  # s3fs's own retry loop off for skycut's instances (see S3_BOTOCORE_RETRIES)
    log.debug("%s: %s with %s", uri, type(fs).__name__, _shown(opts))
    return fs, path


# ------------------------------------------------------------------------------------------------ errors


def _exception_chain(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    node: BaseException | None = exc
    while node is not None and node not in chain and len(chain) < 10:
        chain.append(node)
        node = node.__cause__ or node.__context__
    return chain


_STATUS_TEXT = {400: "bad request", 401: "not authorised", 403: "access denied", 404: "not found",
                416: "range not satisfiable", 429: "too many requests", 500: "server error",
                502: "bad gateway", 503: "service unavailable", 504: "gateway timeout"}


def describe_error(exc: BaseException) -> str:
    """A short cause for a failed remote access, e.g. ``"not found (HTTP 404)"`` or ``"connection refused"``.

    Looks through the exception chain: an HTTP status (aiohttp), a refused or failed connection (aiohttp,
    botocore), a timeout, a refused option, then fsspec's translations (``FileNotFoundError`` = 404,
    ``PermissionError`` = 403).
    """
    chain = _exception_chain(exc)
    for e in chain:
        status = getattr(e, "status", None)
        if isinstance(status, int) and status >= 400:
            text = _STATUS_TEXT.get(status, "HTTP error")
            reason = getattr(e, "message", "") or ""
            return f"{text} (HTTP {status}{' ' + str(reason) if reason else ''})"
        response = getattr(e, "response", None)  # botocore ClientError
        if isinstance(response, dict) and "Error" in response:
            code = response["Error"].get("Code", "")
            http = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            text = _STATUS_TEXT.get(http, "S3 error") if isinstance(http, int) else "S3 error"
            return f"{text} (S3 {code}{f', HTTP {http}' if http else ''})"
    for e in chain:
        os_error = getattr(e, "os_error", None)
        wrapped = (getattr(e, "kwargs", None) or {}).get("error") if isinstance(getattr(e, "kwargs", None), dict) else None
        for candidate in (e, os_error, *(_exception_chain(wrapped) if isinstance(wrapped, BaseException) else ())):
            candidate = getattr(candidate, "os_error", None) or candidate
            if isinstance(candidate, ConnectionRefusedError) or (
                    isinstance(candidate, OSError) and candidate.errno == errno.ECONNREFUSED):
                return f"connection refused ({e})"
        name = type(e).__name__
        if name in ("ClientConnectorError", "EndpointConnectionError", "ServerDisconnectedError", "ClientOSError", "ConnectionClosedError"):
            return f"cannot connect ({e})"
        if isinstance(e, TimeoutError) or name in ("FSTimeoutError", "ReadTimeoutError", "ServerTimeoutError",
                                                   "ConnectTimeoutError"):
            return f"timed out: no answer ({str(e) or name})"
    head = chain[0]
    if isinstance(head, TypeError) and "argument" in str(head):
        return f"bad fsspec option ({head})"
    if isinstance(head, FileNotFoundError):
        return "not found (404)"
    if isinstance(head, PermissionError):
        return "access denied (403)"
    return f"{type(head).__name__}: {head}"


def remote_error(uri: str, exc: BaseException, *, what: str = "remote file") -> InvalidInputError:
    """An :class:`InvalidInputError` ``"cannot read <what> <uri>: <cause>"`` for a failed access to ``uri``."""
    if isinstance(exc, InvalidInputError) and uri in str(exc):
        return exc
    return InvalidInputError(f"cannot read {what} {uri!r}: {describe_error(exc)}")


def truncated_error(name: str, expected: int, found: int, *, what: str = "FITS file") -> InvalidInputError:
    """The error for a file shorter than its headers say: names the file, expected and found sizes in bytes."""
    return InvalidInputError(f"{what} {name!r} is truncated: its headers need {expected} bytes, the file has {found}")


def _unsatisfiable(exc: BaseException) -> bool:
    """True when ``exc`` says a byte range starts beyond the end of the file (HTTP 416, S3 InvalidRange)."""
    for e in _exception_chain(exc):
        if getattr(e, "status", None) == 416 or "InvalidRange" in str(e) or "416" in type(e).__name__:
            return True
        response = getattr(e, "response", None)
        if isinstance(response, dict) and (response.get("Error", {}).get("Code") == "InvalidRange"
                                           or response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 416):
            return True
    return False


# ------------------------------------------------------------------------------------------------ retries


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a remote request is retried after a transient failure.

    A request is tried at most ``attempts`` times. Before retry ``k`` (``k = 0, 1, ...``) it waits
    ``min(max_backoff, backoff * 2**k)`` seconds, no jitter: the waits are the same on every run. Transient failures
    (:func:`retryable`) are HTTP 5xx and 429, S3 ``SlowDown``/``Throttling``/``InternalError``, timeouts and dropped
    connections; a missing file, a refused access, a refused connection or a bad request fail at once.
    """

    attempts: int = 4
    backoff: float = 0.2
    max_backoff: float = 5.0

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.backoff < 0 or self.max_backoff < 0:
            raise InvalidInputError(f"bad retry policy {self}: attempts >= 1 and non-negative backoffs needed")

    def delay(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (0 for the first retry)."""
        return min(self.max_backoff, self.backoff * 2.0 ** retry)


#: The retry policy of every remote read unless a :class:`RemoteFile` is given another.
DEFAULT_RETRY = RetryPolicy()

_RETRY_S3_CODES = frozenset({"SlowDown", "Throttling", "ThrottlingException", "RequestTimeout", "InternalError",
                             "ServiceUnavailable", "RequestTimeTooSkewed"})
_DROPPED = ("ServerDisconnectedError", "ClientPayloadError", "ClientOSError", "ServerTimeoutError",
            "ReadTimeoutError", "ConnectTimeoutError", "ConnectionClosedError", "ResponseStreamingError",
            "IncompleteRead", "IncompleteReadError", "FSTimeoutError", "ContentLengthError", "TransferEncodingError")


def retryable(exc: BaseException) -> bool:
    """True when ``exc`` (or its chain) is a transient failure worth retrying (see :class:`RetryPolicy`)."""
    chain = _exception_chain(exc)
    for e in chain:
        status = getattr(e, "status", None)
        if isinstance(status, int) and status >= 400:
            return status >= 500 or status == 429
        response = getattr(e, "response", None)  # botocore ClientError
        if isinstance(response, dict) and "Error" in response:
            code = response["Error"].get("Code", "")
            http = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            return code in _RETRY_S3_CODES or (isinstance(http, int) and (http >= 500 or http == 429))
    for e in chain:
        if isinstance(e, ConnectionRefusedError) or (isinstance(e, OSError) and e.errno == errno.ECONNREFUSED):
            return False
        os_error = getattr(e, "os_error", None)
        if isinstance(os_error, ConnectionRefusedError):
            return False
    for e in chain:
        if isinstance(e, (TimeoutError, ConnectionResetError, ConnectionAbortedError, BrokenPipeError)):
            return True
        if type(e).__name__ in _DROPPED:
            return True
    return False


# ------------------------------------------------------------------------------------------------ byte sources


class LocalFile:
    """A local file read with ``os.pread``: the local twin of :class:`RemoteFile` (same methods, counters)."""

    remote = False

    def __init__(self, path: str | os.PathLike, *, what: str = "file"):
        self.path = self.uri = os.fspath(path)
        try:
            self._fd = os.open(self.path, os.O_RDONLY)
        except OSError as exc:
            raise InvalidInputError(f"cannot open {what} {self.path!r}: {exc.strerror or exc}") from exc
        self.size = os.fstat(self._fd).st_size
        self.requests = 0
        self.bytes_read = 0

    def read(self, start: int, end: int | None = None, *, exact: bool = True) -> bytes:
        """Bytes ``[start, end)`` (``end=None``: to the end of the file); ``exact=False`` allows a short read
        at the end of the file."""
        stop = self.size if end is None else end
        blob = os.pread(self._fd, max(0, stop - start), start)
        self.requests += 1
        self.bytes_read += len(blob)
        if exact and end is not None and len(blob) != end - start:
            raise InvalidInputError(f"short read from {self.path!r}: wanted bytes {start}-{end}, got {len(blob)}")
        return blob

    def read_ranges(self, ranges: list[tuple[int, int]], max_in_flight: int | None = None) -> list[bytes]:
        """Bytes of every ``(start, end)`` range, in order."""
        return [self.read(a, b) for a, b in ranges]

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> LocalFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class RemoteFile:
    """Byte-range reads of one remote file through its fsspec filesystem, with bounded retries.

    Parameters
    ----------
    uri : str
        ``s3://``, ``http(s)://`` (or any fsspec) URI.
    fsspec_kwargs : dict, optional
        The user's options (see :func:`storage_options`; its ``timeout`` bounds each request's waits, and a
        request that times out is retried like any transient failure).
    what : str
        What the file is, for error messages (``"remote cube"``, ``"remote FITS file"``, ...).
    max_in_flight : int, optional
        Default bound on concurrent requests of :meth:`read_ranges` (None: every range at once, up to the
        filesystem's connection pool).
    retry : RetryPolicy, optional
        Attempts and backoff for transient failures (default :data:`DEFAULT_RETRY`); every retry is logged at
        warning level with the URI, the byte range and the cause.

    For the asynchronous filesystems (s3fs, HTTP) every request is a coroutine run on fsspec's event loop
    (``fs._cat_file`` per range, ``asyncio.gather`` over the ranges, a semaphore for ``max_in_flight``), so the
    ranges of a batch share the filesystem's pooled connections; the retries are skycut's own (s3fs's and
    botocore's are turned off for the filesystems :func:`filesystem` builds, so attempts are bounded and counted
    once). Nothing is requested until a read: the first request that fails for good raises
    :class:`InvalidInputError` naming the URI and the cause. ``requests`` (every attempt, retries included),
    ``retries`` and ``bytes_read`` count what was fetched.
    """

    remote = True

    def __init__(self, uri: str, fsspec_kwargs: dict[str, Any] | None = None, *, what: str = "remote file",
                 max_in_flight: int | None = None, retry: RetryPolicy | None = None):
        self.uri = uri
        self.what = what
        self.max_in_flight = max_in_flight
        self.retry = retry or DEFAULT_RETRY
        self.fs, self.path = filesystem(uri, fsspec_kwargs, what=what)
        block = (fsspec_kwargs or {}).get("block_size")
        self.block_size = int(block) if isinstance(block, int) and block > 0 else DEFAULT_BLOCK_SIZE
        self._async = bool(getattr(self.fs, "async_impl", False))
        self._size: int | None = None
        self._lock = threading.Lock()
        self.requests = 0
        self.retries = 0
        self.bytes_read = 0

    def error(self, exc: BaseException) -> InvalidInputError:
        """The error to raise for a failed access (names the URI and the cause)."""
        return remote_error(self.uri, exc, what=self.what)

    def _count(self, n_requests: int, n_bytes: int, n_retries: int = 0) -> None:
        with self._lock:
            self.requests += n_requests
            self.bytes_read += n_bytes
            self.retries += n_retries

    def _give_up_or_wait(self, exc: BaseException, attempt: int, what: str) -> float:
        """Seconds to wait before retrying after ``exc`` on attempt ``attempt`` (0-based); re-raises ``exc`` when
        it is not transient or the attempts are used up."""
        if not retryable(exc) or attempt + 1 >= self.retry.attempts:
            if attempt:
                log.warning("%s %s: giving up after %d attempts: %s", self.uri, what, attempt + 1,
                            describe_error(exc))
            raise exc
        wait = self.retry.delay(attempt)
        log.warning("%s %s: %s; retry %d of %d in %.2f s", self.uri, what, describe_error(exc), attempt + 1,
                    self.retry.attempts - 1, wait)
        self._count(0, 0, 1)
        return wait

    async def _attempts(self, make: Any, what: str) -> Any:
        """Await ``make()`` (a fresh coroutine per attempt) with the retry policy."""
        import asyncio

        attempt = 0
        while True:
            self._count(1, 0)
            try:
                return await make()
            except Exception as exc:  # noqa: BLE001 - classified by retryable()
                await asyncio.sleep(self._give_up_or_wait(exc, attempt, what))
            attempt += 1

    def _attempts_sync(self, call: Any, what: str) -> Any:
        """``call()`` with the retry policy, for filesystems without an asynchronous implementation."""
        import time

        attempt = 0
        while True:
            self._count(1, 0)
            try:
                return call()
            except Exception as exc:  # noqa: BLE001 - classified by retryable()
                time.sleep(self._give_up_or_wait(exc, attempt, what))
            attempt += 1

    def _run(self, coro: Any) -> Any:
        from fsspec.asyn import sync

        return sync(self.fs.loop, lambda: coro)

    @property
    def size(self) -> int:
        """File size in bytes (one metadata request, the first time)."""
        if self._size is None:
            try:
                if self._async:
                    self._size = int(self._run(self._attempts(lambda: self.fs._size(self.path), "size")))
                else:
                    self._size = int(self._attempts_sync(lambda: self.fs.size(self.path), "size"))
            except Exception as exc:
                raise self.error(exc) from exc
        return self._size

    def _cat_sync(self, start: int, end: int | None) -> bytes:
        return bytes(self._attempts_sync(lambda: self.fs.cat_file(self.path, start=start, end=end),
                                         f"bytes {start}-{'' if end is None else end}"))

    async def _cat(self, start: int, end: int | None) -> bytes:
        blob = await self._attempts(lambda: self.fs._cat_file(self.path, start=start, end=end),
                                    f"bytes {start}-{'' if end is None else end}")
        return bytes(blob)

    def read(self, start: int, end: int | None = None, *, exact: bool = True) -> bytes:
        """Bytes ``[start, end)``; ``end=None`` reads to the end of the file in the same request.

        With ``exact=False`` a range running past the end of the file gives the bytes there are (``b""`` when it
        starts past the end) instead of an error.
        """
        try:
            blob = self._run(self._cat(start, end)) if self._async else self._cat_sync(start, end)
        except Exception as exc:
            if not exact and _unsatisfiable(exc):
                return b""
            raise self.error(exc) from exc
        self._count(0, len(blob))
        if exact and end is not None and len(blob) != end - start:
            raise InvalidInputError(f"short read from {self.uri!r}: wanted bytes {start}-{end}, got {len(blob)}")
        return blob

    async def _gather(self, ranges: list[tuple[int, int]], bound: int | None) -> list[Any]:
        import asyncio

        if not bound or bound >= len(ranges):
            return await asyncio.gather(*(self._cat(a, b) for a, b in ranges), return_exceptions=True)
        gate = asyncio.Semaphore(bound)

        async def one(a: int, b: int) -> bytes:
            async with gate:
                return await self._cat(a, b)

        return await asyncio.gather(*(one(a, b) for a, b in ranges), return_exceptions=True)

    def read_ranges(self, ranges: list[tuple[int, int]], max_in_flight: int | None = None) -> list[bytes]:
        """Bytes of every ``(start, end)`` range, in order, all requested concurrently.

        At most ``max_in_flight`` (default: the file's ``max_in_flight``; None: all of them, up to the
        filesystem's connection pool) requests are in flight at once; each is retried on its own. Any range that
        fails for good, or comes back short, raises :class:`InvalidInputError` naming the URI.
        """
        if not ranges:
            return []
        starts_ends = [(int(a), int(b)) for a, b in ranges]
        bound = max_in_flight or self.max_in_flight
        if self._async:
            blobs = self._run(self._gather(starts_ends, bound))
        else:
            blobs = []
            for a, b in starts_ends:
                try:
                    blobs.append(self._cat_sync(a, b))
                except Exception as exc:  # noqa: BLE001 - reported below like an async failure
                    blobs.append(exc)
        checked = self._checked(starts_ends, blobs)
        if isinstance(checked, InvalidInputError):
            raise checked
        return checked

    def iter_range_groups(self, groups: list[list[tuple[int, int]]], max_in_flight: int | None = None
                          ) -> Iterator[tuple[int, list[bytes] | InvalidInputError]]:
        """Fetch every range of every group concurrently; yield ``(group index, blobs)`` as each group completes.

        All requests go out together on fsspec's event loop (at most ``max_in_flight`` at once, default the file's
        ``max_in_flight``; requests start in group order, so the first groups tend to complete first), and the
        caller works on a completed group while the others are still arriving. A group with a range that fails
        for good (or comes back short) yields an :class:`InvalidInputError` naming the URI instead of its blobs;
        the other groups are unaffected. Leaving the iteration early cancels the requests not yet made.
        """
        if not self._async:
            for i, group in enumerate(groups):
                try:
                    yield i, self.read_ranges(group, max_in_flight)
                except InvalidInputError as exc:
                    yield i, exc
            return
        import asyncio
        import queue

        bound = max_in_flight or self.max_in_flight
        done: queue.Queue = queue.Queue()

        async def fetch_all() -> None:
            gate = asyncio.Semaphore(bound) if bound else contextlib.nullcontext()

            async def one(a: int, b: int) -> bytes:
                async with gate:
                    return await self._cat(a, b)

            async def group(i: int, ranges: list[tuple[int, int]]) -> None:
                done.put((i, await asyncio.gather(*(one(int(a), int(b)) for a, b in ranges), return_exceptions=True)))

            await asyncio.gather(*(group(i, g) for i, g in enumerate(groups)))

        future = asyncio.run_coroutine_threadsafe(fetch_all(), self.fs.loop)
        try:
            for _ in groups:
                while True:
                    try:
                        i, blobs = done.get(timeout=0.2)
                        break
                    except queue.Empty:
                        if not future.done():
                            continue
                    try:  # every group was queued before the gathering ended
                        i, blobs = done.get_nowait()
                        break
                    except queue.Empty:
                        future.result()  # raises what broke the gathering
                        raise InvalidInputError(f"cannot read {self.what} {self.uri!r}: requests lost") from None
                yield i, self._checked(groups[i], blobs)
        finally:
            future.cancel()

    def _checked(self, ranges: list[tuple[int, int]], blobs: list[Any]) -> list[bytes] | InvalidInputError:
        """``blobs`` if every one is the full range asked for, else the error naming the URI (and counts bytes)."""
        self._count(0, sum(len(x) for x in blobs if not isinstance(x, BaseException)))
        for (a, b), blob in zip(ranges, blobs, strict=True):
            if isinstance(blob, BaseException):
                err = self.error(blob)
                if err is not blob:
                    err.__cause__ = blob
                return err
            if len(blob) != b - a:
                return InvalidInputError(f"short read from {self.uri!r}: wanted bytes {a}-{b}, got {len(blob)}")
        return blobs

    def open(self, compression: str | None = None) -> io.BufferedIOBase:
        """A seekable, buffered binary file reading through this source (for parsers such as astropy and asdf).

        Every buffer fill is one :meth:`read` (so retried, timed and counted like the other reads), of
        ``block_size`` bytes (the user's ``block_size``, default :data:`DEFAULT_BLOCK_SIZE`). ``compression``
        (``"gzip"`` or ``"bz2"``) gives the decompressed stream of a file compressed as a whole.
        """
        fileobj: io.BufferedIOBase = io.BufferedReader(_RangeReader(self), buffer_size=self.block_size)
        if compression == "gzip":
            import gzip

            return gzip.GzipFile(fileobj=fileobj, mode="rb")
        if compression == "bz2":
            import bz2

            return bz2.BZ2File(fileobj, mode="rb")
        if compression is not None:
            raise InvalidInputError(f"cannot read {self.what} {self.uri!r}: unknown compression {compression!r}")
        return fileobj

    def close(self) -> None:
        """Nothing to release: connections belong to the (shared) filesystem's pool."""

    def __enter__(self) -> RemoteFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _RangeReader(io.RawIOBase):
    """The raw, seekable file of a :class:`RemoteFile`: every ``readinto`` is one ranged read at the position."""

    def __init__(self, source: RemoteFile):
        super().__init__()
        self._source = source
        self._pos = 0
        self.name = source.uri

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos}.get(whence)
        if base is None:
            base = self._source.size
        if base + offset < 0:
            raise ValueError(f"negative seek position {base + offset} in {self._source.uri!r}")
        self._pos = base + offset
        return self._pos

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if not len(view):
            return 0
        blob = self._source.read(self._pos, self._pos + len(view), exact=False)
        view[:len(blob)] = blob
        self._pos += len(blob)
        return len(blob)


def open_source(path: str | os.PathLike, fsspec_kwargs: dict[str, Any] | None = None, *, what: str = "file",
                max_in_flight: int | None = None) -> LocalFile | RemoteFile:
    """A byte source for ``path``: :class:`RemoteFile` for a URI, :class:`LocalFile` for a local path.

    ``what`` names the input in errors (``"cube"`` gives ``"cannot read remote cube ..."`` for a URI).
    """
    if is_remote(path):
        return RemoteFile(path, fsspec_kwargs, what=f"remote {what}", max_in_flight=max_in_flight)
    return LocalFile(path, what=what)


# ------------------------------------------------------------------------------------------------ FITS images


@dataclass
class FITSHandle:
    """An opened FITS input: the ``HDUList`` plus, for a remote input, its :class:`RemoteFile`.

    Close it (or use it as a context manager) to release the file.
    """

    name: str
    hdul: fits.HDUList
    source: RemoteFile | None = None
    _fileobj: Any = field(default=None, repr=False)
    #: True when the file is stored as plain FITS (not gzip/bzip2/zip-compressed as a whole), so that byte
    #: offsets of the data in the HDUs are offsets in the stored file and can be read directly.
    plain: bool = True

    @property
    def remote(self) -> bool:
        return self.source is not None

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.hdul.close()
        if self._fileobj is not None:
            with contextlib.suppress(Exception):
                self._fileobj.close()

    def __enter__(self) -> FITSHandle:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def section(self, index: int) -> Any:
        """Something sliceable as ``obj[..., y0:y1, x0:x1]`` giving the pixels of HDU ``index`` (only those
        read): :class:`RangeSection` for an uncompressed remote image, the memory map of a plain local image
        (slicing it touches only the needed pages), astropy's ``hdu.section`` otherwise (compressed or scaled
        data)."""

        hdu = self.hdul[index]
        if not self.plain:  # offsets refer to the decompressed stream: let astropy read it
            return hdu.section
        if self.source is not None:
            section = RangeSection.for_hdu(hdu, self.source)
            if section is not None:
                return section
            return hdu.section
        mapped = memmap_image(hdu, self.name)
        if mapped is not None:
            return mapped
        return hdu.section


def memmap_image(hdu: Any, path: str) -> np.ndarray | None:
    """A read-only ``numpy.memmap`` of a plain (uncompressed, unscaled) local image HDU, else None.

    Slicing it reads only the pages of the needed rows; the shape is the numpy shape ``(..., ny, nx)``.
    """
    from astropy.io import fits

    if isinstance(hdu, fits.CompImageHDU) or not isinstance(hdu, (fits.PrimaryHDU, fits.ImageHDU)):
        return None
    h = hdu.header
    naxis = h.get("NAXIS", 0)
    if (h.get("BITPIX") not in _BITPIX or naxis < 2 or h.get("BSCALE", 1) != 1 or h.get("BZERO", 0) != 0
            or "BLANK" in h):
        return None
    try:
        offset = int(hdu.fileinfo()["datLoc"])
    except Exception:  # pragma: no cover - astropy internals
        return None
    shape = tuple(int(h[f"NAXIS{i}"]) for i in range(naxis, 0, -1))
    return np.memmap(path, dtype=np.dtype(_BITPIX[h["BITPIX"]]), mode="r", offset=offset, shape=shape)


def _wrap_open_error(name: str, exc: Exception) -> InvalidInputError:
    if isinstance(exc, FileNotFoundError):
        return InvalidInputError(f"input file not found: {name}")
    if isinstance(exc, PermissionError):
        return InvalidInputError(f"no permission to read input file {name}: {exc}")
    if isinstance(exc, IsADirectoryError):
        return InvalidInputError(f"input {name} is a directory, not a FITS file")
    return InvalidInputError(f"cannot open {name} as FITS: {exc}")


def open_fits_handle(path: str | os.PathLike, fsspec_kwargs: dict[str, Any] | None = None) -> FITSHandle:
    """Open a local or remote FITS file lazily (headers only) and return a :class:`FITSHandle`.

    Raises
    ------
    InvalidInputError
        The file does not exist, cannot be read, or is not FITS; the message names ``path`` (and, for a remote
        file that cannot be reached, the cause: not found, access denied, connection refused, ...).
    """
    from astropy.io import fits

    name = os.fspath(path) if not isinstance(path, str) else path
    if not is_remote(name):
        if not Path(name).is_file():
            raise InvalidInputError(f"input file not found: {name}" if not Path(name).exists()
                                    else f"input {name} is not a regular file")
        try:
            with open(name, "rb") as fh:
                plain = fh.read(6) == b"SIMPLE"
            # memmap=None: memory-mapped, but scaled (BZERO/BSCALE) images are still allowed
            hdul = fits.open(name, mode="readonly", memmap=None, lazy_load_hdus=True)
            hdul[0]  # noqa: B018 - forces the primary header to be parsed
        except Exception as exc:
            raise _wrap_open_error(name, exc) from exc
        return FITSHandle(name, hdul, plain=plain)

    source = RemoteFile(name, fsspec_kwargs, what="remote FITS file")
    fileobj = source.open()
    try:
        magic = fileobj.read(6)
        plain = magic == b"SIMPLE"
        fileobj.seek(0)
        codec = "gzip" if magic[:2] == b"\x1f\x8b" else "bz2" if magic[:3] == b"BZh" else None
        if codec is not None:  # whole-file compression: astropy must read a decompressed stream
            fileobj.close()
            fileobj = source.open(compression=codec)
        hdul = fits.open(fileobj, mode="readonly", lazy_load_hdus=True, memmap=False)
        hdul[0]  # noqa: B018
    except InvalidInputError:
        fileobj.close()
        raise
    except Exception as exc:
        fileobj.close()
        raise InvalidInputError(f"cannot open {name} as FITS: {describe_error(exc)}") from exc
    return FITSHandle(name, hdul, source=source, _fileobj=fileobj, plain=plain)


def open_fits(path: str | os.PathLike, fsspec_kwargs: dict[str, Any] | None = None) -> fits.HDUList:
    """Open a local (memmap) or remote (fsspec, small blocks) FITS file lazily; returns the ``HDUList``.

    For remote files, ``hdul[i].section[...]`` reads only the needed bytes. Prefer
    :func:`open_fits_handle` when the file must be closed deterministically or ranges fetched concurrently.
    """
    return open_fits_handle(path, fsspec_kwargs).hdul


# unsigned-integer convention: (BITPIX, BZERO) -> numpy dtype of the scaled values
_UNSIGNED = {(8, -128): np.int8, (16, 32768): np.uint16, (32, 2**31): np.uint32, (64, 2**63): np.uint64}
_BITPIX = {8: "u1", 16: ">i2", 32: ">i4", 64: ">i8", -32: ">f4", -64: ">f8"}


@dataclass
class RangeSection:
    """Lazy view of an uncompressed image in a byte source, fetching only the requested rows as byte ranges.

    ``section[..., y0:y1, x0:x1]`` (the form :func:`skycut.core.geometry.extract_padded` uses; steps must be 1)
    returns a native-endian array. ``shape`` is the numpy shape ``(..., NAXIS2, NAXIS1)``; ``offset`` the byte
    offset of the first pixel in ``source`` (a :class:`RemoteFile` or :class:`LocalFile`). The ranges of one
    slice go out together through ``source.read_ranges``.
    """

    source: Any
    offset: int
    shape: tuple[int, ...]
    dtype: np.dtype
    out_dtype: np.dtype | None = None
    bzero: int = 0
    merge_gap: int = DEFAULT_MERGE_GAP
    max_in_flight: int = 32

    @classmethod
    def for_hdu(cls, hdu: Any, source: Any) -> RangeSection | None:
        """A RangeSection for ``hdu`` if it is a plain (uncompressed, unscaled or unsigned) image, else None."""
        from astropy.io import fits

        if isinstance(hdu, fits.CompImageHDU) or not isinstance(hdu, (fits.PrimaryHDU, fits.ImageHDU)):
            return None
        h = hdu.header
        bitpix = h.get("BITPIX")
        naxis = h.get("NAXIS", 0)
        if bitpix not in _BITPIX or naxis < 2 or "BLANK" in h:
            return None
        bscale, bzero = h.get("BSCALE", 1), h.get("BZERO", 0)
        out_dtype = None
        if bscale != 1 or bzero != 0:
            unsigned = _UNSIGNED.get((bitpix, bzero))
            if bscale != 1 or unsigned is None:
                return None
            out_dtype = np.dtype(unsigned)
        shape = tuple(int(h[f"NAXIS{i}"]) for i in range(naxis, 0, -1))
        try:
            offset = int(hdu.fileinfo()["datLoc"])
        except Exception:  # pragma: no cover - astropy internals
            return None
        return cls(source, offset, shape, np.dtype(_BITPIX[bitpix]), out_dtype, int(bzero))

    @property
    def requests(self) -> int:
        """Requests made by the source so far."""
        return self.source.requests

    def _ranges(self, plane: int, y0: int, y1: int, x0: int, x1: int) -> list[tuple[int, int, list[int]]]:
        """Byte ranges ``(start, end, rows)`` covering rows ``y0:y1``, columns ``x0:x1`` of ``plane``."""
        ny, nx = self.shape[-2:]
        size = self.dtype.itemsize
        base = self.offset + plane * ny * nx * size
        ranges: list[tuple[int, int, list[int]]] = []
        for row in range(y0, y1):
            start = base + (row * nx + x0) * size
            end = base + (row * nx + x1) * size
            if ranges and start - ranges[-1][1] <= self.merge_gap:
                ranges[-1] = (ranges[-1][0], end, ranges[-1][2] + [row])
            else:
                ranges.append((start, end, [row]))
        return ranges

    def __getitem__(self, key: Any) -> np.ndarray:
        from .geometry import window_key

        y0, y1, x0, x1, nplanes = window_key(key, self.shape, "RangeSection")
        lead, nx = self.shape[:-2], self.shape[-1]
        out = np.empty((nplanes, y1 - y0, x1 - x0), dtype=self.dtype)
        if out.size:
            jobs = [(p, r) for p in range(nplanes) for r in self._ranges(p, y0, y1, x0, x1)]
            blobs = self.source.read_ranges([(r[0], r[1]) for _, r in jobs], self.max_in_flight)
            for (plane, (_start, _end, rows)), blob in zip(jobs, blobs, strict=True):
                buf = np.frombuffer(blob, dtype=self.dtype)
                for i, row in enumerate(rows):  # merged ranges hold whole rows between the wanted columns
                    out[plane, row - y0] = buf[i * nx:i * nx + (x1 - x0)]
        data = out.astype(self.dtype.newbyteorder("="), copy=False)
        if self.out_dtype is not None:
            # FITS unsigned convention: adding BZERO = 2**(bits-1) (or -128 for signed bytes) flips the top bit
            bits = data.dtype.itemsize * 8
            as_unsigned = data.view(f"u{data.dtype.itemsize}") ^ np.array(1 << (bits - 1), f"u{data.dtype.itemsize}")
            data = as_unsigned.view(self.out_dtype)
        return data.reshape(lead + (y1 - y0, x1 - x0))
