"""Input and output machinery of :mod:`skycut.tess.cube_factory`: FFI scanning, row-range readers, scratch store.

Axis conventions: an FFI image is a numpy array ``(rows, columns)`` (FITS ``NAXIS2, NAXIS1``); a cube is
``(rows, columns, n_ffi, 2)`` with ``[..., 0]`` the calibrated flux (FFI ext 1) and ``[..., 1]`` its
uncertainty (FFI ext 2). A "row range" ``r0:r1`` is a range of image rows (numpy axis 0 of both).

Two ways of getting rows ``r0:r1`` of every FFI into a block of the cube:

* **direct** (:func:`read_rows`): for local, uncompressed, unscaled FFIs, one ``pread`` of the contiguous
  bytes of rows ``r0:r1`` of ext 1 and one of ext 2, at the data offsets astropy reports. No astropy per block,
  no mmap (mapped pages would count in the process's RSS).
* **scratch** (:class:`ScratchStore`): every FFI is read once, whole (through astropy, so remote ``s3://`` /
  ``https://`` inputs and tile-compressed HDUs work), and copied into an HDF5 scratch file with one chunk per
  (FFI, block of rows); blocks are then read back one chunk per FFI.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..core.byte_sources import open_source
from ..core.fits_bytes import BITPIX_DTYPES, BLOCK, CARD, CardError, RawHeader, card_parts, padded
from ..core.remote import is_remote, remote_error, storage_options, truncated_error
from ..exceptions import InvalidInputError
from .cube_table import header_record

log = logging.getLogger(__name__)


@dataclass
class FFIInfo:
    """What the cube builder needs to know about one FFI (compact: thousands of these stay in memory).

    ``primary_text`` is the primary header as FITS text; ``values``/``comments`` map the ext-1 header's
    keywords (commentary cards skipped, see :func:`skycut.tess.cube_table.header_record`) to values and comments.
    ``shape`` is the numpy shape ``(rows, columns)`` of ext 1; ``offsets`` the byte offsets of the data of ext 1
    and ext 2 when they can be read directly (``None`` otherwise); ``dtype`` their on-disk dtype.
    """

    path: str
    name: str
    primary_text: str
    values: dict
    comments: dict
    tstart: float
    shape: tuple[int, int]
    offsets: tuple[int, int] | None = None
    dtype: str = ">f4"
    sector: Any = None
    camera: Any = None
    ccd: Any = None
    extra: dict = field(default_factory=dict)

    @property
    def direct(self) -> bool:
        """True if the data of ext 1 and ext 2 can be read directly at :attr:`offsets`."""
        return self.offsets is not None


def _open(path: str, fsspec_kwargs: dict | None = None, **kwargs):
    """``fits.open`` of a local FFI (no memmap) or a remote one (fsspec, with the URI's storage options)."""
    from astropy.io import fits

    if not is_remote(path):
        return fits.open(path, memmap=False, **kwargs)
    try:
        return fits.open(path, use_fsspec=True, fsspec_kwargs=storage_options(path, fsspec_kwargs), **kwargs)
    except (OSError, TypeError, ValueError) as exc:  # not found, forbidden, unreachable, refused option
        raise remote_error(path, exc, what="remote FFI") from exc


_COMPRESSED_SUFFIXES = (".gz", ".bz2", ".zip")


def _check_complete(hdul, path: str, fsspec_kwargs: dict | None) -> None:
    """Raise an error naming the FFI if the file ends before the data of ext 2 do (a truncated file).

    Whole-file compressed inputs (gzip) are not checked: their offsets refer to the decompressed stream.
    """
    from astropy.io import fits

    if path.endswith(_COMPRESSED_SUFFIXES):
        return
    hdu = hdul[2]
    if isinstance(hdu, fits.CompImageHDU):  # the header describes the image, not the compressed table on disk
        return
    h = hdu.header
    axes = [int(h.get(f"NAXIS{i}", 0)) for i in range(1, int(h.get("NAXIS", 0)) + 1)]
    nbytes = (
        abs(int(h["BITPIX"]))
        // 8
        * int(h.get("GCOUNT", 1))
        * (int(h.get("PCOUNT", 0)) + (int(np.prod(axes, dtype=np.int64)) if axes else 0))
    )
    end = int(hdul.fileinfo(2)["datLoc"]) + nbytes
    if is_remote(path):
        with open_source(path, fsspec_kwargs, what="FFI") as source:
            size = source.size
    else:
        size = os.path.getsize(path)
    if size < end:
        raise truncated_error(path, end, size, what="FFI file")


def _direct_layout(hdul, path: str) -> tuple[tuple[int, int] | None, str]:
    """Return the data offsets of ext 1 and ext 2 if both are plain, unscaled images to ``pread``."""
    from astropy.io import fits

    if is_remote(path) or path.endswith(_COMPRESSED_SUFFIXES):  # no raw offsets in a compressed stream
        return None, ">f4"
    dtypes = []
    offsets = []
    for ext in (1, 2):
        hdu = hdul[ext]
        if type(hdu) is not fits.ImageHDU:
            return None, ">f4"
        h = hdu.header
        if h.get("BSCALE", 1) != 1 or h.get("BZERO", 0) != 0 or h.get("BLANK") is not None:
            return None, ">f4"
        dtype = BITPIX_DTYPES.get(h.get("BITPIX"))
        if dtype is None:
            return None, ">f4"
        dtypes.append(dtype)
        offsets.append(int(hdul.fileinfo(ext)["datLoc"]))
    if dtypes[0] != dtypes[1]:
        return None, ">f4"
    return (offsets[0], offsets[1]), dtypes[0]


class _Unusual(Exception):
    """A header the fast reader leaves to astropy (CONTINUE, HIERARCH, complex values, odd structure)."""


def _read_header(fd: int, offset: int, path: str) -> RawHeader:
    """Read the header at byte ``offset`` of the open file ``path``.

    Returns a :class:`skycut.core.fits_bytes.RawHeader`.
    """
    blob = b""
    while len(blob) < 20000 * CARD:
        chunk = os.pread(fd, 4 * BLOCK, offset + len(blob))
        if len(chunk) < BLOCK:
            if blob or chunk:  # the file ends inside a header
                raise truncated_error(
                    path, offset + len(blob) + BLOCK, offset + len(blob) + len(chunk), what="FFI file"
                )
            raise _Unusual("truncated header")
        blob += chunk[: len(chunk) // BLOCK * BLOCK]
        header = RawHeader.parse(blob, offset)
        if header is not None:
            if not blob[: header.nbytes].isascii():
                raise _Unusual("non-ASCII header")
            return header
    raise _Unusual("no END card")


def _parse_cards(header: RawHeader) -> tuple[dict[str, Any], dict[str, str]]:
    """Map keyword -> value and keyword -> comment as :func:`skycut.tess.cube_table.header_record` gives them.

    The first card wins; undefined values are left out of the values.
    """
    values: dict[str, Any] = {}
    comments: dict[str, str] = {}
    for card in header.cards:
        key = card[:8].rstrip()
        if key in ("CONTINUE", "HIERARCH"):
            raise _Unusual(key)
        if key in ("COMMENT", "HISTORY", "") or card[8:10] != "= " or key in values:
            continue
        try:
            value, comment = card_parts(card)
        except CardError as exc:
            raise _Unusual(str(exc)) from exc
        if key not in comments:
            comments[key] = comment
        if value is not None:
            values[key] = value
    return values, comments


def _scan_fast(path: str, name: str) -> FFIInfo:
    """Scan a local plain-image FFI by reading its three headers directly (much faster than astropy)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        h0 = _read_header(fd, 0, path)
        primary, _ = _parse_cards(h0)
        if primary.get("SIMPLE") is not True:
            raise _Unusual("not FITS")
        h1 = _read_header(fd, h0.nbytes + padded(h0.data_nbytes()), path)
        values, comments = _parse_cards(h1)
        h2 = _read_header(fd, h1.offset + h1.nbytes + padded(h1.data_nbytes()), path)
        values2, _ = _parse_cards(h2)
        size = os.fstat(fd).st_size
    finally:
        os.close(fd)
    for v in (values, values2):
        if (
            v.get("XTENSION") != "IMAGE"
            or v.get("NAXIS") != 2
            or v.get("BITPIX") not in BITPIX_DTYPES
            or v.get("BSCALE", 1) != 1
            or v.get("BZERO", 0) != 0
            or "BLANK" in v
        ):
            raise _Unusual("not a plain image")
    if values["BITPIX"] != values2["BITPIX"]:
        raise _Unusual("different BITPIX")
    shape = (int(values["NAXIS2"]), int(values["NAXIS1"]))
    if shape != (int(values2["NAXIS2"]), int(values2["NAXIS1"])) or 0 in shape:
        raise InvalidInputError(f"FFI file {path!r}: ext 1 and ext 2 must be 2-D images of the same shape")
    if size < h2.offset + h2.nbytes + h2.data_nbytes():
        raise truncated_error(path, h2.offset + h2.nbytes + h2.data_nbytes(), size, what="FFI file")
    tstart = values.get("TSTART", primary.get("TSTART"))
    if not isinstance(tstart, (int, float)) or isinstance(tstart, bool):
        raise InvalidInputError(f"FFI file {path!r} has no numeric TSTART in ext 1 (needed for time order)")
    return FFIInfo(
        path=path,
        name=name,
        primary_text="".join(h0.cards) + f"{'END':<80}",
        values=values,
        comments=comments,
        tstart=float(tstart),
        shape=shape,
        offsets=(h1.offset + h1.nbytes, h2.offset + h2.nbytes),
        dtype=BITPIX_DTYPES[values["BITPIX"]],
        sector=primary.get("SECTOR", values.get("SECTOR")),
        camera=primary.get("CAMERA", values.get("CAMERA")),
        ccd=primary.get("CCD", values.get("CCD")),
    )


def scan_ffi(path: str | os.PathLike, fsspec_kwargs: dict | None = None) -> FFIInfo:
    """Read the headers of one SPOC FFI (primary, ext 1 flux, ext 2 uncertainty) and its data layout.

    ``fsspec_kwargs`` are passed to fsspec for remote inputs (default: anonymous access for ``s3://``).

    Raises
    ------
    InvalidInputError
        The file is missing, not FITS, has fewer than three HDUs, no ``TSTART``, or ext 1/2 shapes differ.
    """
    path = str(path)
    name = path.rstrip("/").rsplit("/", 1)[-1]
    if not is_remote(path) and not Path(path).is_file():
        raise InvalidInputError(f"FFI file {path!r} does not exist")
    if not is_remote(path) and not path.endswith(_COMPRESSED_SUFFIXES):  # offsets of gzip refer to the stream
        try:
            return _scan_fast(path, name)
        except (_Unusual, KeyError, ValueError, TypeError, OSError) as exc:
            if isinstance(exc, InvalidInputError):
                raise
            log.debug("FFI %s: reading headers with astropy (%s)", path, exc)
    try:
        hdul = _open(path, fsspec_kwargs, lazy_load_hdus=True, do_not_scale_image_data=True)
    except Exception as exc:  # astropy raises OSError/TypeError/ValueError for non-FITS input
        raise InvalidInputError(f"FFI file {path!r} is not a readable FITS file: {exc}") from exc
    with hdul:
        try:
            primary, ext1, ext2 = hdul[0].header, hdul[1], hdul[2]
        except IndexError as exc:
            raise InvalidInputError(
                f"FFI file {path!r} must have 3 HDUs (primary, calibrated image, uncertainty)"
            ) from exc
        h1 = ext1.header
        shape = tuple(int(h1.get(f"NAXIS{i}", 0)) for i in (2, 1))
        shape2 = tuple(int(ext2.header.get(f"NAXIS{i}", 0)) for i in (2, 1))
        if h1.get("NAXIS") != 2 or shape != shape2 or 0 in shape:
            raise InvalidInputError(
                f"FFI file {path!r}: ext 1 and ext 2 must be 2-D images of the same shape (got {shape}, {shape2})"
            )
        tstart = h1.get("TSTART", primary.get("TSTART"))
        if not isinstance(tstart, (int, float)) or isinstance(tstart, bool):
            raise InvalidInputError(
                f"FFI file {path!r} has no numeric TSTART in ext 1 (needed for time order)"
            )
        _check_complete(hdul, path, fsspec_kwargs)
        offsets, dtype = _direct_layout(hdul, path)
        values, comments = header_record(h1)
        return FFIInfo(
            path=path,
            name=name,
            primary_text=primary.tostring(),
            values=values,
            comments=comments,
            tstart=float(tstart),
            shape=shape,
            offsets=offsets,
            dtype=dtype,
            sector=primary.get("SECTOR", h1.get("SECTOR")),
            camera=primary.get("CAMERA", h1.get("CAMERA")),
            ccd=primary.get("CCD", h1.get("CCD")),
            extra={"fsspec_kwargs": fsspec_kwargs},
        )


def pread_into(fd: int, buf: np.ndarray, offset: int, name: str | None = None) -> None:
    """Fill the contiguous array ``buf`` with bytes of ``fd`` (the file ``name``) starting at ``offset``."""
    view = memoryview(buf).cast("B")
    done = 0
    while done < len(view):
        n = os.preadv(fd, [view[done:]], offset + done)
        if n <= 0:
            raise truncated_error(name or f"(fd {fd})", offset + len(view), offset + done)
        done += n


def pwrite_all(fd: int, data: np.ndarray | bytes, offset: int) -> None:
    """Write all of ``data`` at ``offset`` of ``fd`` (positioned write; loops over short writes)."""
    view = memoryview(data).cast("B")
    done = 0
    while done < len(view):
        done += os.pwrite(fd, view[done : done + (1 << 30)], offset + done)


def read_rows(info: FFIInfo, r0: int, r1: int, buf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows ``r0:r1`` of flux and uncertainty of a directly readable FFI: one ``pread`` per extension.

    Parameters
    ----------
    buf : numpy.ndarray
        Contiguous scratch buffer (any dtype) of at least ``2 * (r1 - r0) * columns * itemsize`` bytes; the
        returned ``(r1 - r0, columns)`` arrays (on-disk dtype) are views of it, valid until it is reused.
    """
    pair = read_row_pair(info, r0, r1, buf)
    return pair[0], pair[1]


def read_row_pair(info: FFIInfo, r0: int, r1: int, buf: np.ndarray) -> np.ndarray:
    """As :func:`read_rows`, as one ``(2, r1 - r0, columns)`` view of ``buf`` (flux, uncertainty)."""
    ncols = info.shape[1]
    n = (r1 - r0) * ncols
    raw = buf.reshape(-1).view(np.uint8)
    itemsize = np.dtype(info.dtype).itemsize
    if raw.size < 2 * n * itemsize:
        raise ValueError(f"read buffer of {raw.size} bytes too small for {2 * n * itemsize}")
    out = raw[: 2 * n * itemsize].view(info.dtype)
    fd = os.open(info.path, os.O_RDONLY)
    try:
        for k, base in enumerate(info.offsets):
            pread_into(fd, out[k * n : (k + 1) * n], base + r0 * ncols * itemsize, info.path)
    finally:
        os.close(fd)
    return out.reshape(2, r1 - r0, ncols)


def read_whole(info: FFIInfo) -> tuple[np.ndarray, np.ndarray]:
    """Flux and uncertainty of one FFI, whole, through astropy (remote and compressed inputs too)."""
    try:
        with _open(info.path, info.extra.get("fsspec_kwargs")) as hdul:
            return (np.asarray(hdul[1].data, dtype=np.float32), np.asarray(hdul[2].data, dtype=np.float32))
    except Exception as exc:
        raise InvalidInputError(f"cannot read the images of FFI {info.path!r}: {exc}") from exc


class ScratchStore:
    """HDF5 scratch file holding every FFI once, chunked ``(1, 2, block_rows, columns)``.

    Dataset ``planes`` has shape ``(n_ffi, 2, rows, columns)`` float32; :meth:`put` writes one whole FFI
    (complete chunks, no read-modify-write), :meth:`read` returns rows ``r0:r1`` of one FFI, one chunk.
    """

    def __init__(self, path: Path, n_ffi: int, shape: tuple[int, int], block_rows: int):
        import h5py

        self.path = path
        self._file = h5py.File(path, "w", libver="latest")
        chunk_rows = max(1, min(block_rows, shape[0]))
        self._dset = self._file.create_dataset(
            "planes", shape=(n_ffi, 2, *shape), dtype=">f4", chunks=(1, 2, chunk_rows, shape[1])
        )

    def put(self, index: int, pair: np.ndarray, r0: int = 0) -> None:
        """Store ``pair`` = (flux, uncertainty) rows ``r0:r0 + pair.shape[1]`` of FFI ``index``.

        One write of whole chunks when ``r0`` is a block start (no read-modify-write).
        """
        self._dset[index, :, r0 : r0 + pair.shape[1]] = pair

    def read(self, index: int, r0: int, r1: int, out: np.ndarray | None = None) -> np.ndarray:
        """Rows ``r0:r1`` of FFI ``index`` as a ``(2, r1 - r0, columns)`` big-endian float32 array.

        ``out``: optional contiguous buffer (any dtype, enough bytes) that the result is a view of.
        """
        shape = (2, r1 - r0, self._dset.shape[3])
        size = int(np.prod(shape))
        if out is None:
            out = np.empty(size, dtype=">f4")
        result = out.reshape(-1).view(np.uint8)[: size * 4].view(">f4").reshape(shape)
        self._dset.read_direct(result, np.s_[index, :, r0:r1, :])
        return result

    def close(self) -> None:
        """Close the HDF5 file and delete it."""
        with contextlib.suppress(Exception):
            self._file.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def lock_file(path: Path) -> int:
    """Hold an exclusive ``flock`` on ``path`` for the life of the process (or until closed); return the fd.

    A build in progress keeps its temporary files locked; a later run can tell a stale temporary file (its
    builder was killed, the lock vanished with it) from one being written right now.
    """
    fd = os.open(path, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return fd


ALIGN = 4096  # O_DIRECT alignment of memory, file offsets and lengths (covers 512-byte and 4K devices)


def aligned_view(raw: np.ndarray, file_offset: int, nbytes: int) -> np.ndarray:
    """Return ``nbytes`` of ``raw`` from where the address is congruent to ``file_offset`` modulo ``ALIGN``.

    ``raw`` is uint8 with ``2 * ALIGN`` bytes to spare; the file-aligned part of the block is then
    memory-aligned too.
    """
    address = raw.__array_interface__["data"][0]
    k = (file_offset - address) % ALIGN
    return raw[k : k + nbytes]


class BlockWriter:
    """Positioned writes of cube blocks, with ``O_DIRECT`` for their page-aligned middle where possible.

    Direct I/O skips the copy into the page cache and the reclaim of cache pages that buffered writes of a
    multi-GB file cost (measured: most of the writer's CPU time). The unaligned head and tail of a block go
    through ``fd`` (buffered). Where ``O_DIRECT`` is unavailable (tmpfs, other systems) or refused, every byte
    is written buffered and ``posix_fadvise(DONTNEED)`` starts write-back of each block at once, so the disk
    works during the build rather than only in the final ``fsync``.
    """

    def __init__(self, fd: int, path: Path | None):
        self.fd = fd
        self.direct_bytes = 0  # bytes written with O_DIRECT
        self.dfd: int | None = None
        if path is not None and hasattr(os, "O_DIRECT"):
            try:
                self.dfd = os.open(path, os.O_WRONLY | os.O_DIRECT)
            except OSError:
                self.dfd = None

    def write(self, block: np.ndarray, offset: int) -> None:
        """Write ``block``'s bytes at file ``offset``, the page-aligned middle with ``O_DIRECT`` if possible."""
        data = memoryview(block).cast("B")
        n = len(data)
        if self.dfd is not None:
            a0 = -(-offset // ALIGN) * ALIGN
            a1 = (offset + n) // ALIGN * ALIGN
            if a1 > a0:
                try:
                    pwrite_all(self.dfd, data[a0 - offset : a1 - offset], a0)
                except OSError as exc:
                    log.debug("O_DIRECT write refused (%s): writing buffered", exc)
                    os.close(self.dfd)
                    self.dfd = None
                else:
                    self.direct_bytes += a1 - a0
                    pwrite_all(self.fd, data[: a0 - offset], offset)
                    pwrite_all(self.fd, data[a1 - offset :], a1)
                    return
        pwrite_all(self.fd, data, offset)
        if hasattr(os, "posix_fadvise"):
            os.posix_fadvise(self.fd, offset, n, os.POSIX_FADV_DONTNEED)

    def close(self) -> None:
        """Close the ``O_DIRECT`` descriptor (``fd`` belongs to the caller)."""
        if self.dfd is not None:
            os.close(self.dfd)
            self.dfd = None
