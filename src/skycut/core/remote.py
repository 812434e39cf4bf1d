"""Opening FITS inputs that may be local paths, ``https://`` URLs or ``s3://`` URIs, reading only what is needed.

* Local files are opened with ``memmap=True`` and ``lazy_load_hdus=True``: only headers are parsed up front,
  and a cutout touches only the pages of the rows it needs.
* Remote files are opened through :mod:`fsspec` (``s3fs`` for ``s3://``, ``aiohttp`` for ``http(s)://``)
  with a small block size, so that opening fetches the header blocks and little else. Pixel data of an
  uncompressed image are then fetched by :class:`RangeSection` as one byte range per needed row (adjacent
  rows merged when the gap between them is small), requested concurrently with ``fs.cat_ranges``.
  Tile-compressed and scaled images fall back to astropy's ``hdu.section``, which also reads only the
  needed tiles/rows through the same fsspec file.

S3 access is anonymous by default (public buckets such as MAST's), unless credentials (``key``/``secret``,
``token``, ``profile``) or ``anon`` are given in ``fsspec_kwargs``.
"""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..exceptions import InvalidInputError

if TYPE_CHECKING:  # pragma: no cover
    from astropy.io import fits

log = logging.getLogger(__name__)

REMOTE_PREFIXES = ("http://", "https://", "s3://", "s3a://", "gs://", "gcs://", "az://", "abfs://")
#: Block size for remote reads: large enough for a typical header in one or two requests, small enough that
#: opening a 200 MB file costs ~64 KB.
DEFAULT_BLOCK_SIZE = 64 * 1024
#: Adjacent row ranges closer than this many bytes are fetched as one range.
DEFAULT_MERGE_GAP = 16 * 1024
_S3_ONLY = frozenset({"anon", "endpoint_url", "key", "secret", "token", "profile", "default_block_size",
                      "default_cache_type", "client_kwargs", "config_kwargs", "requester_pays"})
_CREDENTIAL_KEYS = ("key", "secret", "token", "profile", "aws_access_key_id", "aws_secret_access_key")


def is_remote(path: Any) -> bool:
    """True for ``http(s)://``, ``s3://`` (and other fsspec cloud) URLs; False for local paths."""
    return isinstance(path, str) and path.lower().startswith(REMOTE_PREFIXES)


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
    """fsspec filesystem options for ``path``: user options plus skycut's defaults.

    * ``s3://``: ``anon=True`` unless credentials or ``anon`` are given; ``block_size`` becomes s3fs's
      ``default_block_size`` (default :data:`DEFAULT_BLOCK_SIZE`); ``endpoint_url`` is passed through.
    * ``http(s)://``: ``block_size`` (default :data:`DEFAULT_BLOCK_SIZE`); S3-only keys (``anon``,
      ``endpoint_url``, credentials, ``default_block_size``...) are dropped, so one option set can serve a
      mix of s3:// and https:// inputs.
    """
    opts = dict(fsspec_kwargs or {})
    proto = protocol(path)
    block = opts.pop("block_size", None)
    if proto in ("s3", "s3a"):
        if "anon" not in opts and not any(k in opts for k in _CREDENTIAL_KEYS):
            opts["anon"] = True
        opts.setdefault("default_block_size", block or DEFAULT_BLOCK_SIZE)
    elif proto in ("http", "https"):
        s3_only = sorted(k for k in opts if k in _S3_ONLY)
        if s3_only:  # one option set may serve a mix of s3:// and https:// inputs
            log.debug("ignoring S3 options %s for the http(s) input %s", s3_only, path)
            for key in s3_only:
                del opts[key]
        opts.setdefault("block_size", block or DEFAULT_BLOCK_SIZE)
    elif block is not None:
        opts.setdefault("block_size", block)
    return opts


@dataclass
class FITSHandle:
    """An opened FITS input: the ``HDUList`` plus, for a remote input, the fsspec filesystem and path.

    Close it (or use it as a context manager) to release the file and the remote connection.
    """

    name: str
    hdul: fits.HDUList
    fs: Any = None
    fspath: str | None = None
    _fileobj: Any = field(default=None, repr=False)
    #: True when the file is stored as plain FITS (not gzip/bzip2/zip-compressed as a whole), so that byte
    #: offsets of the data in the HDUs are offsets in the stored file and can be read directly.
    plain: bool = True

    @property
    def remote(self) -> bool:
        return self.fs is not None

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
        if self.remote:
            section = RangeSection.for_hdu(hdu, self.fs, self.fspath)
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
        The file does not exist, cannot be read, or is not FITS; the message names ``path``.
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

    import fsspec

    opts = storage_options(name, fsspec_kwargs)
    try:
        fs, fspath = fsspec.core.url_to_fs(name, **opts)
        fileobj = fs.open(fspath, mode="rb")
    except Exception as exc:
        raise _wrap_open_error(name, exc) from exc
    try:
        magic = fileobj.read(6)
        plain = magic == b"SIMPLE"
        fileobj.seek(0)
        codec = "gzip" if magic[:2] == b"\x1f\x8b" else "bz2" if magic[:3] == b"BZh" else None
        if codec is not None:  # whole-file compression: astropy must read a decompressed stream
            fileobj.close()
            fileobj = fs.open(fspath, mode="rb", compression=codec)
        hdul = fits.open(fileobj, mode="readonly", lazy_load_hdus=True, memmap=False)
        hdul[0]  # noqa: B018
    except Exception as exc:
        fileobj.close()
        raise _wrap_open_error(name, exc) from exc
    log.debug("opened remote %s with %s", name, {k: v for k, v in opts.items() if k not in ("key", "secret")})
    return FITSHandle(name, hdul, fs=fs, fspath=fspath, _fileobj=fileobj, plain=plain)


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
    """Lazy view of an uncompressed remote FITS image fetching only the requested rows as byte ranges.

    ``section[..., y0:y1, x0:x1]`` (the form :func:`skycut.core.geometry.extract_padded` uses; steps must be 1)
    returns a native-endian array. ``shape`` is the numpy shape ``(..., NAXIS2, NAXIS1)``.
    """

    fs: Any
    path: str
    offset: int
    shape: tuple[int, ...]
    dtype: np.dtype
    out_dtype: np.dtype | None = None
    bzero: int = 0
    merge_gap: int = DEFAULT_MERGE_GAP
    batch_size: int = 32
    requests: int = 0

    @classmethod
    def for_hdu(cls, hdu: Any, fs: Any, path: str) -> RangeSection | None:
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
        return cls(fs, path, offset, shape, np.dtype(_BITPIX[bitpix]), out_dtype, int(bzero))

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
            args = ([self.path] * len(jobs), [r[0] for _, r in jobs], [r[1] for _, r in jobs])
            try:
                blobs = self.fs.cat_ranges(*args, batch_size=self.batch_size)
            except TypeError:  # a synchronous filesystem without batching
                blobs = self.fs.cat_ranges(*args)
            self.requests += len(jobs)
            for (plane, (_start, _end, rows)), blob in zip(jobs, blobs, strict=True):
                if isinstance(blob, Exception):
                    raise InvalidInputError(f"reading {self.path} failed: {blob}") from blob
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
