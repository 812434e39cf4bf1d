"""I/O helpers for Roman ASDF cutouts.

Opening local/remote ASDF files, cutting arrays, result containers, and ASDF metadata embedded in FITS.

Pixel conventions as :mod:`skycut.core.geometry`: 0-based, ``x`` = column (numpy axis -1), ``y`` = row (axis -2);
limits are half-open ``[[xmin, xmax], [ymin, ymax]]`` in original pixels. asdf/astropy are imported inside
the functions.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np

from ..core.byte_sources import LocalFile
from ..core.fits_open import RangeSection
from ..core.geometry import extract_padded, window_key
from ..core.provenance import settle_asdf_history
from ..core.range_merge import merge_range_groups
from ..core.remote import is_remote
from ..core.remote_file import RemoteFile
from ..exceptions import InvalidInputError
from .asdf_wcs import is_gwcs

log = logging.getLogger(__name__)

MISSION_KEY = "roman"

# ------------------------------------------------------------------------------------------------------------
# small helpers
# ------------------------------------------------------------------------------------------------------------


def file_key(f: Any) -> str:
    """Return the string an input is known by: a path or URL/URI as given (``S3Path`` -> ``s3://`` URI).

    Raises
    ------
    InvalidInputError
        ``f`` is not a path, an ``S3Path``, or a string.
    """
    if type(f).__name__ in ("S3Path", "PureS3Path", "VersionedS3Path"):
        return f.as_uri()
    if isinstance(f, (str, os.PathLike)):
        return os.fspath(f)
    raise InvalidInputError(f"input file {f!r} must be a path, an s3:// URI or an https:// URL")


def as_file_list(input_files: Any) -> list[str]:
    """Return the :func:`file_key` of each input file; a single path, URL or ``S3Path`` makes a list of one.

    Raises
    ------
    InvalidInputError
        ``input_files`` is empty or holds something that is not a file.
    """
    if isinstance(input_files, (str, os.PathLike)) or type(input_files).__name__.endswith("S3Path"):
        input_files = [input_files]
    files = [file_key(f) for f in input_files]
    if not files:
        raise InvalidInputError("input_files is empty")
    return files


def input_stem(file: str) -> str:
    """``Path(file).stem`` for a path, the stem of the URL path for a URL/URI."""
    return Path(urlparse(file).path).stem if is_remote(file) else Path(file).stem


def coordinate_key(coord: Any) -> str:
    """``"ra dec"`` in degrees with 8 decimals: the key of a coordinate in :attr:`ASDFCutout.cutouts_by_file`."""
    return coord.to_string(precision=8)


def is_array(value: Any) -> bool:
    """Return True if ``value`` is array-like (``shape`` and ``dtype``: ndarray, asdf lazy array, Quantity)."""
    return hasattr(value, "shape") and hasattr(value, "dtype") and not isinstance(value, (str, bytes))


def integer_fill(dtype: np.dtype, fill_value: Any) -> Any:
    """``fill_value`` for a float array; for an integer array ``int(fill_value)`` if representable, else 0."""
    if dtype.kind not in "iub":
        return fill_value
    try:
        f = float(fill_value)
    except (TypeError, ValueError):
        return 0
    if not math.isfinite(f) or not f.is_integer():
        return 0
    if dtype.kind == "b":
        return bool(f)
    info = np.iinfo(dtype)
    return int(f) if info.min <= f <= info.max else 0


def cut_array(array: Any, limits: np.ndarray, fill_value: Any) -> Any:
    """Cut ``limits`` out of an array of shape ``(..., ny, nx)``, reading only the overlapping part.

    Parameters
    ----------
    array : ndarray, memmap, asdf lazy array or Quantity
        The array; its last two axes are ``(y, x)``.
    limits : ndarray
        Half-open ``[[xmin, xmax], [ymin, ymax]]`` in original 0-based pixels, not clipped to the image.
    fill_value : int or float
        Value of the part outside the array (integer arrays: see :func:`integer_fill`).

    Returns
    -------
    ndarray or Quantity
        Shape ``(..., ymax - ymin, xmax - xmin)``, padded outside the array; the result owns its memory (it
        outlives the file). A Quantity stays a Quantity.
    """
    unit = getattr(array, "unit", None)
    values = array.value if unit is not None and hasattr(array, "value") else array
    dtype = np.dtype(values.dtype)
    out, _ = extract_padded(
        values, limits, tuple(values.shape), integer_fill(dtype, fill_value), dtype=dtype.newbyteorder("=")
    )
    if not out.flags.owndata:
        out = out.copy()
    return out * unit if unit is not None else out


def schema_required(node: Any) -> set[str]:
    """Names a tagged node's schema (roman_datamodels ``get_schema``) requires; empty for a plain dict."""
    get_schema = getattr(node, "get_schema", None)
    if get_schema is None:
        return set()
    try:
        return set(get_schema().get("required", []))
    except Exception as exc:  # schema lookup depends on the installed rad version
        log.debug("no schema for %s: %s", type(node).__name__, exc)
        return set()


def copy_node(node: Any) -> Any:
    """Return a shallow copy of a mapping node that keeps its class and tag.

    roman_datamodels nodes have ``copy``.
    """
    if isinstance(node, dict) or not hasattr(node, "copy"):
        return dict(node)
    return node.copy()


# ------------------------------------------------------------------------------------------------------------
# opening inputs
# ------------------------------------------------------------------------------------------------------------


@dataclass
class AsdfHandle:
    """An opened ASDF input.

    Holds ``af`` (the ``AsdfFile``) and, for a remote file, the :class:`skycut.core.remote_file.RemoteFile` it is
    read from (None for a local file).
    """

    name: str
    af: Any
    remote: RemoteFile | None = None
    _local: LocalFile | None = field(default=None, repr=False)

    @property
    def tree(self) -> Any:
        """The ``AsdfFile``'s tree."""
        return self.af.tree

    def _bytes(self) -> RemoteFile | LocalFile:
        if self.remote is not None:
            return self.remote
        if self._local is None:
            self._local = LocalFile(self.name, what="ASDF file")
        return self._local

    def close(self) -> None:
        """Release the local byte source opened for lz4 blocks (the ``AsdfFile`` is closed by :func:`open_asdf`)."""
        if self._local is not None:
            self._local.close()
            self._local = None

    def source(self, value: Any) -> Any:
        """Return what to cut ``value`` (an array of the tree) from, reading as little as possible.

        * lz4-compressed block (what roman_datamodels writes): a :class:`Lz4BlockView` that decompresses only
          the compression chunks holding the needed rows (local or remote).
        * uncompressed block of a remote file: a :class:`skycut.core.remote.RangeSection` fetching only the needed
          rows as byte ranges. (A local uncompressed block is memory-mapped by asdf already.)
        * anything else (zlib/bzp2 blocks, masked or inline arrays, Quantities): ``value`` itself, read whole.
        """
        layout = _block_layout(value)
        if layout is None:
            return value
        compression, offset, shape, dtype, used_size = layout
        if self.remote is None and compression != "lz4":
            return value
        if compression == "":
            return RangeSection(self._bytes(), offset, shape, dtype)
        if compression == "lz4":
            return Lz4BlockView(self._bytes(), offset, used_size, shape, dtype)
        log.debug("%s: %s-compressed array read whole", self.name, compression)
        return value


def _block_layout(value: Any) -> tuple[str, int, tuple[int, ...], np.dtype, int] | None:
    """Return the block layout of a lazily loaded asdf array, or None.

    The layout is ``(compression, data offset in the file, shape, dtype, stored block size)`` of an
    ``NDArrayType`` that is a plain C-ordered view of a whole block; anything else gives None.

    Uses asdf's block bookkeeping (``_data_callback``: block header and data offset, read without loading the
    data); any surprise in those internals gives None, i.e. the normal asdf read.
    """
    try:
        from asdf.tags.core import NDArrayType

        if not isinstance(value, NDArrayType) or value._array is not None or value._mask is not None:
            return None
        if isinstance(value._source, str) or value._strides is not None or value._order not in ("C", "A"):
            return None
        if int(value._offset or 0) != 0:
            return None
        callback = value._data_callback
        header = callback(_attr="header")
        if header["flags"] & 1:  # streamed block
            return None
        compression = bytes(header["compression"]).rstrip(b"\0").decode("ascii", "replace")
        shape = tuple(int(v) for v in value._shape)
        dtype = np.dtype(value._dtype)
        if dtype.hasobject or dtype.fields is not None or len(shape) < 2:
            return None
        if compression == "" and int(header["data_size"]) < int(np.prod(shape)) * dtype.itemsize:
            return None
        return compression, int(callback(_attr="data_offset")), shape, dtype, int(header["used_size"])
    except Exception as exc:  # asdf internals differ: fall back to a normal read
        log.debug("no block layout (%s: %s)", type(exc).__name__, exc)
        return None


@dataclass
class Lz4BlockView:
    """Lazy ``[..., y0:y1, x0:x1]`` access to an array stored in an asdf lz4-compressed block.

    asdf writes lz4 blocks as a sequence of chunks ``[4-byte big-endian compressed length][lz4 block with its
    4-byte little-endian uncompressed size][compressed data]``, each holding a fixed number of bytes of the
    C-ordered array (4 MiB by default). The chunk index is built by reading each chunk's 8 header bytes (stopping
    once past the last needed byte); only the chunks holding the needed rows are fetched (together, through
    ``source.read_ranges``) and decompressed. ``source`` is a :class:`skycut.core.remote_file.RemoteFile` or
    :class:`skycut.core.byte_sources.LocalFile`; ``offset`` the block's data offset in it.
    """

    source: RemoteFile | LocalFile
    offset: int
    used_size: int
    shape: tuple[int, ...]
    dtype: np.dtype
    _chunks: list[tuple[int, int, int, int]] = field(default_factory=list, repr=False)
    _end_of_index: bool = False

    def _index_until(self, stop: int) -> None:
        """Extend the chunk index ``(file offset, compressed length, first byte, n bytes)`` to cover ``stop``."""
        import struct

        end = self.offset + self.used_size
        while not self._end_of_index and (
            not self._chunks or self._chunks[-1][2] + self._chunks[-1][3] < stop
        ):
            if self._chunks:
                pos, clen, first, n = self._chunks[-1]
                pos, first = pos + clen, first + n
            else:
                pos, first = self.offset, 0
            if pos + 8 > end:
                self._end_of_index = True
                break
            head = self.source.read(pos, pos + 8)
            clen = struct.unpack("!I", head[:4])[0]
            n = struct.unpack("<I", head[4:8])[0]
            self._chunks.append((pos + 4, clen, first, n))

    def _read(self, start: int, stop: int) -> bytes:
        """Uncompressed bytes ``[start, stop)`` of the block."""
        import lz4.block

        self._index_until(stop)
        chunks = [c for c in self._chunks if c[2] < stop and c[2] + c[3] > start]
        if not chunks or chunks[0][2] > start or chunks[-1][2] + chunks[-1][3] < stop:
            raise InvalidInputError(f"{self.source.uri}: lz4 block shorter than its array")
        blobs = self.source.read_ranges([(c[0], c[0] + c[1]) for c in chunks])
        data = b"".join(lz4.block.decompress(blob) for blob in blobs)
        return data[start - chunks[0][2] : stop - chunks[0][2]]

    def __getitem__(self, key: Any) -> np.ndarray:
        """Read ``[..., y0:y1, x0:x1]``, decompressing only the chunks that hold those rows."""
        y0, y1, x0, x1, nplanes = window_key(key, self.shape, "Lz4BlockView")
        lead, (ny, nx) = self.shape[:-2], self.shape[-2:]
        size = self.dtype.itemsize
        out = np.empty((nplanes, y1 - y0, x1 - x0), dtype=self.dtype.newbyteorder("="))
        for plane in range(nplanes if y1 > y0 and x1 > x0 else 0):
            base = plane * ny * nx * size
            raw = self._read(base + y0 * nx * size, base + y1 * nx * size)
            rows = np.frombuffer(raw, dtype=self.dtype).reshape(y1 - y0, nx)
            out[plane] = rows[:, x0:x1]
        return out.reshape(lead + (y1 - y0, x1 - x0))


#: ASDF block magic, and the bytes of a block's start: magic, header size (2 bytes), the 48-byte header asdf writes
#: (flags, compression, allocated/used/data size, checksum).
_BLOCK_MAGIC = b"\xd3BLK"
_BLOCK_START = 4 + 2 + 48
_INDEX_HEADER = b"#ASDF BLOCK INDEX"
#: Bytes of the block index the last chunk asdf searches must hold for it to search no further (see _tail_start).
_TAIL_MIN = 2048
#: Blocks at most this long (magic to the next block) are fetched whole with the block headers: the small arrays
#: (a gwcs's coefficients, ...) asdf reads while it builds the tree.
_SMALL_BLOCK = 4096


def prefetch_asdf(source: RemoteFile) -> None:
    """Fetch what ``asdf.open`` reads from a remote ASDF file in three round trips and keep it in ``source``.

    asdf reads the YAML tree from the file's start, the block index from its end, then the header of each block
    (and the data of the small blocks the tree's objects are built from); through a file object each of those
    reads would be a request of its own, one after the other. Here:

    1. the file's first ``block_size`` bytes (64 KiB unless the user's ``block_size`` says otherwise) and its
       size (:meth:`RemoteFile.read_head`: both in flight together);
    2. the end of the file from where asdf starts searching for the block index (the last chunk of its
       ``io_block_size``, 8 KiB, or the last two when the last one is shorter than 2 KiB), and the next
       ``2 * block_size`` bytes if the tree runs past the first read (no block magic in it);
    3. the header of every block (magic, size and the 48-byte header: flags, compression, allocated, used and
       data size, checksum), whole blocks of at most 4 KiB, and the rest of the tree if it runs past the bytes
       read so far (its end is the first block's offset in the index); one request per range, all in flight
       together, touching ranges joined.

    Everything is kept (:meth:`RemoteFile.keep`), so ``asdf.open`` on :meth:`RemoteFile.open` reads from memory.
    A file without a block index (or with an unreadable one) skips step 3: asdf then reads what it needs as it
    goes, as it would anyway. The data of large blocks are not fetched here (:meth:`AsdfHandle.source` fetches a
    cutout's rows).
    """
    head = source.read_head()
    size = source.size
    if size <= len(head):
        return
    block_size = max(len(head), 1)
    tree_done = _BLOCK_MAGIC in head or _INDEX_HEADER in head
    tail_start = max(len(head), _tail_start(size))
    ranges = [(tail_start, size)]
    if not tree_done and tail_start > len(head):
        ranges.append((len(head), min(tail_start, len(head) + 2 * block_size)))
    for (a, _b), blob in zip(ranges, source.read_ranges(ranges), strict=True):
        source.keep(a, blob)
    tail = source.cached(tail_start, size)
    offsets = _block_index(tail)
    if not offsets:
        return
    wanted: list[tuple[int, int]] = []
    held = len(head) if tree_done or len(ranges) == 1 else ranges[1][1]
    if offsets[0] > held and not tree_done:  # the tree runs on to the first block
        wanted.append((held, offsets[0]))
    ends = [*offsets[1:], tail_start + tail.rfind(_INDEX_HEADER)]
    for start, end in zip(offsets, ends, strict=True):
        stop = end if 0 < end - start <= _SMALL_BLOCK else min(start + _BLOCK_START, size)
        if len(source.cached(start, stop)) < stop - start:
            wanted.append((start, stop))
    if wanted:
        fetch, _ = merge_range_groups([wanted])
        for (a, _b), blob in zip(fetch, source.read_ranges(fetch), strict=True):
            source.keep(a, blob)


def _tail_start(size: int) -> int:
    """Return where asdf's search for the block index starts reading (a multiple of its ``io_block_size``).

    asdf reads the file's last chunk of its block size first (8 KiB for a file object without a descriptor); when
    that chunk is shorter than :data:`_TAIL_MIN` the index probably starts in the one before, which is included.
    """
    import asdf

    chunk = asdf.get_config().io_block_size
    chunk = chunk if isinstance(chunk, int) and chunk > 0 else io.DEFAULT_BUFFER_SIZE
    start = (size - 1) // chunk * chunk
    if size - start < _TAIL_MIN:
        start -= chunk
    return max(0, start)


def _block_index(tail: bytes) -> list[int]:
    """Return the block offsets of the ASDF block index in ``tail`` (the file's last bytes); [] if none is there."""
    import yaml

    at = tail.rfind(_INDEX_HEADER)
    if at < 0:
        return []
    try:  # as asdf reads it: a YAML list of integers
        offsets = [int(v) for v in yaml.load(tail[at + len(_INDEX_HEADER) :], Loader=yaml.BaseLoader)]
    except Exception:  # noqa: BLE001 - no usable index: asdf reads the blocks as it goes
        return []
    return offsets if offsets and offsets == sorted(offsets) else []


@contextlib.contextmanager
def open_asdf(
    file: str, *, fsspec_kwargs: dict | None = None, asdf_kwargs: dict | None = None
) -> Iterator[AsdfHandle]:
    """Open a local or remote ASDF file lazily and yield an :class:`AsdfHandle`.

    Local files are memory-mapped (``memmap=True``); remote ones (``s3://``, ``https://``) are read through
    a :class:`skycut.core.remote_file.RemoteFile`: :func:`prefetch_asdf` fetches the tree, the block index and
    the block headers in three round trips before asdf parses them from memory, and :meth:`AsdfHandle.source`
    lets a cutout fetch only its rows. ``asdf_kwargs`` override the ``asdf.open``
    defaults (``lazy_load=True``). Raises :class:`InvalidInputError` naming the file when it is missing or not
    ASDF (and, for a remote file that cannot be read, the cause).
    """
    import asdf

    kwargs = {"lazy_load": True, **(asdf_kwargs or {})}
    fobj = remote = None
    try:
        if is_remote(file):
            kwargs.setdefault("memmap", False)
            remote = RemoteFile(file, fsspec_kwargs, what="remote ASDF file")
            prefetch_asdf(remote)
            fobj = remote.open()
            target: Any = fobj
        else:
            if not Path(file).is_file():
                raise InvalidInputError(f"{file}: no such file")
            kwargs.setdefault("memmap", True)
            target = file
        try:
            af = asdf.open(target, **kwargs)
        except Exception as exc:
            raise InvalidInputError(
                f"{file} is not a readable ASDF file ({type(exc).__name__}: {exc})"
            ) from exc
        handle = AsdfHandle(file, af, remote)
        try:
            yield handle
        finally:
            handle.close()
            af.close()
    finally:
        if fobj is not None:
            with contextlib.suppress(Exception):
                fobj.close()


def roman_parts(tree: Any, file: str) -> tuple[Any, Any, Any]:
    """``(roman node, gwcs, science data)`` of an opened ASDF tree, or :class:`InvalidInputError` naming ``file``."""
    roman = tree.get(MISSION_KEY) if hasattr(tree, "get") else None
    if roman is None or not hasattr(roman, "keys"):
        raise InvalidInputError(f"{file}: no '{MISSION_KEY}' node in the ASDF tree (not a Roman image)")
    meta = roman.get("meta")
    gw = meta.get("wcs") if hasattr(meta, "get") else None
    if not is_gwcs(gw):
        raise InvalidInputError(
            f"{file}: tree['{MISSION_KEY}']['meta']['wcs'] is missing or not a gwcs (got {type(gw).__name__})"
        )
    data = roman.get("data")
    if not is_array(data) or len(data.shape) != 2:
        raise InvalidInputError(f"{file}: tree['{MISSION_KEY}']['data'] is not a 2-D image array")
    return roman, gw, data


# ------------------------------------------------------------------------------------------------------------
# results
# ------------------------------------------------------------------------------------------------------------


class CutoutList(list):
    """A list of cutout objects that also answers astrocut 1.4.0's table-style access.

    A list is what the astrocut documentation describes; ``lst["cutout"]``, ``lst["file"]``,
    ``lst["coordinate"]`` and :meth:`to_table` give the table view.
    """

    def __init__(self, values: Sequence[Any], files: Sequence[str], coordinates: Sequence[Any]):
        super().__init__(values)
        self._files = list(files)
        self._coordinates = list(coordinates)

    def __getitem__(self, index: Any) -> Any:
        """Return an item or slice, or a column (``"file"``, ``"coordinate"``, ``"cutout"``) as a list."""
        if isinstance(index, str):
            if index == "cutout":
                return list(self)
            if index == "file":
                return list(self._files)
            if index == "coordinate":
                return list(self._coordinates)
            raise KeyError(f"no column {index!r}; columns are 'file', 'coordinate', 'cutout'")
        return super().__getitem__(index)

    @property
    def colnames(self) -> list[str]:
        """The table-style column names: ``["file", "coordinate", "cutout"]``."""
        return ["file", "coordinate", "cutout"]

    def to_table(self) -> Any:
        """Return an astropy ``Table``: columns ``file``, ``coordinate`` (SkyCoord) and ``cutout`` (objects)."""
        return make_table(self._files, self._coordinates, list(self))


class CoordinateCutouts(list):
    """The cutouts of one input file, as a list that is also indexable by coordinate key.

    A list in coordinate order, also indexable by coordinate key (``"ra dec"``, 8 decimals), with ``keys()``,
    ``values()`` and ``items()`` like astrocut 1.4.0's dict.
    """

    def __init__(self, items: Sequence[tuple[str, Any]] = ()):
        super().__init__(v for _, v in items)
        self._keys = [k for k, _ in items]

    def __getitem__(self, index: Any) -> Any:
        """Return an item or slice, or the cutout of a coordinate key (``KeyError`` if unknown)."""
        if isinstance(index, str):
            try:
                return super().__getitem__(self._keys.index(index))
            except ValueError:
                raise KeyError(index) from None
        return super().__getitem__(index)

    def __contains__(self, item: Any) -> bool:
        """Test a coordinate key (a str) against the keys, anything else against the cutouts."""
        return item in self._keys if isinstance(item, str) else super().__contains__(item)

    def keys(self) -> list[str]:
        """Return the coordinate keys, in coordinate order."""
        return list(self._keys)

    def values(self) -> list[Any]:
        """Return the cutouts, in coordinate order."""
        return list(self)

    def items(self) -> list[tuple[str, Any]]:
        """Return ``(coordinate key, cutout)`` pairs, in coordinate order."""
        return list(zip(self._keys, self, strict=True))


def make_table(files: Sequence[str], coordinates: Sequence[Any], values: Sequence[Any]) -> Any:
    """Build an astropy ``Table``: columns ``file``, ``coordinate`` (SkyCoord) and ``cutout`` (objects)."""
    from astropy.coordinates import SkyCoord
    from astropy.table import Table

    t = Table()
    t["file"] = np.array(list(files), dtype=str) if files else np.array([], dtype=str)
    t["coordinate"] = SkyCoord(list(coordinates)) if coordinates else SkyCoord([], [], unit="deg")
    col = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):
        col[i] = v
    t["cutout"] = col
    return t


