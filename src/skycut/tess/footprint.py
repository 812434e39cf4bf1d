"""Footprint cutouts: find the TESS cubes in the cloud whose FFI footprints overlap a cutout, and cut them.

The footprint file (astrocut's ``tess_ffi_footprint_cache.json`` on MAST's public S3 bucket) is a JSON dict of
equal-length column lists; skycut uses ``s_region`` (``"POLYGON ra1 dec1 ra2 dec2 ..."``, degrees),
``sequence_number`` (TESS sector), ``target_name`` (``"TESS FFI"``) and ``obs_id`` (``tess-sSSSS-C-C``);
the cube of a row is ``{cube_base_uri}{obs_id}-cube.fits``.

Differences from astrocut 1.4.0:

* Spatial matching uses astropy/numpy only (no ``spherical_geometry``), exactly on the tangent plane at the
  target, with a true angular box (:mod:`skycut.tess.footprint_match`; astrocut adds the RA half-width to RA
  directly, forgetting ``cos(dec)``).
* The parsed footprint table is cached on disk (default ``$SKYCUT_CACHE_DIR`` or ``~/.cache/skycut``), keyed
  by the URI and the remote file's ETag and size, so a new process revalidates with one metadata request
  instead of re-downloading; it is also cached in memory for 15 minutes per process.
* Several coordinates are accepted: each is matched on its own, each cube is cut at the coordinates it holds.
* ``fsspec_kwargs`` reach both the footprint file and the cubes (e.g. a private or loopback S3 endpoint).
* ``footprint_uri=None`` finds the sectors, cameras and CCDs offline instead, from tess-point's pointing table
  and camera geometry (:func:`skycut.tess.sectors.find_sectors`, vectorised): no footprint file and no network
  until the cubes are read. A cube matches when the cutout box, aligned with the CCD, touches its science
  pixels. The default stays MAST's footprint file, as astrocut's documentation promises matches against the
  cube files available in the cloud: tess-point's table also holds planned sectors, whose cubes do not exist
  yet, so an offline search should name its sectors (``sequence``); a planned cube is then skipped with a
  :class:`DataWarning` saying it was not found.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
import threading
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..core.atomic import atomic_output
from ..core.coords import parse_coordinates, parse_size, size_label
from ..exceptions import DataWarning, InvalidInputError, InvalidQueryError
from .footprint_match import (
    ARCSEC_PER_PX,
    _match_box_px,
    _match_rows,
    _rings_of,
    parse_s_region,
    ra_dec_crossmatch,
)

if TYPE_CHECKING:  # pragma: no cover
    from astropy.table import Table

log = logging.getLogger(__name__)

S3_FOOTPRINT_CACHE = "s3://stpubdata/tess/public/footprints/tess_ffi_footprint_cache.json"
S3_BASE_FILE_PATH = "s3://stpubdata/tess/public/mast/"
MEMORY_TTL_S = 900.0
_OBS_ID = re.compile(r"tess-s(?P<sector>\d{4})-(?P<camera>\d{1,4})-(?P<ccd>\d{1,4})")
_REQUIRED = ("s_region", "sequence_number", "target_name", "obs_id")

_memory: dict[str, tuple[float, Table]] = {}
_memory_lock = threading.Lock()


# --------------------------------------------------------------------------------------------- footprint file


def default_cache_dir() -> Path:
    """``$SKYCUT_CACHE_DIR``, else ``$XDG_CACHE_HOME/skycut``, else ``~/.cache/skycut``."""
    if os.environ.get("SKYCUT_CACHE_DIR"):
        return Path(os.environ["SKYCUT_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "skycut"


def _fingerprint(fs, path: str) -> str:
    info = fs.info(path)
    etag = str(info.get("ETag") or info.get("etag") or "").strip('"')
    stamp = "" if etag else str(info.get("mtime") or info.get("LastModified") or info.get("created") or "")
    return f"{etag}|{info.get('size')}|{stamp}"


def _table_from_json(payload: Any, uri: str) -> Table:
    from astropy.table import Table

    if isinstance(payload, list):  # list of records
        payload = {k: [r.get(k) for r in payload] for k in (payload[0] if payload else {})}
    if not isinstance(payload, dict):
        raise InvalidInputError(f"{uri}: footprint file must be a JSON object of column lists")
    missing = [c for c in _REQUIRED if c not in payload]
    if missing:
        raise InvalidInputError(f"{uri}: footprint file lacks column(s) {missing}")
    n = len(payload["s_region"])
    columns = {}
    for name, values in payload.items():
        if not isinstance(values, list) or len(values) != n:
            raise InvalidInputError(f"{uri}: column {name!r} is not a list of {n} values")
        arr = np.asarray(values)
        if arr.dtype == object or arr.ndim != 1:
            arr = np.array(["" if v is None else str(v) for v in values])
        columns[name] = arr
    table = Table(columns)
    polygons = np.empty(n, dtype=object)
    for i, s in enumerate(table["s_region"]):
        try:
            polygons[i] = parse_s_region(s)
        except InvalidInputError as exc:
            raise InvalidInputError(f"{uri}: row {i}: {exc}") from exc
    table["polygon"] = polygons
    return table


def _save_npz(table: Table, path: Path) -> None:
    arrays: dict[str, np.ndarray] = {}
    for name in table.colnames:
        if name != "polygon":
            arrays[f"col:{name}"] = np.asarray(table[name])
    rings = [ring for rings in table["polygon"] for ring in rings]
    arrays["_ring_counts"] = np.array([len(r) for r in table["polygon"]], dtype=np.int64)
    arrays["_vertex_counts"] = np.array([len(r) for r in rings], dtype=np.int64)
    arrays["_vertices"] = np.concatenate(rings) if rings else np.zeros((0, 2))
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    with atomic_output(path) as tmp:
        Path(tmp).write_bytes(buf.getvalue())


def _load_npz(path: Path) -> Table:
    from astropy.table import Table

    with np.load(path, allow_pickle=False) as z:
        table = Table({k[4:]: z[k] for k in z.files if k.startswith("col:")})
        vertices = (
            np.split(z["_vertices"], np.cumsum(z["_vertex_counts"])[:-1]) if len(z["_vertex_counts"]) else []
        )
        per_row = np.split(np.arange(len(vertices)), np.cumsum(z["_ring_counts"])[:-1])
    polygons = np.empty(len(table), dtype=object)
    for i, idx in enumerate(per_row[: len(table)]):
        polygons[i] = [vertices[j] for j in idx]
    table["polygon"] = polygons
    return table


def get_ffis(
    footprint_uri: str = S3_FOOTPRINT_CACHE,
    *,
    fsspec_kwargs: dict | None = None,
    cache_dir: str | os.PathLike | None = None,
    refresh: bool = False,
) -> Table:
    """Load the footprint table: the JSON's columns plus ``polygon``.

    ``polygon`` holds a list of ``(n, 2)`` ra/dec arrays per row.

    Cached in memory (per URI and endpoint, :data:`MEMORY_TTL_S`) and on disk under ``cache_dir`` as
    ``footprints/<hash of endpoint + URI>-<hash of ETag, size>.npz``: a new process sends one metadata request
    (HEAD) and downloads the file only when it changed. If the remote cannot be reached, the newest disk copy
    is used with a :class:`DataWarning`. ``refresh=True`` ignores both caches.
    """
    uri = os.fspath(footprint_uri)
    endpoint = str((fsspec_kwargs or {}).get("endpoint_url") or "")
    memory_key = f"{endpoint}|{uri}"
    now = time.monotonic()
    with _memory_lock:
        hit = _memory.get(memory_key)
    if hit and not refresh and now - hit[0] < MEMORY_TTL_S:
        return hit[1]

    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    folder = folder / "footprints"
    uri_key = hashlib.sha256(memory_key.encode()).hexdigest()[:16]
    from ..core.remote import describe_error, filesystem

    fs, path = filesystem(uri, fsspec_kwargs, what="footprint file")
    try:
        fingerprint = _fingerprint(fs, path)
    except Exception as exc:  # network trouble: fall back to the newest disk copy
        cause = describe_error(exc)  # fsspec's http "not found" may hide a refused connection: read the chain
        if cause.startswith("not found"):
            raise InvalidInputError(f"footprint file {uri} does not exist ({cause})") from exc
        old = sorted(folder.glob(f"{uri_key}-*.npz"), key=lambda p: p.stat().st_mtime)
        if not old:
            raise InvalidInputError(f"cannot reach footprint file {uri}: {cause}") from exc
        warnings.warn(
            f"cannot reach {uri} ({cause}); using the cached copy {old[-1].name}", DataWarning, stacklevel=2
        )
        table = _load_npz(old[-1])
    else:
        cached = folder / f"{uri_key}-{hashlib.sha256(fingerprint.encode()).hexdigest()[:16]}.npz"
        table = None
        if cached.exists() and not refresh:
            try:
                table = _load_npz(cached)
                log.debug("footprints of %s loaded from %s", uri, cached)
            except Exception as exc:  # corrupt cache: re-download
                log.warning("ignoring unreadable footprint cache %s (%s)", cached, exc)
        if table is None:
            try:
                payload = json.loads(fs.cat_file(path))
            except json.JSONDecodeError as exc:
                raise InvalidInputError(f"{uri}: not valid JSON ({exc})") from exc
            table = _table_from_json(payload, uri)
            try:
                _save_npz(table, cached)
                for stale in folder.glob(f"{uri_key}-*.npz"):
                    if stale != cached:
                        stale.unlink(missing_ok=True)
            except OSError as exc:
                log.warning("cannot write footprint cache %s (%s)", cached, exc)
            log.debug("footprints of %s downloaded (%d rows)", uri, len(table))
    _rings_of(table)
    with _memory_lock:
        _memory[memory_key] = (now, table)
    return table


def clear_memory_cache() -> None:
    """Forget the in-process footprint tables (the disk cache stays)."""
    with _memory_lock:
        _memory.clear()


# --------------------------------------------------------------------------------------------- TESS specifics


def _sequence_list(sequence: Any) -> list[int] | None:
    if sequence is None:
        return None
    values = [sequence] if isinstance(sequence, (int, np.integer, str)) else list(sequence)
    try:
        return [int(v) for v in values]
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"sequence must be an int or a list of ints, got {sequence!r}") from exc


def _tess_rows(table: Table) -> list[dict]:
    """Sector/camera/ccd of the TESS FFI rows (other rows are skipped)."""
    out = []
    for row in table:
        if str(row["target_name"]).upper() != "TESS FFI":
            continue
        m = _OBS_ID.match(str(row["obs_id"]))
        if m:
            out.append(
                {
                    "sectorName": str(row["obs_id"]),
                    "sector": int(m["sector"]),
                    "camera": int(m["camera"]),
                    "ccd": int(m["ccd"]),
                }
            )
    return out


def _filter_sequence(ffis: Table, sequence: list[int] | None) -> Table:
    if sequence is None:
        return ffis
    keep = np.isin(np.asarray(ffis["sequence_number"]).astype(int), sequence)
    if not keep.any():
        raise InvalidQueryError("no footprints for sequence(s) " + ", ".join(str(s) for s in sequence))
    return ffis[keep]


def cube_uri(base_uri: str, obs_id: str) -> str:
    """``{base_uri}{obs_id}-cube.fits`` (a ``/`` is added to the base when missing)."""
    return f"{base_uri if base_uri.endswith('/') else base_uri + '/'}{obs_id}-cube.fits"


class TessFootprintCutout:
    """Cutouts of the TESS cubes (in the cloud) whose FFI footprints overlap the requested cutout(s).

    Parameters
    ----------
    coordinates : SkyCoord, str, or list
        Cutout centre(s); each is matched separately and every cube is cut at the coordinates it holds.
    cutout_size : int, (nx, ny), Quantity
        Cutout size (pixels or angle; x = CCD columns).
    fill_value : float
        Value of pixels off the CCD.
    limit_rounding_method : {"round", "ceil", "floor"}
        Passed to :class:`skycut.tess.cube_cutout.TessCubeCutout`.
    sequence : int or list of int, optional
        Restrict to these sectors.
    verbose : bool
        Passed to the cube cutter.
    footprint_uri : str or None
        The footprint JSON (default: MAST's public file); None finds the cubes offline with tess-point's
        geometry (:func:`skycut.tess.sectors.find_sectors`; give ``sequence``, as tess-point's table includes
        planned sectors).
    cube_base_uri : str
        Prefix of the cube URIs.
    fsspec_kwargs : dict, optional
        fsspec/s3fs options for the footprint file and the cubes (``anon`` defaults to True on S3).
    threads : int or "auto"
        Parallel ranged requests per cube.
    cache_dir : path-like, optional
        Footprint cache directory (default :func:`default_cache_dir`).

    Attributes
    ----------
    matches : Table
        ``sectorName, sector, camera, ccd, coordinate`` (index into the coordinates), ``cube`` (URI).
    tess_cube_cutouts : list of TessCubeCutout
        One per matching cube (``tess_cube_cutout`` is the first, as in astrocut).
    cutouts_by_file, cutouts, tpf_cutouts_by_file, tpf_cutouts
        As :class:`skycut.tess.cube_cutout.TessCubeCutout`, keyed by cube URI.
    """

    ARCSEC_PER_PX = ARCSEC_PER_PX
    S3_FOOTPRINT_CACHE = S3_FOOTPRINT_CACHE
    S3_BASE_FILE_PATH = S3_BASE_FILE_PATH

    def __init__(
        self,
        coordinates: Any,
        cutout_size: Any = 25,
        fill_value: float = np.nan,
        limit_rounding_method: str = "round",
        sequence: Any = None,
        verbose: bool = False,
        *,
        footprint_uri: str | None = S3_FOOTPRINT_CACHE,
        cube_base_uri: str = S3_BASE_FILE_PATH,
        fsspec_kwargs: dict | None = None,
        threads: int | str = 8,
        cache_dir: str | os.PathLike | None = None,
    ):
        self._coordinates = parse_coordinates(coordinates)
        self._cutout_size = parse_size(cutout_size)
        self._fill_value = fill_value
        self._rounding = limit_rounding_method
        self._sequence = _sequence_list(sequence)
        self._verbose = verbose
        self.footprint_uri = footprint_uri
        self.cube_base_uri = cube_base_uri
        self._fsspec_kwargs = fsspec_kwargs
        self._threads = threads
        self._cache_dir = cache_dir
        self.tess_cube_cutouts: list[Any] = []
        self.cutout()

    def _match(self) -> Table:
        from astropy.table import Table

        box = _match_box_px(self._cutout_size, self.ARCSEC_PER_PX)
        rows = []
        if self.footprint_uri is None:
            from .sectors import find_sectors, obs_id

            found = find_sectors(
                self._coordinates.ra.deg,
                self._coordinates.dec.deg,
                box,
                self._sequence,
                pixel_scale=self.ARCSEC_PER_PX,
            )
            for r in found:
                name = obs_id(r["sector"], r["camera"], r["ccd"])
                rows.append(
                    {
                        "sectorName": name,
                        "sector": int(r["sector"]),
                        "camera": int(r["camera"]),
                        "ccd": int(r["ccd"]),
                        "coordinate": int(r["target"]),
                        "cube": cube_uri(self.cube_base_uri, name),
                    }
                )
            rows.sort(key=lambda r: (r["sector"], r["camera"], r["ccd"], r["coordinate"]))
        else:
            ffis = _filter_sequence(
                get_ffis(self.footprint_uri, fsspec_kwargs=self._fsspec_kwargs, cache_dir=self._cache_dir),
                self._sequence,
            )
            for k, coord in enumerate(self._coordinates):
                hit = ffis[_match_rows(ffis, coord, box, self.ARCSEC_PER_PX)]
                for info in _tess_rows(hit):
                    rows.append(
                        {**info, "coordinate": k, "cube": cube_uri(self.cube_base_uri, info["sectorName"])}
                    )
        names = ["sectorName", "sector", "camera", "ccd", "coordinate", "cube"]
        if not rows:
            where = " in sector(s) " + ", ".join(map(str, self._sequence)) if self._sequence else ""
            coords = ", ".join(f"({c.ra.deg:.6f}, {c.dec.deg:.6f})" for c in self._coordinates)
            raise InvalidQueryError(f"no TESS FFI footprint{where} overlaps the cutout at {coords}")
        return Table(
            rows=[[r[n] for n in names] for r in rows],
            names=names,
            dtype=["U40", "i4", "i4", "i4", "i4", "U1024"],
        )

    def cutout(self) -> None:
        """Match the footprints and cut every matching cube (run by the constructor)."""
        from .cube_cutout import TessCubeCutout

        self.matches = self._match()
        log.debug("%d footprint match(es)", len(self.matches))
        self.tess_cube_cutouts = []
        problems = []
        for uri in dict.fromkeys(str(u) for u in self.matches["cube"]):
            idx = sorted({int(k) for k in self.matches["coordinate"][self.matches["cube"] == uri]})
            try:
                cut = TessCubeCutout(
                    uri,
                    self._coordinates[idx],
                    self._cutout_size,
                    self._fill_value,
                    self._rounding,
                    threads=self._threads,
                    verbose=self._verbose,
                    fsspec_kwargs=self._fsspec_kwargs,
                )
            except (InvalidQueryError, InvalidInputError) as exc:
                # the box touches the footprint but not the CCD pixels, or the cube is missing/unreadable
                problems.append(f"{uri}: {exc}")
                continue
            self.tess_cube_cutouts.append(cut)
        if not self.tess_cube_cutouts:
            raise InvalidQueryError("no matching cube holds the cutout: " + "; ".join(problems))
        for p in problems:
            warnings.warn(p + "; skipped", DataWarning, stacklevel=2)

    @property
    def tess_cube_cutout(self) -> Any:
        """The first :class:`TessCubeCutout` (as in astrocut), or None if there is none."""
        return self.tess_cube_cutouts[0] if self.tess_cube_cutouts else None

    @property
    def cutouts_by_file(self) -> dict:
        """``{cube URI: [CubeCutoutInstance, ...]}`` over every matching cube."""
        return {k: v for cut in self.tess_cube_cutouts for k, v in cut.cutouts_by_file.items()}

    @property
    def cutouts(self) -> list:
        """Every cutout (:class:`CubeCutoutInstance`), cube by cube."""
        return [c for cut in self.tess_cube_cutouts for c in cut.cutouts]

    @property
    def tpf_cutouts_by_file(self) -> dict:
        """``{cube URI: [HDUList, ...]}``: one target pixel file per cutout, over every matching cube."""
        return {k: v for cut in self.tess_cube_cutouts for k, v in cut.tpf_cutouts_by_file.items()}

    @property
    def tpf_cutouts(self) -> list:
        """Every target pixel file (``HDUList``), in :attr:`cutouts` order."""
        return [h for cut in self.tess_cube_cutouts for h in cut.tpf_cutouts]

    def write_as_tpf(self, output_dir: str | os.PathLike = ".", legacy_filenames: bool = False) -> list[str]:
        """Write every cutout as a TPF in ``output_dir``; returns the paths (astrocut's names)."""
        return [
            p
            for cut in self.tess_cube_cutouts
            for p in cut.write_as_tpf(output_dir, legacy_filenames=legacy_filenames)
        ]

    def write_as_zip(
        self,
        output_dir: str | os.PathLike = ".",
        filename: str | os.PathLike | None = None,
        legacy_filenames: bool = False,
    ) -> str:
        """Write all TPFs into one zip archive; returns its path."""
        from ..core.atomic import write_zip

        if filename is None:
            c = self._coordinates[0]
            filename = (
                f"astrocut_{c.ra.deg:.7f}_{c.dec.deg:.7f}_{size_label(self._cutout_size)}.zip"
                if len(self._coordinates) == 1
                else "astrocut_tpf_cutouts.zip"
            )
        members = (
            (c.filename(self._cutout_size, legacy_filenames), c.tpf_bytes())
            for cut in self.tess_cube_cutouts
            for c in cut.cutouts
        )
        return write_zip(members, output_dir, filename)


def cube_cut_from_footprint(
    coordinates: Any,
    cutout_size: Any,
    sequence: Any = None,
    memory_only: bool = False,
    output_dir: str | os.PathLike = ".",
    verbose: bool = False,
    legacy_filenames: bool = False,
    **kwargs: Any,
) -> list:
    """Cut the cloud TESS cubes overlapping the cutout(s) (astrocut's ``cube_cut_from_footprint``).

    Parameters
    ----------
    coordinates : SkyCoord, str, or list
        Cutout centre(s).
    cutout_size : int, (nx, ny), Quantity
        Cutout size in pixels or angular units.
    sequence : int or list of int, optional
        Restrict to these sectors.
    memory_only : bool
        Return the TPFs as ``HDUList`` objects instead of writing them.
    output_dir : str or path-like
        Files are written flat into ``output_dir`` (astrocut's names).
    verbose : bool
        Log progress at DEBUG level on the ``skycut`` logger.
    legacy_filenames : bool
        astrocut's old TPF names.
    **kwargs
        :class:`TessFootprintCutout`'s keywords (``footprint_uri``, ``cube_base_uri``, ``fsspec_kwargs``,
        ``threads``, ``cache_dir``, ``fill_value``, ``limit_rounding_method``).

    Returns
    -------
    list of str or list of HDUList
        TPF paths, or HDULists with ``memory_only``.

    Raises
    ------
    InvalidQueryError
        No matching cube holds the cutout, or there is no footprint for the given sectors.
    """
    cut = TessFootprintCutout(coordinates, cutout_size, sequence=sequence, verbose=verbose, **kwargs)
    if memory_only:
        return cut.tpf_cutouts
    return cut.write_as_tpf(output_dir, legacy_filenames=legacy_filenames)


def get_tess_sectors(
    coordinates: Any,
    cutout_size: Any,
    *,
    sequence: Any = None,
    footprint_uri: str | None = S3_FOOTPRINT_CACHE,
    fsspec_kwargs: dict | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> Table:
    """Find the TESS sectors/cameras/CCDs whose FFI footprints overlap the cutout(s).

    With size 0, the footprints that contain the point.

    Parameters
    ----------
    coordinates : SkyCoord, str, or list
        Cutout centre(s).
    cutout_size : int, (nx, ny), Quantity
        Cutout size, rounded to whole 21" pixels; ``0`` matches the point.
    sequence : int or list of int, optional
        Restrict to these sectors.
    footprint_uri : str or None
        The footprint JSON (default: MAST's public file, the cubes MAST has released); None searches offline
        with tess-point's geometry (:func:`skycut.tess.sectors.get_tess_sectors`: the CCD-aligned box touches
        the science pixels; tess-point's table includes planned sectors, so give ``sequence``).
    fsspec_kwargs : dict, optional
        Options for reading the footprint file.
    cache_dir : path-like, optional
        Footprint cache directory.

    Returns
    -------
    Table
        ``sectorName`` (str), ``sector``, ``camera``, ``ccd`` (int32), one row per distinct CCD, sorted by
        sector; empty (same columns) when nothing matches.
    """
    from astropy.table import Table

    if footprint_uri is None:
        from . import sectors

        return sectors.get_tess_sectors(
            coordinates,
            _match_box_px(cutout_size, ARCSEC_PER_PX, point_match=True),
            sequence=_sequence_list(sequence),
            pixel_scale=ARCSEC_PER_PX,
        )
    ffis = get_ffis(footprint_uri, fsspec_kwargs=fsspec_kwargs, cache_dir=cache_dir)
    seq = _sequence_list(sequence)
    if seq is not None:
        keep = np.isin(np.asarray(ffis["sequence_number"]).astype(int), seq)
        ffis = ffis[keep]
    rows = {r["sectorName"]: r for r in _tess_rows(ra_dec_crossmatch(ffis, coordinates, cutout_size))}
    ordered = sorted(rows.values(), key=lambda r: (r["sector"], r["camera"], r["ccd"]))
    return Table(
        rows=[(r["sectorName"], r["sector"], r["camera"], r["ccd"]) for r in ordered] or None,
        names=["sectorName", "sector", "camera", "ccd"],
        dtype=["U20", "i4", "i4", "i4"],
    )
