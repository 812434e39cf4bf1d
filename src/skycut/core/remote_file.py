"""Ranged reads of one remote file on fsspec's event loop: many ranges in flight at once, retried and counted.

:class:`RemoteFile` is the remote byte source that :func:`skycut.core.byte_sources.open_source` gives for a URI
(``size``, ``read(start, end)``, ``read_ranges(ranges)``, like :class:`skycut.core.byte_sources.LocalFile`). For
the asynchronous filesystems (s3fs, HTTP) the ranges of a batch go out together, one concurrent request per range
on fsspec's event loop over the filesystem's pooled connections (filesystem instances are cached per option set,
so every file of a batch shares them); a filesystem without an asynchronous implementation is read one range
after another. No thread pool of skycut's own. The options, errors and retry policy of remote reads come from :mod:`skycut.core.remote`;
every retry is logged at warning level by this module's logger. :meth:`RemoteFile.iter_range_groups` yields
groups of ranges as each completes, optionally fetched by the plan of
:func:`skycut.core.range_merge.merge_range_groups`.

A remote file's first bytes and its size come in one round trip (:meth:`RemoteFile.read_head`: the ranged read
and the size lookup in flight together), and bytes a reader fetched ahead (the head, an index, block headers) can
be kept (:meth:`RemoteFile.keep`): later reads inside them, including those of the buffered file object given to
astropy or asdf (:meth:`RemoteFile.open`, over the raw :class:`_RangeReader`), are answered from memory without a
request.

fsspec and its filesystems are imported on first use, not with this module.
"""

from __future__ import annotations

import contextlib
import io
import logging
import threading
from typing import TYPE_CHECKING, Any

from ..exceptions import InvalidInputError
from . import remote
from .range_merge import merge_range_groups
from .remote import (
    DEFAULT_BLOCK_SIZE,
    RetryPolicy,
    describe_error,
    filesystem,
    public_s3_url,
    range_unsatisfiable,
    remote_error,
    retryable,
)

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Iterator