def separation_deg(ra1: float, dec1: float, ra2: float, dec2: float) -> float:
    """Great-circle distance in degrees (haversine)."""
    a1, d1, a2, d2 = (math.radians(v) for v in (ra1, dec1, ra2, dec2))
    h = math.sin((d2 - d1) / 2) ** 2 + math.cos(d1) * math.cos(d2) * math.sin((a2 - a1) / 2) ** 2
    return math.degrees(2 * math.asin(min(1.0, math.sqrt(h))))


def asdf_metadata_hdu(tree: dict) -> Any:
    """Embed ``tree`` in a ``BinTableHDU`` named ``ASDF``.

    The table has one row and one column ``ASDF_METADATA`` (``uint8`` array) holding a serialized ASDF file of
    ``tree`` (no arrays expected). Read it back with :func:`read_asdf_metadata`.
    """
    import asdf
    from astropy.io import fits

    buf = io.BytesIO()
    settle_asdf_history(asdf.AsdfFile(tree)).write_to(buf)
    raw = np.frombuffer(buf.getvalue(), dtype=np.uint8)
    col = fits.Column(name="ASDF_METADATA", format=f"{raw.size}B", array=raw.reshape(1, -1))
    return fits.BinTableHDU.from_columns([col], name="ASDF")


def read_asdf_metadata(hdul: Any) -> Any:
    """Open the ASDF metadata embedded by :func:`asdf_metadata_hdu` in ``hdul["ASDF"]``.

    Returns
    -------
    asdf.AsdfFile
        Use it as a context manager.
    """
    import asdf

    raw = np.asarray(hdul["ASDF"].data["ASDF_METADATA"][0], dtype=np.uint8)
    return asdf.open(io.BytesIO(raw.tobytes()))


def output_kind(output_format: str) -> str:
    """Return ``"asdf"`` or ``"fits"`` for ``output_format`` (``".asdf"``; ``".fits"``, ``".fit"``, ``".fts"``).

    Raises
    ------
    InvalidInputError
        Any other format.
    """
    kind = str(output_format).lower().lstrip(".")
    if kind in ("asdf",):
        return "asdf"
    if kind in ("fits", "fit", "fts"):
        return "fits"
    raise InvalidInputError(f"output_format {output_format!r} must be '.asdf' or '.fits'")
