"""Remote inputs: which inputs are remote, the fsspec options of a URI, its filesystem, errors and retries.

Everything in skycut that reads a local path, an ``https://`` URL or an ``s3://`` URI is configured here (the byte
sources that read them are in :mod:`skycut.core.remote_io`):

* :func:`is_remote` / :func:`protocol` say what an input is.
* :func:`storage_options` turns a URI plus the user's options (a manifest's ``fsspec`` section or a library
  call's ``fsspec_kwargs``: ``anon``, ``endpoint_url``, ``key``, ``secret``, ``token``, ``block_size``,
  ``requester_pays``, ...) into the options of that URI's filesystem. S3 options reach only ``s3://``; an
  ``http(s)://`` URL gets only what :class:`fsspec.implementations.http.HTTPFileSystem` (and the aiohttp request
  it makes) accepts; dropped options are logged at debug level. So one option set serves a mix of inputs, and
  ``anon=True`` next to an ``https://`` URL is harmless. :func:`filesystem` builds the filesystem from them
  (filesystem instances are cached per option set, so every file of a batch shares their pooled connections).
* :func:`remote_error` makes the error of a failed remote access: it names the URI and the cause (not found,
  access denied, connection refused, bad option, ...), read from the exception chain that fsspec, s3fs,
  botocore and aiohttp leave.
* :class:`RetryPolicy` and :func:`retryable` say which failures are transient and how often and how patiently
  a request is retried (:data:`DEFAULT_RETRY`).

S3 access is anonymous by default (public buckets such as MAST's), unless credentials (``key``/``secret``,
``token``, ``profile``) or ``anon`` are given.
"""

from __future__ import annotations

import errno
import logging
import re
from dataclasses import dataclass
from typing import Any

from ..exceptions import InvalidInputError

log = logging.getLogger(__name__)

#: Block size for remote reads: large enough for a typical header in one or two requests, small enough that
#: opening a 200 MB file costs ~64 KB.
DEFAULT_BLOCK_SIZE = 64 * 1024
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
_GENERIC_OPTIONS = frozenset(
    {"skip_instance_cache", "use_listings_cache", "listings_expiry_time", "max_paths"}
)
#: What ``s3fs.S3FileSystem`` accepts (``block_size`` is translated to ``default_block_size``).
_S3_OPTIONS = frozenset(
    {
        "anon",
        "endpoint_url",
        "key",
        "secret",
        "token",
        "profile",
        "username",
        "password",
        "use_ssl",
        "client_kwargs",
        "requester_pays",
        "default_block_size",
        "default_fill_cache",
        "default_cache_type",
        "version_aware",
        "config_kwargs",
        "s3_additional_kwargs",
        "session",
        "cache_regions",
        "max_concurrency",
        "fixed_upload_size",
    }
)
#: What ``HTTPFileSystem`` accepts: its own parameters, plus keyword arguments of the aiohttp requests it makes
#: (HTTPFileSystem hands every other option to each request, which is why ``anon`` used to break https inputs).
_HTTP_OPTIONS = frozenset(
    {
        "block_size",
        "simple_links",
        "same_scheme",
        "size_policy",
        "cache_type",
        "cache_options",
        "client_kwargs",
        "get_client",
        "encoded",
        "headers",
        "auth",
        "cookies",
        "ssl",
        "proxy",
        "proxy_auth",
        "allow_redirects",
        "timeout",
    }
)
_CREDENTIAL_KEYS = ("key", "secret", "token", "profile", "username", "password", "session")
_SECRET_KEYS = frozenset({"key", "secret", "token", "password", "session"})


def is_remote(path: Any) -> bool:
    """Return True for URLs/URIs (``https://``, ``s3://``, any ``scheme://`` fsspec knows) other than ``file://``.

    Local paths (``str`` or path-like) and ``file://`` URLs are not remote.
    """
    if not isinstance(path, str):
        return False
    match = _SCHEME.match(path)
    return match is not None and match.group(1).lower() != "file"


def protocol(path: str) -> str:
    """Return the protocol of ``path``: ``"s3"``, ``"https"``, ``"http"``, ... or ``"file"`` for a local path."""
    return path.split("://", 1)[0].lower() if is_remote(path) else "file"


