"""Open TESS cubes (local files, ``s3://`` or ``https://``) and read pixel blocks with as few bytes as possible.

Cube layout (astrocut's and skycut's, see ``astrocut-formats.md`` §a): HDU 0 primary header, HDU 1 a 4-D image of
numpy shape ``(nrows, ncols, ntime, 2)`` (big-endian float32, float64 after astrocut's ``update_cube``) holding
``[..., 0]`` flux and ``[..., 1]`` uncertainty, HDU 2 a binary table with one row per FFI (time order).

For one cube row ``y`` and columns ``x0:x1`` the ``(x1 - x0) * ntime * 2`` values are contiguous, so a cutout of
rows ``y0:y1`` is ``y1 - y0`` byte runs (one run when the cutout spans every column). :func:`byte_runs` computes
and merges them; :class:`CubeReader` fetches them with ``np.memmap`` locally or, remotely, as concurrent ranged
reads of a :class:`skycut.core.remote_file.RemoteFile` (all runs of all blocks of a batch in flight together, each
block handed on as soon as its runs have arrived).
Headers are parsed here without astropy, so opening a cube is cheap: a remote cube's headers and FFI table take
two requests (the first blocks, then everything after the image data), no size lookup.

Pixel conventions: 0-based, ``x`` = CCD column (cube axis 1), ``y`` = CCD row (cube axis 0).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from ..core.byte_sources import open_source
from ..core.fits_bytes import BITPIX_DTYPES, BLOCK, RawHeader, padded, parse_table
from ..core.remote import is_remote, truncated_error
from ..exceptions import InvalidInputError

log = logging.getLogger(__name__)

# ------------------------------------------------------------------------------------------ byte runs


def byte_runs(
    lims: Sequence[Sequence[int]], cube_shape: tuple[int, int, int, int], itemsize: int, data_offset: int
) -> list[tuple[int, int]]:
    """File byte ranges ``[(start, end), ...]`` holding the cube pixels ``rows y0:y1 x cols x0:x1``.

    ``lims`` is ``[[x0, x1], [y0, y1]]`` already clipped to the cube. One run per row, adjacent runs merged (which
    happens when the cutout spans every column), so the count is the minimum the layout allows.
    """
    (x0, x1), (y0, y1) = lims
    nrows, ncols, ntime, nplanes = cube_shape
    pixel = ntime * nplanes * itemsize
    runs: list[tuple[int, int]] = []
    for y in range(y0, y1):
        start = data_offset + (y * ncols + x0) * pixel
        end = start + (x1 - x0) * pixel
        if runs and runs[-1][1] == start:
            runs[-1] = (runs[-1][0], end)
        else:
            runs.append((start, end))
    return runs


def resolve_threads(threads: int | str | None) -> int:
    """``"auto"`` -> a thread count suited to I/O-bound ranged reads; ints are clamped to at least 1."""
    if threads is None:
        return 1
    if isinstance(threads, str):
        if threads != "auto":
            raise InvalidInputError(f"threads must be an int or 'auto', got {threads!r}")
        return min(32, (os.cpu_count() or 1) * 4 + 4)
    if not isinstance(threads, (int, np.integer)) or isinstance(threads, bool):
        raise InvalidInputError(f"threads must be an int or 'auto', got {threads!r}")
    return max(1, int(threads))


# ------------------------------------------------------------------------------------------ the reader


class CubeReader:
    """An opened cube: headers and the FFI table read once; pixel blocks read on demand.

    Parameters
    ----------
    path : str or path-like
        Local path, ``s3://bucket/key`` or ``http(s)://...`` URL.
    fsspec_kwargs : dict, optional
        Options for remote cubes (see :func:`skycut.core.remote.storage_options`: ``anon`` defaults to True for
        s3; options that do not apply to the URI's protocol are ignored).
    threads : int or "auto"
        Most ranged requests in flight at once for remote cubes (ignored locally, where a memmap is fastest);
        ``"auto"``: no bound but the filesystem's connection pool, so every row request of a batch is in flight
        as soon as a connection is free.

    Attributes
    ----------
    primary : RawHeader
        Cube primary header.
    shape : tuple
        Numpy shape of the cube image ``(nrows, ncols, ntime, nplanes)``.
    table : dict[str, ndarray]
        FFI table columns, one entry per FFI (time order).
    """

    def __init__(self, path: str | os.PathLike, *, fsspec_kwargs: dict | None = None, threads: int | str = 1):
        self.path = path if is_remote(path) else os.fspath(path)
        self.name = str(self.path)
        self.threads = resolve_threads(threads)
        self.remote = is_remote(self.path)
        self._src = open_source(
            self.path, fsspec_kwargs, what="cube", max_in_flight=None if threads == "auto" else self.threads
        )
        try:
            self._open()
        except InvalidInputError:
            self.close()
            raise
        except Exception as exc:
            self.close()
            raise InvalidInputError(f"{self.name!r} is not a readable cube file: {exc}") from exc

    # -- opening
    def _header_at(self, offset: int, blob: bytes = b"") -> RawHeader:
        """Parse the header at ``offset``; ``blob`` holds bytes already read from there (read on as needed)."""
        hdr = RawHeader.parse(blob, offset) if blob else None
        while hdr is None:
            more = self._src.read(offset + len(blob), offset + len(blob) + BLOCK, exact=False)
            if not more:
                # the file ends inside this header (at offset + len(blob): the read there gave nothing)
                raise truncated_error(self.name, offset + len(blob) + BLOCK, offset + len(blob), what="cube")
            blob += more
            hdr = RawHeader.parse(blob, offset)
        return hdr

    def _open(self) -> None:
        # the first two blocks hold both headers of a typical cube (one request); read on if they do not
        first = self._src.read(0, 2 * BLOCK, exact=False)
        self.primary = self._header_at(0, first)
        if self.primary.values.get("SIMPLE") is not True:
            raise InvalidInputError(f"{self.name!r} is not a FITS file")
        pos = self.primary.nbytes + padded(self.primary.data_nbytes())
        self.image_header = self._header_at(pos, first[pos:])
        iv = self.image_header.values
        if iv.get("XTENSION") != "IMAGE" or iv.get("NAXIS") != 4:
            raise InvalidInputError(
                f"{self.name!r} is not a TESS cube: HDU 1 must be a 4-D image (got XTENSION={iv.get('XTENSION')!r}, "
                f"NAXIS={iv.get('NAXIS')!r})"
            )
        self.shape = tuple(int(iv[f"NAXIS{i}"]) for i in (4, 3, 2, 1))
        if self.shape[3] < 2:
            raise InvalidInputError(
                f"{self.name!r}: cube has {self.shape[3]} plane(s); flux and uncertainty planes are needed"
            )
        self.dtype = np.dtype(BITPIX_DTYPES[int(iv["BITPIX"])])
        self.data_offset = pos + self.image_header.nbytes
        data_bytes = self.image_header.data_nbytes()
        table_pos = self.data_offset + padded(data_bytes)
        missing = InvalidInputError(f"{self.name!r}: the FFI table (HDU 2) is missing")
        if self.remote:
            # table header and table data are the rest of the file: fetch them in one request (no size lookup)
            blob = self._src.read(table_pos, None, exact=False)
            if not blob:
                self._check_size(self.data_offset + data_bytes)  # a cube cut short, or no table
                raise missing
            thdr = RawHeader.parse(blob, table_pos)
            if thdr is None:
                self._check_size(table_pos + len(blob) + 1)  # the file ends inside the table header
                raise InvalidInputError(f"{self.name!r}: cannot parse the FFI table header")
            tdata = blob[thdr.nbytes : thdr.nbytes + thdr.data_nbytes()]
            if len(tdata) < thdr.data_nbytes():
                raise truncated_error(
                    self.name,
                    table_pos + thdr.nbytes + thdr.data_nbytes(),
                    table_pos + len(blob),
                    what="cube",
                )
        else:
            self._check_size(self.data_offset + data_bytes)
            if table_pos >= self._src.size:
                raise missing
            thdr = self._header_at(table_pos)
            start = table_pos + thdr.nbytes
            self._check_size(start + thdr.data_nbytes())
            tdata = self._src.read(start, start + thdr.data_nbytes())
        if thdr.values.get("XTENSION") != "BINTABLE":
            raise InvalidInputError(f"{self.name!r}: HDU 2 is not the FFI binary table")
        self.table_header = thdr
        self.table = parse_table(thdr, tdata)
        self.ntime = self.shape[2]
        self._memmap: np.ndarray | None = None

    def _check_size(self, end: int) -> None:
        """Raise an error naming the cube if the file is shorter than ``end`` bytes (one size lookup remotely)."""
        if self._src.size < end:
            raise truncated_error(self.name, end, self._src.size, what="cube")

    # -- pixel access
    @property
    def nrows(self) -> int:
        """Number of CCD rows of the cube image (``shape[0]``)."""
        return self.shape[0]

    @property
    def ncols(self) -> int:
        """Number of CCD columns of the cube image (``shape[1]``)."""
        return self.shape[1]

    def memmap(self) -> np.ndarray:
        """Return the local cube image as a read-only ``np.memmap``, shape ``(nrows, ncols, ntime, nplanes)``.

        Raises
        ------
        InvalidInputError
            The cube is remote.
        """
        if self.remote:
            raise InvalidInputError(f"{self.name!r} is remote; it cannot be memory-mapped")
        if self._memmap is None:
            self._memmap = np.memmap(
                self.path, dtype=self.dtype, mode="r", offset=self.data_offset, shape=self.shape
            )
        return self._memmap

    def runs(self, clipped_lims) -> list[tuple[int, int]]:
        """Return the merged byte runs of a clipped ``[[x0, x1], [y0, y1]]`` block (see :func:`byte_runs`)."""
        return byte_runs(clipped_lims, self.shape, self.dtype.itemsize, self.data_offset)

    def iter_blocks(
        self, clipped: list, *, copy: bool = True, buffers: int = 1
    ) -> Iterator[tuple[int, np.ndarray | InvalidInputError]]:
        """Read several clipped blocks ``[[x0, x1], [y0, y1]]``; yield ``(index, block)`` as each is complete.

        A block is an array of shape ``(y1 - y0, x1 - x0, ntime, nplanes)`` in the cube's (big-endian) dtype, or,
        for a remote block whose bytes could not be read, the :class:`InvalidInputError` naming the cube and the
        cause (the other blocks are unaffected). Local blocks come in order from the memory map. Remote blocks: the
        byte runs of every block go out together (concurrent ranged requests on pooled connections, at most
        ``threads`` in flight unless ``"auto"``), and a block is yielded as soon as its own runs have arrived,
        so the caller can write it while the rest are still on the way. Runs of different blocks that overlap or
        touch (neighbouring targets) are fetched once, as one request, and the gaps between runs are filled
        while no more bytes are fetched than the blocks' runs one by one would
        (:func:`skycut.core.range_merge.merge_range_groups`): fewer requests and fewer bytes.

        Local blocks are copies out of the memory map, so cutouts never depend on the file mapping staying
        valid. ``copy=False`` is for a caller that is done with each block before it has asked for ``buffers``
        more: local blocks are views of the memory map (read once, by whoever consumes them: a TPF's table is
        filled from the page cache straight into its chunk buffer, see :func:`skycut.tess.tpf_table.write_table`),
        and remote blocks of one shape are assembled in ``buffers`` arrays in turn.
        """
        pools: dict[tuple[int, int], list[np.ndarray]] = {}
        turns: dict[tuple[int, int], int] = {}

        def buffer(ny: int, nx: int) -> np.ndarray:
            """Return a new block, or with ``copy=False`` the next of the ``buffers`` arrays of its shape."""
            if copy:
                return np.empty((ny, nx, *self.shape[2:]), self.dtype)
            pool = pools.setdefault((ny, nx), [])
            turn = turns.get((ny, nx), 0)
            turns[(ny, nx)] = turn + 1
            if len(pool) < max(1, buffers):
                pool.append(np.empty((ny, nx, *self.shape[2:]), self.dtype))
            return pool[turn % len(pool)]

        if not self.remote:
            mm = self.memmap()
            for i, ((x0, x1), (y0, y1)) in enumerate(clipped):
                yield i, np.array(mm[y0:y1, x0:x1]) if copy else mm[y0:y1, x0:x1]
            return
        all_runs = [self.runs(lims) for lims in clipped]
        for i, blobs in self._src.iter_range_groups(all_runs, merge=True):
            if isinstance(blobs, InvalidInputError):
                yield i, blobs
                continue
            (x0, x1), (y0, y1) = clipped[i]
            block = buffer(y1 - y0, x1 - x0)
            flat = block.reshape(-1).view(np.uint8)
            pos = 0
            for blob in blobs:
                flat[pos : pos + len(blob)] = np.frombuffer(blob, dtype=np.uint8)
                pos += len(blob)
            yield i, block

    def read_blocks(self, clipped: list) -> list[np.ndarray]:
        """Read several clipped blocks ``[[x0, x1], [y0, y1]]`` (see :meth:`iter_blocks`), in order.

        Raises the :class:`InvalidInputError` of the first block that cannot be read.
        """
        out: list[np.ndarray | None] = [None] * len(clipped)
        for i, block in self.iter_blocks(clipped):
            if isinstance(block, InvalidInputError):
                raise block
            out[i] = block
        return out

    @property
    def requests(self) -> int:
        """Number of read requests made so far (ranged GETs for remote cubes)."""
        return self._src.requests

    @property
    def bytes_read(self) -> int:
        """Bytes read through explicit reads (headers, table, remote pixel runs; not memmap page-ins)."""
        return self._src.bytes_read

    def close(self) -> None:
        """Drop the memory map and close the byte source."""
        self._memmap = None
        self._src.close()

    def __enter__(self) -> CubeReader:
        """Return the reader itself."""
        return self

    def __exit__(self, *exc) -> None:
        """Close the reader."""
        self.close()


def cube_stem(path: str | os.PathLike) -> str:
    """File stem used in TPF names: the base name without ``.fits`` and without a trailing ``-cube``.

    ``tess-s0011-1-1-cube.fits -> tess-s0011-1-1``; ``image-cube.fits -> image``; ``my.cube.fits -> my.cube``.
    """
    name = str(path).rstrip("/").rsplit("/", 1)[-1].split("?", 1)[0]
    stem = Path(name).stem if name.lower().endswith((".fits", ".fit", ".fts")) else name
    return stem[: -len("-cube")] if stem.endswith("-cube") and len(stem) > len("-cube") else stem
