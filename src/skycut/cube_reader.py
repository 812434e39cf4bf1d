"""Open TESS cubes (local files, ``s3://`` or ``https://``) and read pixel blocks with as few bytes as possible.

Cube layout (astrocut's and skycut's, see ``astrocut-formats.md`` §a): HDU 0 primary header, HDU 1 a 4-D image of
numpy shape ``(nrows, ncols, ntime, 2)`` (big-endian float32, float64 after astrocut's ``update_cube``) holding
``[..., 0]`` flux and ``[..., 1]`` uncertainty, HDU 2 a binary table with one row per FFI (time order).

For one cube row ``y`` and columns ``x0:x1`` the ``(x1 - x0) * ntime * 2`` values are contiguous, so a cutout of
rows ``y0:y1`` is ``y1 - y0`` byte runs (one run when the cutout spans every column). :func:`byte_runs` computes
and merges them; :class:`CubeReader` fetches them with ``np.memmap`` locally or with ranged reads (in a thread
pool) remotely. Headers are parsed here without astropy, so opening a cube is cheap.

Pixel conventions: 0-based, ``x`` = CCD column (cube axis 1), ``y`` = CCD row (cube axis 0).
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .exceptions import InvalidInputError

log = logging.getLogger(__name__)

BLOCK = 2880
CARD = 80

_TFORM_CODES = {"L": "i1", "B": "u1", "I": ">i2", "J": ">i4", "K": ">i8", "E": ">f4", "D": ">f8", "A": "S"}
_BITPIX = {-32: ">f4", -64: ">f8", 16: ">i2", 32: ">i4", 8: "u1", 64: ">i8"}


# ------------------------------------------------------------------------------------------ header parsing


def card_value(card: str) -> Any:
    """Parse the value of one 80-character FITS card (``str``, ``bool``, ``int``, ``float`` or ``None``)."""
    if card[8:10] != "= ":
        return None
    text = card[10:].strip()
    if text.startswith("'"):
        out, i = [], 1
        while i < len(text):
            if text[i] == "'":
                if i + 1 < len(text) and text[i + 1] == "'":
                    out.append("'")
                    i += 2
                    continue
                break
            out.append(text[i])
            i += 1
        return "".join(out).rstrip()
    text = text.split("/", 1)[0].strip()
    if text == "":
        return None
    if text in ("T", "F"):
        return text == "T"
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text.replace("D", "E"))
    except ValueError:
        return text


@dataclass
class RawHeader:
    """One FITS header as its raw 80-character cards (``END`` excluded) plus a keyword -> value dict."""

    cards: list[str]
    offset: int  # byte offset of the header in the file
    nbytes: int  # size of the header in bytes (a multiple of 2880)
    values: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, blob: bytes, offset: int) -> RawHeader | None:
        """Parse the header starting at the start of ``blob``; ``None`` if its ``END`` card is not in ``blob``."""
        text = blob.decode("ascii", errors="replace")
        cards: list[str] = []
        for i in range(0, len(text) - CARD + 1, CARD):
            card = text[i:i + CARD]
            if card.startswith("END") and card[3:].strip() == "":
                nbytes = -(-(i + CARD) // BLOCK) * BLOCK
                values: dict[str, Any] = {}
                for c in cards:
                    key = c[:8].strip()
                    if key and key not in values and c[8:10] == "= ":
                        values[key] = card_value(c)
                return cls(cards, offset, nbytes, values)
            cards.append(card)
        return None

    def data_nbytes(self) -> int:
        """Size of the data that follows this header, unpadded (``|BITPIX|/8 * GCOUNT * (PCOUNT + prod NAXISn)``)."""
        naxis = int(self.values.get("NAXIS", 0))
        if naxis == 0:
            return 0
        n = 1
        for i in range(1, naxis + 1):
            n *= int(self.values[f"NAXIS{i}"])
        return abs(int(self.values["BITPIX"])) // 8 * int(self.values.get("GCOUNT", 1)) * (
            int(self.values.get("PCOUNT", 0)) + n)


def padded(n: int) -> int:
    """``n`` rounded up to a whole number of 2880-byte FITS blocks."""
    return -(-n // BLOCK) * BLOCK


def parse_table(header: RawHeader, data: bytes) -> dict[str, np.ndarray]:
    """Decode a FITS binary table (scalar and fixed-length array columns) into ``{name: array}``.

    Strings are returned as ``str`` arrays with trailing blanks removed; logical columns as bool; numbers in native
    byte order. Variable-length arrays are not supported (cube tables never have them).
    """
    v = header.values
    nfields, nrows, width = int(v["TFIELDS"]), int(v["NAXIS2"]), int(v["NAXIS1"])
    names, formats, offsets, pos = [], [], [], 0
    for i in range(1, nfields + 1):
        tform = str(v[f"TFORM{i}"]).strip()
        j = 0
        while j < len(tform) and tform[j].isdigit():
            j += 1
        repeat = int(tform[:j]) if j else 1
        code = tform[j:j + 1]
        if code not in _TFORM_CODES:
            raise InvalidInputError(f"unsupported table column format TFORM{i} = {tform!r}")
        if code == "A":
            fmt, size = f"S{repeat}", repeat
        else:
            fmt = _TFORM_CODES[code] if repeat == 1 else (_TFORM_CODES[code], (repeat,))
            size = np.dtype(_TFORM_CODES[code]).itemsize * repeat
        name = str(v.get(f"TTYPE{i}", f"col{i}")).strip()
        if name in names:
            name = f"{name}_{i}"
        names.append(name)
        formats.append(fmt)
        offsets.append(pos)
        pos += size
    dtype = np.dtype({"names": names, "formats": formats, "offsets": offsets, "itemsize": width})
    rec = np.frombuffer(data, dtype=dtype, count=nrows)
    out: dict[str, np.ndarray] = {}
    for i, name in enumerate(names):
        col = rec[name]
        code = str(v[f"TFORM{i + 1}"]).strip().lstrip("0123456789")[:1]
        if code == "A":
            out[name] = np.char.rstrip(np.char.decode(col, "ascii", errors="replace"))
        elif code == "L":
            out[name] = col == ord("T")
        else:
            out[name] = col.astype(col.dtype.newbyteorder("="))
    return out


# ------------------------------------------------------------------------------------------ byte runs


def byte_runs(lims: Sequence[Sequence[int]], cube_shape: tuple[int, int, int, int], itemsize: int,
              data_offset: int) -> list[tuple[int, int]]:
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


def is_remote(path: str | os.PathLike) -> bool:
    return isinstance(path, str) and "://" in path and not path.startswith("file://")


# ------------------------------------------------------------------------------------------ byte sources


class _LocalSource:
    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)
        try:
            self._fh = open(self.path, "rb")
        except OSError as exc:
            raise InvalidInputError(f"cannot open cube {self.path!r}: {exc}") from exc
        self.size = os.fstat(self._fh.fileno()).st_size
        self.requests = 0
        self.bytes_read = 0

    def read(self, start: int, end: int) -> bytes:
        self.requests += 1
        blob = os.pread(self._fh.fileno(), end - start, start)
        self.bytes_read += len(blob)
        return blob

    def read_many(self, ranges: list[tuple[int, int]]) -> list[bytes]:
        return [self.read(a, b) for a, b in ranges]

    def close(self) -> None:
        self._fh.close()


class _RemoteSource:
    """Ranged reads through fsspec; counts requests and bytes; parallel with ``threads``."""

    def __init__(self, url: str, fsspec_kwargs: dict | None, threads: int):
        import fsspec

        kwargs = dict(fsspec_kwargs or {})
        protocol = url.split("://", 1)[0]
        if protocol in ("s3", "s3a"):
            if not any(k in kwargs for k in ("key", "secret", "token", "profile", "anon")):
                kwargs["anon"] = True
            endpoint = kwargs.pop("endpoint_url", None)
            if endpoint:
                kwargs.setdefault("client_kwargs", {})["endpoint_url"] = endpoint
        self.path = url
        try:
            self.fs, self._fspath = fsspec.core.url_to_fs(url, **kwargs)
            self.size = int(self.fs.size(self._fspath))
        except Exception as exc:  # fsspec raises many types (FileNotFoundError, ClientError, ...)
            raise InvalidInputError(f"cannot open remote cube {url!r}: {exc}") from exc
        self.threads = threads
        self.requests = 0
        self.bytes_read = 0
        self._lock = threading.Lock()

    def read(self, start: int, end: int) -> bytes:
        blob = self.fs.cat_file(self._fspath, start=start, end=end)
        with self._lock:
            self.requests += 1
            self.bytes_read += len(blob)
        if len(blob) != end - start:
            raise InvalidInputError(f"short read from {self.path!r}: wanted bytes {start}-{end}, got {len(blob)}")
        return blob

    def read_many(self, ranges: list[tuple[int, int]]) -> list[bytes]:
        if self.threads <= 1 or len(ranges) <= 1:
            return [self.read(a, b) for a, b in ranges]
        with ThreadPoolExecutor(max_workers=min(self.threads, len(ranges))) as pool:
            return list(pool.map(lambda r: self.read(*r), ranges))

    def close(self) -> None:
        pass


# ------------------------------------------------------------------------------------------ the reader


class CubeReader:
    """An opened cube: headers and the FFI table read once; pixel blocks read on demand.

    Parameters
    ----------
    path : str or path-like
        Local path, ``s3://bucket/key`` or ``http(s)://...`` URL.
    fsspec_kwargs : dict, optional
        Options for remote cubes (``anon`` defaults to True for s3; ``endpoint_url``, ``key``, ``secret``, ...).
    threads : int or "auto"
        Parallel ranged requests for remote cubes (ignored locally, where a memmap is fastest).

    Attributes
    ----------
    primary : RawHeader
        Cube primary header.
    shape : tuple
        Numpy shape of the cube image ``(nrows, ncols, ntime, nplanes)``.
    table : dict[str, ndarray]
        FFI table columns, one entry per FFI (time order).
    """

    def __init__(self, path: str | os.PathLike, *, fsspec_kwargs: dict | None = None,
                 threads: int | str = 1):
        self.path = path if is_remote(path) else os.fspath(path)
        self.name = str(self.path)
        self.threads = resolve_threads(threads)
        self.remote = is_remote(self.path)
        self._src = (_RemoteSource(self.path, fsspec_kwargs, self.threads) if self.remote
                     else _LocalSource(self.path))
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
        if hdr is not None:
            return hdr
        while True:
            if offset + len(blob) >= self._src.size:
                raise InvalidInputError(f"{self.name!r}: truncated FITS header at byte {offset}")
            blob += self._src.read(offset + len(blob), min(self._src.size, offset + len(blob) + BLOCK))
            hdr = RawHeader.parse(blob, offset)
            if hdr is not None:
                return hdr

    def _open(self) -> None:
        # the first two blocks hold both headers of a typical cube (one request); read on if they do not
        first = self._src.read(0, min(self._src.size, 2 * BLOCK))
        self.primary = self._header_at(0, first)
        if self.primary.values.get("SIMPLE") is not True:
            raise InvalidInputError(f"{self.name!r} is not a FITS file")
        pos = self.primary.nbytes + padded(self.primary.data_nbytes())
        self.image_header = self._header_at(pos, first[pos:])
        iv = self.image_header.values
        if iv.get("XTENSION") != "IMAGE" or iv.get("NAXIS") != 4:
            raise InvalidInputError(
                f"{self.name!r} is not a TESS cube: HDU 1 must be a 4-D image (got XTENSION={iv.get('XTENSION')!r}, "
                f"NAXIS={iv.get('NAXIS')!r})")
        self.shape = tuple(int(iv[f"NAXIS{i}"]) for i in (4, 3, 2, 1))
        if self.shape[3] < 2:
            raise InvalidInputError(
                f"{self.name!r}: cube has {self.shape[3]} plane(s); flux and uncertainty planes are needed")
        self.dtype = np.dtype(_BITPIX[int(iv["BITPIX"])])
        self.data_offset = pos + self.image_header.nbytes
        data_bytes = self.image_header.data_nbytes()
        table_pos = self.data_offset + padded(data_bytes)
        if table_pos >= self._src.size:
            raise InvalidInputError(f"{self.name!r}: the FFI table (HDU 2) is missing")
        if self.remote:
            # table header and table data are the rest of the file: fetch them in one request
            blob = self._src.read(table_pos, self._src.size)
            thdr = RawHeader.parse(blob, table_pos)
            if thdr is None:
                raise InvalidInputError(f"{self.name!r}: cannot parse the FFI table header")
            tdata = blob[thdr.nbytes:thdr.nbytes + thdr.data_nbytes()]
        else:
            thdr = self._header_at(table_pos)
            start = table_pos + thdr.nbytes
            tdata = self._src.read(start, start + thdr.data_nbytes())
        if thdr.values.get("XTENSION") != "BINTABLE":
            raise InvalidInputError(f"{self.name!r}: HDU 2 is not the FFI binary table")
        self.table_header = thdr
        self.table = parse_table(thdr, tdata)
        self.ntime = self.shape[2]
        self._memmap: np.ndarray | None = None

    # -- pixel access
    @property
    def nrows(self) -> int:
        return self.shape[0]

    @property
    def ncols(self) -> int:
        return self.shape[1]

    def memmap(self) -> np.ndarray:
        """The local cube image as a read-only ``np.memmap`` of shape ``(nrows, ncols, ntime, nplanes)``."""
        if self.remote:
            raise InvalidInputError(f"{self.name!r} is remote; it cannot be memory-mapped")
        if self._memmap is None:
            self._memmap = np.memmap(self.path, dtype=self.dtype, mode="r", offset=self.data_offset,
                                     shape=self.shape)
        return self._memmap

    def runs(self, clipped_lims) -> list[tuple[int, int]]:
        """Merged byte runs of a clipped ``[[x0, x1], [y0, y1]]`` block (see :func:`byte_runs`)."""
        return byte_runs(clipped_lims, self.shape, self.dtype.itemsize, self.data_offset)

    def read_blocks(self, clipped: list) -> list[np.ndarray]:
        """Read several clipped blocks ``[[x0, x1], [y0, y1]]``.

        Returns arrays of shape ``(y1 - y0, x1 - x0, ntime, nplanes)`` in the cube's (big-endian) dtype. Remote
        cubes: all runs of all blocks are fetched together in the thread pool.
        """
        if not self.remote:
            mm = self.memmap()
            return [np.asarray(mm[y0:y1, x0:x1]) for (x0, x1), (y0, y1) in clipped]
        all_runs = [self.runs(lims) for lims in clipped]
        flat = [r for runs in all_runs for r in runs]
        blobs = iter(self._src.read_many(flat))
        out = []
        for lims, runs in zip(clipped, all_runs, strict=True):
            (x0, x1), (y0, y1) = lims
            buf = b"".join(next(blobs) for _ in runs)
            out.append(np.frombuffer(buf, dtype=self.dtype).reshape(y1 - y0, x1 - x0, *self.shape[2:]))
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
        self._memmap = None
        self._src.close()

    def __enter__(self) -> CubeReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def cube_stem(path: str | os.PathLike) -> str:
    """File stem used in TPF names: the base name without ``.fits`` and without a trailing ``-cube``.

    ``tess-s0011-1-1-cube.fits -> tess-s0011-1-1``; ``image-cube.fits -> image``; ``my.cube.fits -> my.cube``.
    """
    name = str(path).rstrip("/").rsplit("/", 1)[-1].split("?", 1)[0]
    stem = Path(name).stem if name.lower().endswith((".fits", ".fit", ".fts")) else name
    return stem[: -len("-cube")] if stem.endswith("-cube") and len(stem) > len("-cube") else stem


# ------------------------------------------------------------------------------------------ the cube's WCS

_WCS_KEY = re.compile(r"^(WCSAXES|CRPIX[12]|CRVAL[12]|CTYPE[12]|CUNIT[12]|CDELT[12]|PC[12]_[12]|CD[12]_[12]|"
                      r"LONPOLE|LATPOLE|RADESYS|EQUINOX|(A|B|AP|BP)_ORDER|(A|B|AP|BP)_\d+_\d+)$")
WCS_FLAG_COLUMN = "WCS_OK"


def cube_wcs_row(table: dict[str, np.ndarray], name: str = "cube") -> int:
    """Index of the FFI whose WCS the cutouts use: the row nearest ``n // 2`` with a SIP WCS.

    A row qualifies when ``CTYPE2 == 'DEC--TAN-SIP'``, its CRVAL/CRPIX are finite, and (skycut cubes) its
    ``WCS_OK`` flag is set. If no row has SIP, plain ``DEC--TAN`` rows are accepted.

    Raises
    ------
    NoWcsKeywordsFoundError
        No row carries a usable celestial WCS (the message names the cube).
    """
    from .exceptions import NoWcsKeywordsFoundError

    ctype2 = table.get("CTYPE2")
    if ctype2 is None:
        raise NoWcsKeywordsFoundError(f"cube {name!r}: its FFI table has no CTYPE2 column (no WCS)")
    n = len(ctype2)
    ok = np.ones(n, dtype=bool)
    for key in ("CRVAL1", "CRVAL2", "CRPIX1", "CRPIX2"):
        col = table.get(key)
        if col is None or col.dtype.kind not in "fi":
            raise NoWcsKeywordsFoundError(f"cube {name!r}: its FFI table has no numeric {key} column")
        ok &= np.isfinite(col.astype(float))
    if WCS_FLAG_COLUMN in table:
        ok &= np.asarray(table[WCS_FLAG_COLUMN], dtype=bool)
    ctype2 = np.char.strip(np.asarray(ctype2).astype(str))
    for wanted in ("DEC--TAN-SIP", "DEC--TAN"):
        rows = np.flatnonzero(ok & (ctype2 == wanted))
        if rows.size:
            return int(rows[np.argmin(np.abs(rows - n // 2))])
    raise NoWcsKeywordsFoundError(f"cube {name!r}: no FFI in its table has a usable celestial (TAN) WCS")


def sip_wcs_from_row(table: dict[str, np.ndarray], row: int, cube_shape: tuple[int, ...] | None = None):
    """An astropy ``WCS`` (SIP kept) built from the WCS keywords of one row of the cube's FFI table.

    ``cube_shape`` (numpy ``(nrows, ncols, ...)``) sets ``pixel_shape = (ncols, nrows)``.
    """
    header = wcs_header_from_row(table, row)
    if cube_shape is not None:
        header["NAXIS1"], header["NAXIS2"] = int(cube_shape[1]), int(cube_shape[0])
    return _astropy_wcs(header)


def physical_origin(table: dict[str, np.ndarray], row: int) -> tuple[float, float, float, float, float, float]:
    """``(CRVAL1P, CRPIX1P, CDELT1P, CRVAL2P, CRPIX2P, CDELT2P)`` of the FFI's physical (CCD) WCS.

    Missing keywords default to 1, so a full SPOC FFI maps 0-based pixel ``x`` to CCD column ``x + 1``; a
    windowed FFI with ``CRVAL1P = x0 + 1`` maps it to ``x + x0 + 1``.
    """
    out = []
    for axis in (1, 2):
        for key in (f"CRVAL{axis}P", f"CRPIX{axis}P", f"CDELT{axis}P"):
            col = table.get(key)
            value = col[row] if col is not None and col.dtype.kind in "fiu" else 1.0
            out.append(float(value) if np.isfinite(value) else 1.0)
    return tuple(out)


class TanSip:
    """A TAN (gnomonic) WCS with optional SIP distortion, evaluated with numpy alone.

    Opening a cube and cutting it then needs no astropy import (astropy.wcs pulls in astropy.coordinates, over a
    second of start-up); the astropy ``WCS`` is built only when asked for (:meth:`to_astropy`). Method names and
    signatures mirror astropy's (``all_pix2world``, ``all_world2pix``) so either object can be passed around.

    Pixel coordinates follow ``origin`` (0: 0-based as numpy, 1: FITS); sky coordinates are ICRS degrees.
    """

    def __init__(self, header: dict[str, Any]):
        self.header = header
        self.crpix = np.array([header["CRPIX1"], header["CRPIX2"]], dtype=float)
        self.crval = (float(header["CRVAL1"]), float(header["CRVAL2"]))
        if "CD1_1" in header:
            self.cd = np.array([[header.get("CD1_1", 0.0), header.get("CD1_2", 0.0)],
                                [header.get("CD2_1", 0.0), header.get("CD2_2", 0.0)]], dtype=float)
        else:
            pc = np.array([[header.get("PC1_1", 1.0), header.get("PC1_2", 0.0)],
                           [header.get("PC2_1", 0.0), header.get("PC2_2", 1.0)]], dtype=float)
            self.cd = pc * np.array([header.get("CDELT1", 1.0), header.get("CDELT2", 1.0)])[:, None]
        self.cd_inv = np.linalg.inv(self.cd)
        self.a, self.b = self._poly("A"), self._poly("B")
        self.ap, self.bp = self._poly("AP"), self._poly("BP")
        self._astropy = None

    @staticmethod
    def supports(header: dict[str, Any]) -> bool:
        """True for celestial RA/Dec TAN(-SIP) headers with the default pole (what TESS FFIs carry)."""
        ok = str(header.get("CTYPE1", "")).startswith("RA---TAN") and str(header.get("CTYPE2", "")).startswith(
            "DEC--TAN")
        ok &= all(k in header for k in ("CRPIX1", "CRPIX2", "CRVAL1", "CRVAL2"))
        ok &= float(header.get("LONPOLE", 180.0)) == 180.0 and abs(float(header["CRVAL2"] if ok else 0)) < 90.0
        ok &= str(header.get("CUNIT1", "deg")).strip().lower() in ("deg", "") and str(
            header.get("CUNIT2", "deg")).strip().lower() in ("deg", "")
        return bool(ok) and str(header.get("RADESYS", "ICRS")).strip().upper() in ("ICRS", "FK5", "")

    def _poly(self, name: str) -> np.ndarray | None:
        order = self.header.get(f"{name}_ORDER")
        if not order or not str(self.header.get("CTYPE1", "")).endswith("-SIP"):
            return None
        order = int(order)
        m = np.zeros((order + 1, order + 1))
        for p in range(order + 1):
            for q in range(order + 1 - p):
                m[p, q] = float(self.header.get(f"{name}_{p}_{q}", 0.0))
        return m

    @staticmethod
    def _eval(m: np.ndarray | None, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        from numpy.polynomial import polynomial as P

        return np.zeros_like(u) if m is None else P.polyval2d(u, v, m)

    def all_pix2world(self, x, y, origin: int):
        """(ra, dec) in degrees of pixels ``(x, y)`` (SIP applied)."""
        x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        u = x + (1 - origin) - self.crpix[0]
        v = y + (1 - origin) - self.crpix[1]
        uu, vv = u + self._eval(self.a, u, v), v + self._eval(self.b, u, v)
        xi = self.cd[0, 0] * uu + self.cd[0, 1] * vv
        eta = self.cd[1, 0] * uu + self.cd[1, 1] * vv
        return _deproject(xi, eta, self.crval)

    def all_world2pix(self, ra, dec, origin: int, quiet: bool = True, tolerance: float = 1e-8,
                      maxiter: int = 30):
        """Pixels ``(x, y)`` of sky positions (SIP inverted by Newton's method, started from AP/BP).

        Points more than 90 degrees from the reference point, or where the iteration does not converge,
        come back as NaN.
        """
        ra, dec = np.asarray(ra, dtype=float), np.asarray(dec, dtype=float)
        xi, eta, front = _project(ra, dec, self.crval)
        big_u = self.cd_inv[0, 0] * xi + self.cd_inv[0, 1] * eta
        big_v = self.cd_inv[1, 0] * xi + self.cd_inv[1, 1] * eta
        u = big_u + self._eval(self.ap, big_u, big_v)
        v = big_v + self._eval(self.bp, big_u, big_v)
        if self.a is not None or self.b is not None:
            from numpy.polynomial import polynomial as P

            a = self.a if self.a is not None else np.zeros((1, 1))
            b = self.b if self.b is not None else np.zeros((1, 1))
            au, av, bu, bv = P.polyder(a, axis=0), P.polyder(a, axis=1), P.polyder(b, axis=0), P.polyder(b, axis=1)
            with np.errstate(invalid="ignore", over="ignore"):
                for _ in range(maxiter):
                    fu = u + P.polyval2d(u, v, a) - big_u
                    fv = v + P.polyval2d(u, v, b) - big_v
                    j11, j12 = 1 + P.polyval2d(u, v, au), P.polyval2d(u, v, av)
                    j21, j22 = P.polyval2d(u, v, bu), 1 + P.polyval2d(u, v, bv)
                    det = j11 * j22 - j12 * j21
                    du = (fu * j22 - fv * j12) / det
                    dv = (fv * j11 - fu * j21) / det
                    u, v = u - du, v - dv
                    if not np.any(np.abs(np.nan_to_num(du, nan=0.0)) + np.abs(np.nan_to_num(dv, nan=0.0))
                                  > tolerance):
                        break
                bad = ~np.isfinite(u) | ~np.isfinite(v) | (np.abs(du) + np.abs(dv) > 1e-3)
                u, v = np.where(bad, np.nan, u), np.where(bad, np.nan, v)
        u, v = np.where(front, u, np.nan), np.where(front, v, np.nan)
        return u + self.crpix[0] - (1 - origin), v + self.crpix[1] - (1 - origin)

    def pixel_scales(self) -> tuple[float, float]:
        """Degrees per pixel along x and y of the linear part (as ``astropy.wcs.utils.proj_plane_pixel_scales``)."""
        s = np.sqrt((self.cd ** 2).sum(axis=0))
        return float(s[0]), float(s[1])

    def to_astropy(self):
        """The equivalent astropy ``WCS`` (built once, on first use)."""
        if self._astropy is None:
            self._astropy = _astropy_wcs(self.header)
        return self._astropy


def _project(ra, dec, crval):
    """Gnomonic standard coordinates (deg) about ``crval`` and a mask of points in front of the tangent plane."""
    a0, d0 = np.radians(crval[0]), np.radians(crval[1])
    a, d = np.radians(ra), np.radians(dec)
    cosc = np.sin(d0) * np.sin(d) + np.cos(d0) * np.cos(d) * np.cos(a - a0)
    front = cosc > 1e-8
    with np.errstate(divide="ignore", invalid="ignore"):
        xi = np.cos(d) * np.sin(a - a0) / cosc
        eta = (np.cos(d0) * np.sin(d) - np.sin(d0) * np.cos(d) * np.cos(a - a0)) / cosc
    return np.degrees(xi), np.degrees(eta), front


def _deproject(xi, eta, crval):
    """(ra, dec) in degrees of gnomonic standard coordinates (deg) about ``crval``."""
    a0, d0 = np.radians(crval[0]), np.radians(crval[1])
    x, y = np.radians(xi), np.radians(eta)
    rho = np.hypot(x, y)
    c = np.arctan(rho)
    sin_c, cos_c = np.sin(c), np.cos(c)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(rho > 0, y * sin_c / np.where(rho > 0, rho, 1.0), 0.0)
    dec = np.arcsin(np.clip(cos_c * np.sin(d0) + ratio * np.cos(d0), -1.0, 1.0))
    ra = a0 + np.arctan2(x * sin_c, rho * np.cos(d0) * cos_c - y * np.sin(d0) * sin_c)
    return np.degrees(ra) % 360.0, np.degrees(dec)


def _astropy_wcs(header: dict[str, Any]):
    from astropy.io import fits
    from astropy.wcs import WCS

    hdr = fits.Header()
    for key, value in header.items():
        if key not in ("NAXIS1", "NAXIS2"):
            hdr[key] = value
    wcs = WCS(hdr, relax=True)
    if "NAXIS1" in header:
        wcs.pixel_shape = (int(header["NAXIS1"]), int(header["NAXIS2"]))
    return wcs


def wcs_header_from_row(table: dict[str, np.ndarray], row: int) -> dict[str, Any]:
    """The celestial WCS keywords (SIP included) of one row of the cube's FFI table, as a plain dict."""
    header: dict[str, Any] = {}
    for key, col in table.items():
        if not _WCS_KEY.match(key):
            continue
        value = col[row]
        if isinstance(value, str | np.str_):
            if value.strip():
                header[key] = str(value).strip()
        elif isinstance(value, np.bool_):
            continue
        elif np.isfinite(value):
            header[key] = int(value) if col.dtype.kind in "iu" else float(value)
    return header


def cube_wcs_from_row(table: dict[str, np.ndarray], row: int, cube_shape: tuple[int, ...] | None = None):
    """The cube's WCS from one table row: a numpy :class:`TanSip` for TAN(-SIP) headers (TESS FFIs), otherwise an
    astropy ``WCS``. ``cube_shape`` (numpy ``(nrows, ncols, ...)``) records the image size."""
    header = wcs_header_from_row(table, row)
    if cube_shape is not None:
        header["NAXIS1"], header["NAXIS2"] = int(cube_shape[1]), int(cube_shape[0])
    return TanSip(header) if TanSip.supports(header) else _astropy_wcs(header)