def build_fsspec_kwargs(
    *,
    anon: bool | None = None,
    endpoint_url: str | None = None,
    key: str | None = None,
    secret: str | None = None,
    token: str | None = None,
    block_size: int | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Collect fsspec/s3fs options (``None`` values dropped), e.g. from a manifest's ``fsspec`` section.

    The result is protocol-neutral; :func:`storage_options` turns it into the options of one filesystem.
    """
    values = {
        "anon": anon,
        "endpoint_url": endpoint_url,
        "key": key,
        "secret": secret,
        "token": token,
        "block_size": block_size,
        **extra,
    }
    return {k: v for k, v in values.items() if v is not None}


def storage_options(path: str, fsspec_kwargs: dict[str, Any] | None = None) -> dict[str, Any]:
    """Return the fsspec filesystem options for ``path``: the user's options for its protocol, plus defaults.

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
        opts["config_kwargs"] = {
            "max_pool_connections": S3_MAX_POOL_CONNECTIONS,
            "retries": dict(S3_BOTOCORE_RETRIES),
            **(opts.get("config_kwargs") or {}),
        }
        if timeout is not None:
            opts["config_kwargs"] = {
                "connect_timeout": timeout,
                "read_timeout": timeout,
                **opts["config_kwargs"],
            }
    elif proto in _HTTP_PROTOCOLS:
        opts.setdefault("block_size", DEFAULT_BLOCK_SIZE)
        if timeout is not None:
            import aiohttp

            client = dict(opts.get("client_kwargs") or {})
            client.setdefault(
                "timeout", aiohttp.ClientTimeout(total=None, sock_connect=timeout, sock_read=timeout)
            )
            opts["client_kwargs"] = client
    return opts


#: s3fs options under which an anonymous read is a plain HTTP GET (skycut's own ``config_kwargs`` included).
_PLAIN_S3_OPTIONS = frozenset(
    {"anon", "endpoint_url", "client_kwargs", "default_block_size", "config_kwargs", "use_ssl"}
)
_PLAIN_S3_CLIENT = frozenset({"endpoint_url", "region_name"})
_PLAIN_S3_CONFIG = frozenset({"max_pool_connections", "retries", "connect_timeout", "read_timeout"})
_DNS_BUCKET = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")


def public_s3_url(uri: str, fsspec_kwargs: dict[str, Any] | None = None) -> str | None:
    """Return the plain ``http(s)://`` URL of an anonymous ``s3://`` object, or None when reading it needs s3fs.

    An anonymous GET of a public object (MAST's ``stpubdata``) is the same HTTP request whether botocore or
    aiohttp makes it; botocore costs about 1 ms of CPU per request on top (request building, user agent, event
    hooks, response parsing), which for a batch of hundreds of ranged reads is most of the client's CPU (40
    targets of 15 x 15 at 1,500 cadences, 138 requests: 0.6 s of CPU through s3fs against 0.3 s through fsspec's
    HTTP filesystem, measured in ``benchmarks/case_remote_cube.py``). So byte-range reads of anonymous objects go
    through :class:`fsspec.implementations.http.HTTPFileSystem` at this URL:

    * with an endpoint (``endpoint_url``, ``client_kwargs["endpoint_url"]``, or botocore's
      ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``): ``{endpoint}/{bucket}/{key}`` (path style, as botocore
      addresses a custom endpoint);
    * on AWS: ``https://{bucket}.s3.amazonaws.com/{key}`` (``s3.{region}`` with ``client_kwargs["region_name"]``;
      ``http`` with ``use_ssl=False``), for bucket names valid as host names.

    None (s3fs reads it) when any credential or other s3fs option is given (``requester_pays``,
    ``version_aware``, ``s3_additional_kwargs``, a ``session``, ``config_kwargs`` beyond timeouts and the pool,
    ...), or the bucket name has dots or capitals.
    """
    import os
    from urllib.parse import quote

    if protocol(uri) not in _S3_PROTOCOLS:
        return None
    opts = storage_options(uri, fsspec_kwargs)
    if opts.get("anon") is not True or not set(opts) <= _PLAIN_S3_OPTIONS | _GENERIC_OPTIONS:
        return None
    client = opts.get("client_kwargs") or {}
    if not set(client) <= _PLAIN_S3_CLIENT or not set(opts.get("config_kwargs") or {}) <= _PLAIN_S3_CONFIG:
        return None
    bucket, _, key = uri.split("://", 1)[1].partition("/")
    if not bucket or not key:
        return None
    endpoint = (
        opts.get("endpoint_url")
        or client.get("endpoint_url")
        or os.environ.get("AWS_ENDPOINT_URL_S3")
        or os.environ.get("AWS_ENDPOINT_URL")
    )
    path = quote(key, safe="/~")
    if endpoint:
        if protocol(str(endpoint)) not in _HTTP_PROTOCOLS:
            return None  # not an http(s) endpoint: s3fs reads it (and botocore names what is wrong with it)
        return f"{str(endpoint).rstrip('/')}/{quote(bucket)}/{path}"
    if not _DNS_BUCKET.match(bucket):
        return None
    scheme = "http" if opts.get("use_ssl") is False else "https"
    region = client.get("region_name")
    host = f"{bucket}.s3.{region}.amazonaws.com" if region else f"{bucket}.s3.amazonaws.com"
    return f"{scheme}://{host}/{path}"


def _shown(opts: dict[str, Any]) -> dict[str, Any]:
    return {k: ("***" if k in _SECRET_KEYS else v) for k, v in opts.items()}


def filesystem(
    uri: str, fsspec_kwargs: dict[str, Any] | None = None, *, what: str = "remote file"
) -> tuple[Any, str]:
    """Return ``(fsspec filesystem, path in it)`` for ``uri`` with the options :func:`storage_options` gives.

    fsspec caches filesystem instances per option set, so repeated calls share one filesystem (and its
    connection pool).

    Raises
    ------
    InvalidInputError
        The options are refused (unknown protocol, bad option value, missing backend); the message names
        ``uri``.
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


_STATUS_TEXT = {
    400: "bad request",
    401: "not authorised",
    403: "access denied",
    404: "not found",
    416: "range not satisfiable",
    429: "too many requests",
    500: "server error",
    502: "bad gateway",
    503: "service unavailable",
    504: "gateway timeout",
}


def describe_error(exc: BaseException) -> str:
    """Return a short cause for a failed remote access, e.g. ``"not found (HTTP 404)"`` or ``"connection refused"``.

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
        wrapped = (
            (getattr(e, "kwargs", None) or {}).get("error")
            if isinstance(getattr(e, "kwargs", None), dict)
            else None
        )
        for candidate in (
            e,
            os_error,
            *(_exception_chain(wrapped) if isinstance(wrapped, BaseException) else ()),
        ):
            candidate = getattr(candidate, "os_error", None) or candidate
            if isinstance(candidate, ConnectionRefusedError) or (
                isinstance(candidate, OSError) and candidate.errno == errno.ECONNREFUSED
            ):
                return f"connection refused ({e})"
        name = type(e).__name__
        if name in (
            "ClientConnectorError",
            "EndpointConnectionError",
            "ServerDisconnectedError",
            "ClientOSError",
            "ConnectionClosedError",
        ):
            return f"cannot connect ({e})"
        if isinstance(e, TimeoutError) or name in (
            "FSTimeoutError",
            "ReadTimeoutError",
            "ServerTimeoutError",
            "ConnectTimeoutError",
        ):
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
    """Return an :class:`InvalidInputError` ``"cannot read <what> <uri>: <cause>"`` for a failed access to ``uri``.

    ``exc`` itself is returned when it is already an :class:`InvalidInputError` naming ``uri``.
    """
    if isinstance(exc, InvalidInputError) and uri in str(exc):
        return exc
    return InvalidInputError(f"cannot read {what} {uri!r}: {describe_error(exc)}")


def truncated_error(name: str, expected: int, found: int, *, what: str = "FITS file") -> InvalidInputError:
    """Return the error for a file shorter than its headers say: names the file, expected and found sizes in bytes."""
    return InvalidInputError(
        f"{what} {name!r} is truncated: its headers need {expected} bytes, the file has {found}"
    )


def range_unsatisfiable(exc: BaseException) -> bool:
    """Return True when ``exc`` says a byte range starts beyond the end of the file (HTTP 416, S3 InvalidRange)."""
    for e in _exception_chain(exc):
        if getattr(e, "status", None) == 416 or "InvalidRange" in str(e) or "416" in type(e).__name__:
            return True
        response = getattr(e, "response", None)
        if isinstance(response, dict) and (
            response.get("Error", {}).get("Code") == "InvalidRange"
            or response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 416
        ):
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
        """Refuse ``attempts < 1`` and negative backoffs with :class:`InvalidInputError`."""
        if self.attempts < 1 or self.backoff < 0 or self.max_backoff < 0:
            raise InvalidInputError(
                f"bad retry policy {self}: attempts >= 1 and non-negative backoffs needed"
            )

    def delay(self, retry: int) -> float:
        """Return the seconds to wait before retry number ``retry`` (0 for the first retry)."""
        return min(self.max_backoff, self.backoff * 2.0**retry)


#: The retry policy of every remote read unless a :class:`RemoteFile` is given another.
DEFAULT_RETRY = RetryPolicy()

_RETRY_S3_CODES = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "RequestTimeout",
        "InternalError",
        "ServiceUnavailable",
        "RequestTimeTooSkewed",
    }
)
_DROPPED = (
    "ServerDisconnectedError",
    "ClientPayloadError",
    "ClientOSError",
    "ServerTimeoutError",
    "ReadTimeoutError",
    "ConnectTimeoutError",
    "ConnectionClosedError",
    "ResponseStreamingError",
    "IncompleteRead",
    "IncompleteReadError",
    "FSTimeoutError",
    "ContentLengthError",
    "TransferEncodingError",
)


def retryable(exc: BaseException) -> bool:
    """Return True when ``exc`` (or its chain) is a transient failure worth retrying (see :class:`RetryPolicy`)."""
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
        if isinstance(e, ConnectionRefusedError) or (
            isinstance(e, OSError) and e.errno == errno.ECONNREFUSED
        ):
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