log = logging.getLogger(__name__)


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

    Bytes handed to :meth:`keep` (or fetched by :meth:`read_head`) answer later reads that lie inside them: such a
    read makes no request and is not counted.
    """

    remote = True

    def __init__(
        self,
        uri: str,
        fsspec_kwargs: dict[str, Any] | None = None,
        *,
        what: str = "remote file",
        max_in_flight: int | None = None,
        retry: RetryPolicy | None = None,
    ):
        self.uri = uri
        self.what = what
        self.max_in_flight = max_in_flight
        self.retry = (
            retry or remote.DEFAULT_RETRY
        )  # looked up at each call: the module default may be replaced
        # an anonymous s3:// object is read with plain HTTP GETs (see public_s3_url); errors still name ``uri``
        plain = public_s3_url(uri, fsspec_kwargs)
        self.fs, self.path = filesystem(plain or uri, fsspec_kwargs, what=what)
        block = (fsspec_kwargs or {}).get("block_size")
        self.block_size = int(block) if isinstance(block, int) and block > 0 else DEFAULT_BLOCK_SIZE
        self._async = bool(getattr(self.fs, "async_impl", False))
        self._size: int | None = None
        self._lock = threading.Lock()
        self._kept: list[tuple[int, bytes]] = []  # (start, bytes) fetched ahead and kept: see keep()
        self.requests = 0
        self.retries = 0
        self.bytes_read = 0

    def error(self, exc: BaseException) -> InvalidInputError:
        """Return the error to raise for a failed access (names the URI and the cause)."""
        return remote_error(self.uri, exc, what=self.what)

    def _count(self, n_requests: int, n_bytes: int, n_retries: int = 0) -> None:
        with self._lock:
            self.requests += n_requests
            self.bytes_read += n_bytes
            self.retries += n_retries

    def _give_up_or_wait(self, exc: BaseException, attempt: int, what: str) -> float:
        """Return the seconds to wait before retrying after ``exc`` on attempt ``attempt`` (0-based).

        Re-raises ``exc`` when it is not transient or the attempts are used up.
        """
        if not retryable(exc) or attempt + 1 >= self.retry.attempts:
            if attempt:
                log.warning(
                    "%s %s: giving up after %d attempts: %s", self.uri, what, attempt + 1, describe_error(exc)
                )
            raise exc
        wait = self.retry.delay(attempt)
        log.warning(
            "%s %s: %s; retry %d of %d in %.2f s",
            self.uri,
            what,
            describe_error(exc),
            attempt + 1,
            self.retry.attempts - 1,
            wait,
        )
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
        """Call ``call()`` with the retry policy, for filesystems without an asynchronous implementation."""
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

    def keep(self, start: int, blob: bytes) -> None:
        """Keep ``blob``, the bytes of the file from ``start`` on, to answer later reads inside it."""
        if blob:
            with self._lock:
                self._kept.append((int(start), bytes(blob)))

    def cached(self, start: int, end: int) -> bytes:
        """Return the longest run of bytes ``[start, ...)``, up to ``end``, held by one kept blob (``b""`` if none)."""
        best = b""
        for first, blob in self._kept:
            if first <= start < first + len(blob):
                run = blob[start - first : end - first]
                if len(run) > len(best):
                    best = run
        return best

    def _from_kept(self, start: int, end: int | None) -> bytes | None:
        """Return bytes ``[start, end)`` (``end=None``: to the end of the file) if kept bytes hold them all."""
        if not self._kept:
            return None
        if end is None:
            if self._size is None:
                return None
            end = self._size
        if self._size is not None:
            end = min(end, self._size)
        if end <= start:
            return None
        blob = self.cached(start, end)
        return blob if len(blob) == end - start else None

    def read_head(self, nbytes: int | None = None) -> bytes:
        """Return the first ``nbytes`` of the file (fewer if it is shorter) and learn its size, in one round trip.

        The ranged read and the size lookup are in flight together (one after the other for a filesystem without
        an asynchronous implementation). The bytes are kept (:meth:`keep`), so parsers reading the start of the
        file again make no request; :attr:`size` is known afterwards.

        Parameters
        ----------
        nbytes : int, optional
            How many bytes to read (default :attr:`block_size`: the user's ``block_size``, else
            :data:`skycut.core.remote.DEFAULT_BLOCK_SIZE`).

        Returns
        -------
        bytes
            ``[0, min(nbytes, size))``.

        Raises
        ------
        InvalidInputError
            Either request failed for good; the message names the URI and the cause.
        """
        n = int(nbytes or self.block_size)
        if not self._async:
            blob = self.read(0, min(n, self.size)) if self.size else b""
            self.keep(0, blob)
            return blob
        import asyncio

        async def both() -> list[Any]:
            return await asyncio.gather(
                self._cat(0, n),
                self._attempts(lambda: self.fs._size(self.path), "size"),
                return_exceptions=True,
            )

        blob, size = self._run(both())
        if isinstance(blob, BaseException) and not (
            range_unsatisfiable(blob) and not isinstance(size, BaseException) and not size
        ):
            raise self.error(blob) from blob
        if isinstance(size, BaseException):
            raise self.error(size) from size
        blob = b"" if isinstance(blob, BaseException) else blob
        self._size = int(size)
        self._count(0, len(blob))
        if len(blob) != min(n, self._size):
            raise InvalidInputError(
                f"short read from {self.uri!r}: wanted bytes 0-{min(n, self._size)}, got {len(blob)}"
            )
        self.keep(0, blob)
        return blob

    def _cat_sync(self, start: int, end: int | None) -> bytes:
        return bytes(
            self._attempts_sync(
                lambda: self.fs.cat_file(self.path, start=start, end=end),
                f"bytes {start}-{'' if end is None else end}",
            )
        )

    async def _cat(self, start: int, end: int | None) -> bytes:
        blob = await self._attempts(
            lambda: self.fs._cat_file(self.path, start=start, end=end),
            f"bytes {start}-{'' if end is None else end}",
        )
        return bytes(blob)

    def read(self, start: int, end: int | None = None, *, exact: bool = True) -> bytes:
        """Return bytes ``[start, end)``; ``end=None`` reads to the end of the file in the same request.

        With ``exact=False`` a range running past the end of the file gives the bytes there are (``b""`` when it
        starts past the end) instead of an error. Bytes held by kept blobs (:meth:`keep`) are returned without a
        request.
        """
        kept = self._from_kept(start, end)
        if kept is not None and (not exact or end is None or len(kept) == end - start):
            return kept
        try:
            blob = self._run(self._cat(start, end)) if self._async else self._cat_sync(start, end)
        except Exception as exc:
            if not exact and range_unsatisfiable(exc):
                return b""
            raise self.error(exc) from exc
        self._count(0, len(blob))
        if exact and end is not None and len(blob) != end - start:
            raise InvalidInputError(
                f"short read from {self.uri!r}: wanted bytes {start}-{end}, got {len(blob)}"
            )
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
        """Return the bytes of every ``(start, end)`` range, in order, all requested concurrently.

        At most ``max_in_flight`` (default: the file's ``max_in_flight``; None: all of them, up to the
        filesystem's connection pool) requests are in flight at once; each is retried on its own. Any range that
        fails for good, or comes back short, raises :class:`InvalidInputError` naming the URI. Ranges held by kept
        blobs (:meth:`keep`) are answered without a request.
        """
        if not ranges:
            return []
        starts_ends = [(int(a), int(b)) for a, b in ranges]
        kept = [self._from_kept(a, b) for a, b in starts_ends]
        kept = [
            k if k is not None and len(k) == b - a else None
            for k, (a, b) in zip(kept, starts_ends, strict=True)
        ]
        wanted = [r for r, k in zip(starts_ends, kept, strict=True) if k is None]
        bound = max_in_flight or self.max_in_flight
        if not wanted:
            blobs: list[Any] = []
        elif self._async:
            blobs = self._run(self._gather(wanted, bound))
        else:
            blobs = []
            for a, b in wanted:
                try:
                    blobs.append(self._cat_sync(a, b))
                except Exception as exc:  # noqa: BLE001 - reported below like an async failure
                    blobs.append(exc)
        checked = self._checked(wanted, blobs)
        if isinstance(checked, InvalidInputError):
            raise checked
        fetched = iter(checked)
        return [k if k is not None else next(fetched) for k in kept]

    def iter_range_groups(
        self, groups: list[list[tuple[int, int]]], max_in_flight: int | None = None, *, merge: bool = False
    ) -> Iterator[tuple[int, list[bytes] | InvalidInputError]]:
        """Fetch every range of every group concurrently; yield ``(group index, blobs)`` as each group completes.

        All requests go out together on fsspec's event loop (at most ``max_in_flight`` at once, default the file's
        ``max_in_flight``; requests start in group order, so the first groups tend to complete first), and the
        caller works on a completed group while the others are still arriving. A group with a range that fails
        for good (or comes back short) yields an :class:`InvalidInputError` naming the URI instead of its blobs;
        the other groups are unaffected. Leaving the iteration early cancels the requests not yet made.

        ``merge=True`` requests the plan of :func:`merge_range_groups` instead: ranges that overlap or touch
        (across groups too) are one request, the gaps between them filled while no more bytes are fetched than
        the ranges ask for, and each group's blobs are views into the larger blobs. A group completes when every
        request holding one of its ranges has arrived; a request failing fails every group that needs it.
        """
        if merge:
            yield from self._iter_merged_groups(groups, max_in_flight)
            return
        fetch = [(int(a), int(b)) for group in groups for a, b in group]
        needs, start = [], 0
        for group in groups:
            needs.append(list(range(start, start + len(group))))
            start += len(group)
        for i, got in self._iter_shared(fetch, needs, max_in_flight):
            yield i, self._checked(groups[i], [got[j] for j in needs[i]], count=False)

    def _iter_merged_groups(
        self, groups: list[list[tuple[int, int]]], max_in_flight: int | None
    ) -> Iterator[tuple[int, list[bytes] | InvalidInputError]]:
        """:meth:`iter_range_groups` with ``merge=True``."""
        fetch, pieces = merge_range_groups(groups)
        needs = [sorted({j for j, _, _ in out if j >= 0}) for out in pieces]
        for i, got in self._iter_shared(fetch, needs, max_in_flight):
            blobs: list[Any] = []
            for j, off, n in pieces[i]:
                blob = got[j] if j >= 0 else b""
                blobs.append(blob if isinstance(blob, BaseException) else memoryview(blob)[off : off + n])
            yield i, self._checked(groups[i], blobs, count=False)

    def _iter_shared(
        self, fetch: list[tuple[int, int]], needs: list[list[int]], max_in_flight: int | None
    ) -> Iterator[tuple[int, dict[int, Any]]]:
        """Fetch each range of ``fetch`` once; yield ``(group, {range index: blob or exception})`` per group.

        Group ``i`` needs the ranges ``needs[i]`` and is yielded as soon as they have all arrived (requests go out
        in ``fetch`` order). Every blob is counted once in ``bytes_read``.
        """
        if not self._async:
            last = {j: i for i, js in enumerate(needs) for j in js}
            cache: dict[int, Any] = {}
            for i, js in enumerate(needs):
                for j in js:
                    if j not in cache:
                        try:
                            cache[j] = self._cat_sync(*fetch[j])
                            self._count(0, len(cache[j]))
                        except Exception as exc:  # noqa: BLE001 - reported by the caller like an async failure
                            cache[j] = exc
                yield i, {j: cache[j] for j in js}
                for j in js:
                    if last[j] == i:
                        del cache[j]
            return
        import asyncio
        import queue

        bound = max_in_flight or self.max_in_flight
        done: queue.Queue = queue.Queue()

        async def fetch_all() -> None:
            gate = asyncio.Semaphore(bound) if bound else contextlib.nullcontext()

            async def one(a: int, b: int) -> bytes:
                async with gate:
                    blob = await self._cat(a, b)
                self._count(0, len(blob))
                return blob

            tasks = [asyncio.ensure_future(one(a, b)) for a, b in fetch]  # started in this order

            async def group(i: int, js: list[int]) -> None:
                blobs = await asyncio.gather(*(tasks[j] for j in js), return_exceptions=True)
                done.put((i, dict(zip(js, blobs, strict=True))))

            try:
                await asyncio.gather(*(group(i, js) for i, js in enumerate(needs)))
            finally:
                for task in tasks:
                    task.cancel()

        future = asyncio.run_coroutine_threadsafe(fetch_all(), self.fs.loop)
        try:
            for _ in needs:
                while True:
                    try:
                        item = done.get(timeout=0.2)
                        break
                    except queue.Empty:
                        if not future.done():
                            continue
                    try:  # every group was queued before the gathering ended
                        item = done.get_nowait()
                        break
                    except queue.Empty:
                        future.result()  # raises what broke the gathering
                        raise InvalidInputError(
                            f"cannot read {self.what} {self.uri!r}: requests lost"
                        ) from None
                yield item
        finally:
            future.cancel()

    def _checked(
        self, ranges: list[tuple[int, int]], blobs: list[Any], *, count: bool = True
    ) -> list[bytes] | InvalidInputError:
        """Return ``blobs`` if every one is the full range asked for, else the error naming the URI.

        Counts the bytes received either way (unless ``count`` is false: the caller counted them).
        """
        if count:
            self._count(0, sum(len(x) for x in blobs if not isinstance(x, BaseException)))
        for (a, b), blob in zip(ranges, blobs, strict=True):
            if isinstance(blob, BaseException):
                err = self.error(blob)
                if err is not blob:
                    err.__cause__ = blob
                return err
            if len(blob) != b - a:
                return InvalidInputError(
                    f"short read from {self.uri!r}: wanted bytes {a}-{b}, got {len(blob)}"
                )
        return blobs

    def open(self, compression: str | None = None) -> io.BufferedIOBase:
        """Return a seekable, buffered binary file reading through this source.

        For parsers such as astropy and asdf.

        Every buffer fill is one :meth:`read` (so retried, timed and counted like the other reads), of
        ``block_size`` bytes (the user's ``block_size``, default :data:`DEFAULT_BLOCK_SIZE`), unless kept bytes
        (:meth:`keep`) hold the position: then the fill is what they hold from there, without a request.
        ``compression`` (``"gzip"`` or ``"bz2"``) gives the decompressed stream of a file compressed as a whole.
        """
        fileobj: io.BufferedIOBase = io.BufferedReader(_RangeReader(self), buffer_size=self.block_size)
        if compression == "gzip":
            import gzip

            return gzip.GzipFile(fileobj=fileobj, mode="rb")
        if compression == "bz2":
            import bz2

            return bz2.BZ2File(fileobj, mode="rb")
        if compression is not None:
            raise InvalidInputError(
                f"cannot read {self.what} {self.uri!r}: unknown compression {compression!r}"
            )
        return fileobj

    def close(self) -> None:
        """Release nothing: connections belong to the (shared) filesystem's pool."""

    def __enter__(self) -> RemoteFile:
        """Return the file itself."""
        return self

    def __exit__(self, *exc) -> None:
        """Close the file (nothing to release)."""
        self.close()


class _RangeReader(io.RawIOBase):
    """The raw, seekable file of a :class:`RemoteFile`: every ``readinto`` is one ranged read at the position."""

    def __init__(self, source: RemoteFile):
        super().__init__()
        self._source = source
        self._pos = 0
        self._last: tuple[int, bytes] = (0, b"")  # the last block fetched: parsers seek back into it
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
        size = self._source._size  # known once anything asked for it (astropy seeks to the end first)
        if size is not None and self._pos >= size:
            return 0
        start, cached = self._last
        # bytes the source keeps may run out before the buffer is full: a short read is allowed
        kept = self._source.cached(self._pos, self._pos + len(view))
        if kept:
            blob = kept
        elif start <= self._pos and self._pos + len(view) <= start + len(cached):
            blob = cached[self._pos - start : self._pos - start + len(view)]
        else:
            blob = self._source.read(self._pos, self._pos + len(view), exact=False)
            self._last = (self._pos, bytes(blob))
        view[: len(blob)] = blob
        self._pos += len(blob)
        return len(blob)
