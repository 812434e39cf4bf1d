"""FITS images opened lazily, local or remote, and their pixels read by the rows a cutout needs.

:func:`open_fits_handle` opens local files with ``memmap=True`` and ``lazy_load_hdus=True`` (only headers are
parsed up front) and remote files through a :class:`skycut.core.byte_sources.RemoteFile` with small blocks
(opening fetches the header blocks and little else). Pixels of an uncompressed image are then fetched by
:class:`RangeSection` as one byte range per needed row (adjacent rows merged when the gap between them is small)
through the source's ``read_ranges``. Tile-compressed and scaled images fall back to astropy's ``hdu.section``,
which also reads only the needed tiles/rows through the same file. A plain local image is a read-only memory map
(:func:`memmap_image`). :class:`RangeSection` also reads the uncompressed blocks of the ASDF reader
(:mod:`skycut.image.asdf_io`).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..exceptions import InvalidInputError
from .byte_sources import RemoteFile
from .remote import describe_error, is_remote

if TYPE_CHECKING:  # pragma: no cover
    from astropy.io import fits

#: Adjacent row ranges closer than this many bytes are fetched as one range.
DEFAULT_MERGE_GAP = 16 * 1024


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
        """True for a remote input (one read through :attr:`source`)."""
        return self.source is not None

    def close(self) -> None:
        """Close the ``HDUList`` and the file object it reads from (errors while closing are ignored)."""
        with contextlib.suppress(Exception):
            self.hdul.close()
        if self._fileobj is not None:
            with contextlib.suppress(Exception):
                self._fileobj.close()

    def __enter__(self) -> FITSHandle:
        """Return the handle itself."""
        return self

    def __exit__(self, *exc) -> None:
        """Close the handle."""
        self.close()

    def section(self, index: int) -> Any:
        """Return something sliceable as ``obj[..., y0:y1, x0:x1]`` giving the pixels of HDU ``index``.

        Only the pixels sliced are read: :class:`RangeSection` for an uncompressed remote image, the memory map
        of a plain local image (slicing it touches only the needed pages), astropy's ``hdu.section`` otherwise
        (compressed or scaled data).
        """
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
    """Return a read-only ``numpy.memmap`` of a plain (uncompressed, unscaled) local image HDU, else None.

    Slicing it reads only the pages of the needed rows; the shape is the numpy shape ``(..., ny, nx)``.
    """
    from astropy.io import fits

    if isinstance(hdu, fits.CompImageHDU) or not isinstance(hdu, (fits.PrimaryHDU, fits.ImageHDU)):
        return None
    h = hdu.header
    naxis = h.get("NAXIS", 0)
    if (
        h.get("BITPIX") not in _BITPIX
        or naxis < 2
        or h.get("BSCALE", 1) != 1
        or h.get("BZERO", 0) != 0
        or "BLANK" in h
    ):
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
            raise InvalidInputError(
                f"input file not found: {name}"
                if not Path(name).exists()
                else f"input {name} is not a regular file"
            )
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
        """Return a RangeSection for ``hdu`` if it is a plain (uncompressed, unscaled or unsigned) image, else None."""
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
        """Return the byte ranges ``(start, end, rows)`` covering rows ``y0:y1``, columns ``x0:x1`` of ``plane``."""
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
        """Return the pixels of ``key`` (``[..., y0:y1, x0:x1]``, steps 1) as a native-endian array."""
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
                    out[plane, row - y0] = buf[i * nx : i * nx + (x1 - x0)]
        data = out.astype(self.dtype.newbyteorder("="), copy=False)
        if self.out_dtype is not None:
            # FITS unsigned convention: adding BZERO = 2**(bits-1) (or -128 for signed bytes) flips the top bit
            bits = data.dtype.itemsize * 8
            as_unsigned = data.view(f"u{data.dtype.itemsize}") ^ np.array(
                1 << (bits - 1), f"u{data.dtype.itemsize}"
            )
            data = as_unsigned.view(self.out_dtype)
        return data.reshape(lead + (y1 - y0, x1 - x0))
