"""Byte sources of local and remote files: :func:`open_source`, the local file, and the names of its siblings.

:func:`open_source` gives a byte source with ``size``, ``read(start, end)`` and ``read_ranges(ranges)``:
:class:`LocalFile` (``os.pread``) for a local path, or :class:`skycut.core.remote_file.RemoteFile` for a URI (its
ranges in flight at once on fsspec's event loop, retried and counted; the file's start and size in one round
trip; bytes fetched ahead kept and served from memory; a buffered file object for astropy and asdf). FITS images
are opened on top of these sources by :mod:`skycut.core.fits_open`, and the ASDF reader
(:mod:`skycut.image.asdf_io`) and the cube reader (:mod:`skycut.tess.cube_reader`) use them too.

:class:`RemoteFile`, :func:`merge_range_groups` and :data:`MAX_MERGED_BYTES` are defined in
:mod:`skycut.core.remote_file` and :mod:`skycut.core.range_merge` and re-exported here (they were defined here
before the split); the dependency goes one way, from this module to those.
"""

from __future__ import annotations

import os
from typing import Any

from ..exceptions import InvalidInputError
from .range_merge import MAX_MERGED_BYTES as MAX_MERGED_BYTES  # re-exported: defined here before the split
from .range_merge import merge_range_groups as merge_range_groups  # re-exported, as above
from .remote import is_remote
from .remote_file import RemoteFile  # open_source's remote source; re-exported, as above


class LocalFile:
    """A local file read with ``os.pread``: the local twin of :class:`RemoteFile` (same methods, counters).

    Parameters
    ----------
    path : str or os.PathLike
        The file, opened read-only at once.
    what : str
        What the file is, for error messages.

    Raises
    ------
    InvalidInputError
        The file cannot be opened; the message names ``what`` and the path.
    """

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
        """Return bytes ``[start, end)`` (``end=None``: to the end of the file).

        ``exact=False`` allows a short read at the end of the file; otherwise a short read raises
        :class:`InvalidInputError`.
        """
        stop = self.size if end is None else end
        blob = os.pread(self._fd, max(0, stop - start), start)
        self.requests += 1
        self.bytes_read += len(blob)
        if exact and end is not None and len(blob) != end - start:
            raise InvalidInputError(
                f"short read from {self.path!r}: wanted bytes {start}-{end}, got {len(blob)}"
            )
        return blob

    def read_ranges(self, ranges: list[tuple[int, int]], max_in_flight: int | None = None) -> list[bytes]:
        """Return the bytes of every ``(start, end)`` range, in order (``max_in_flight`` is ignored)."""
        return [self.read(a, b) for a, b in ranges]

    def cached(self, start: int, end: int) -> bytes:
        """Return ``b""``: a local file keeps nothing (reading it again is as cheap); see :meth:`RemoteFile.cached`."""
        return b""

    def keep(self, start: int, blob: bytes) -> None:
        """Do nothing (see :meth:`RemoteFile.keep`)."""

    def close(self) -> None:
        """Close the file descriptor (a second call does nothing)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> LocalFile:
        """Return the file itself."""
        return self

    def __exit__(self, *exc) -> None:
        """Close the file."""
        self.close()


def open_source(
    path: str | os.PathLike,
    fsspec_kwargs: dict[str, Any] | None = None,
    *,
    what: str = "file",
    max_in_flight: int | None = None,
) -> LocalFile | RemoteFile:
    """Return a byte source for ``path``: :class:`RemoteFile` for a URI, :class:`LocalFile` for a local path.

    ``what`` names the input in errors (``"cube"`` gives ``"cannot read remote cube ..."`` for a URI).
    """
    if is_remote(path):
        return RemoteFile(path, fsspec_kwargs, what=f"remote {what}", max_in_flight=max_in_flight)
    return LocalFile(path, what=what)
