"""One TESS cube opened for cutting: its WCS, TPF metadata and cutouts (the machinery under the cube cutout API).

* :class:`_CubeSession` — an opened cube (a :class:`~skycut.tess.cube_reader.CubeReader`, the SIP WCS of the FFI
  nearest the middle of the cube with a usable WCS, the :class:`~skycut.tess.tpf.CubeMeta` every TPF of the cube
  shares); it locates targets, reads and pads their blocks, and fits the cutouts' linear WCS a few at a time
  (:func:`_fit_chunks`, at most :data:`FIT_CHUNK` together).
* :class:`CubeCutoutInstance` — one cutout of one cube at one coordinate, and its target pixel file (bytes,
  ``HDUList``, buffers, or written to a path).
* :func:`cube_meta` — what the TPFs of one cube share, from its primary header and FFI table; the small helpers
  :func:`_limits`, :func:`_clip`, :func:`_plain`, :func:`_where` shared by :mod:`skycut.tess.cube_cutout` (the
  astrocut API) and :mod:`skycut.tess.cube_batch` (the workflow's batch entry point).

Pixel conventions: 0-based, ``x`` = CCD column (cube axis 1), ``y`` = CCD row (cube axis 0); a cube block read for
a cutout is ``(ny, nx, ntime, 2)`` (flux, uncertainty) and cutout arrays are ``(ntime, ny, nx)``;
``cutout_lims = [[xmin, xmax], [ymin, ymax]]`` half-open and unclipped (padding off the CCD is ``fill_value``).
"""

from __future__ import annotations

import logging
import os
import threading
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..core import geometry
from ..core.coords import CutoutSize, pixel_scales_deg, size_label
from ..core.fits_bytes import filter_cards, format_card
from ..core.tansip import LinearFit, TanSip, fit_linear_tan, fit_linear_tans, linear_wcs
from ..exceptions import InvalidInputError
from .cube_reader import CubeReader, cube_stem
from .cube_wcs import cube_wcs_from_row, cube_wcs_row, physical_origin
from .tpf import (
    IMAGE_KEYWORDS,
    REMOVED_PRIMARY,
    CubeMeta,
    TpfCutout,
    tpf_bytes,
    tpf_hdulist,
    tpf_parts,
)

log = logging.getLogger(__name__)


# ------------------------------------------------------------------------------------------ small helpers


def _limits(center_xy: tuple[float, float], shape_xy: tuple[int, int], method: str) -> np.ndarray:
    """``[[xmin, xmax], [ymin, ymax]]`` of exactly ``shape_xy`` pixels; ``method`` rounds the lower edge."""
    return geometry.cutout_limits(center_xy, shape_xy, method)


def _clip(lims: np.ndarray, nrows: int, ncols: int) -> tuple[list, tuple[slice, slice]] | None:
    """Clipped ``[[x0, x1], [y0, y1]]`` of ``lims`` on the CCD and the matching ``(dy, dx)`` slices of the cutout."""
    ov = geometry.overlap(lims, (nrows, ncols))
    if ov is None:
        return None
    sy, sx, dy, dx = ov
    return [[sx.start, sx.stop], [sy.start, sy.stop]], (dy, dx)


def cube_meta(reader: CubeReader, row: int) -> CubeMeta:
    """Everything the TPFs of one cube share, from its primary header and FFI table (``row`` = WCS row)."""
    t = reader.table
    n = reader.ntime

    def col(name: str, default: float) -> np.ndarray:
        values = t.get(name)
        if values is None or len(values) != n:
            return np.full(n, default)
        return np.asarray(values)

    tstart, tstop = col("TSTART", np.nan).astype(float), col("TSTOP", np.nan).astype(float)
    names = t.get("FFI_FILE")
    names = np.asarray(names).astype(str) if names is not None and len(names) == n else np.array([""] * n)
    image_cards = [format_card(k, _plain(t[k][row])) for k in IMAGE_KEYWORDS if k in t]
    image_cards.append(format_card("WCS_FFI", str(names[row]), "FFI used for cutout WCS"))
    pv = reader.primary.values
    p_start, p_stop = pv.get("TSTART"), pv.get("TSTOP")
    return CubeMeta(
        primary_cards=filter_cards(reader.primary.cards, REMOVED_PRIMARY),
        time=(tstart + tstop) / 2.0,
        timecorr=col("BARYCORR", 0.0).astype(float),
        cadenceno=np.arange(n, dtype=np.int64),
        # QUALITY = the FFIs' DQUALITY: SPOC's bits (1..32768) as the FFI headers gave them, plus skycut's bit
        # cube_table.NONFINITE_FFI_BIT (65536), set by the cube builder on FFIs whose science image has no finite
        # pixel (all NaN/inf)
        quality=col("DQUALITY", 0).astype(np.int64),
        ffi_files=names,
        image_cards=image_cards,
        tstart=float(p_start)
        if isinstance(p_start, (int, float))
        else float(np.nanmin(tstart))
        if n
        else None,
        tstop=float(p_stop) if isinstance(p_stop, (int, float)) else float(np.nanmax(tstop)) if n else None,
    )


def _plain(value: Any) -> Any:
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value) if np.isfinite(value) else None
    return str(value)


# ------------------------------------------------------------------------------------------ one cutout


class CubeCutoutInstance:
    """One cutout of one cube at one coordinate.

    Attributes
    ----------
    data, uncertainty : ndarray
        float32, shape ``(ntime, ny, nx)``; padding (off the CCD) is ``fill_value``.
    aperture : ndarray
        int32 ``(ny, nx)``: 1 on the CCD, 0 for padding.
    cutout_lims : ndarray
        ``[[xmin, xmax], [ymin, ymax]]`` 0-based, half-open, unclipped CCD pixel limits.
    wcs : astropy.wcs.WCS
        Linear TAN WCS fitted to the cube's SIP WCS over the cutout.
    wcs_fit : dict
        ``{"WCS_MSEP": [max], "WCS_SIG": [rms]}`` separations (deg) between the linear and the SIP WCS.
    cube_wcs : astropy.wcs.WCS
        The cube's full SIP WCS (of the FFI nearest the middle of the cube with a usable WCS).
    coordinate : SkyCoord
        Requested centre. ``target`` is the caller's name for it (or ``None``).
    """

    def __init__(
        self,
        parent: _CubeSession,
        ra: float,
        dec: float,
        lims: np.ndarray,
        block: np.ndarray,
        aperture: np.ndarray,
        target: str | None = None,
        fit: LinearFit | None = None,
    ):
        self._parent = parent
        self.ra, self.dec = float(ra), float(dec)
        self._coordinate = None
        self.target = target
        self.object_name = ""  # the TPF's OBJECT and TICID (cut_cube_targets sets them per target)
        self.ticid: int | None = None
        self.cutout_lims = lims
        self.aperture = aperture
        self._block = block
        self.cube_filename = parent.name
        if fit is None:
            fit = fit_linear_tan(parent.wcs, lims)
        self._fit = fit
        self.wcs_fit = {"WCS_MSEP": [fit.msep], "WCS_SIG": [fit.sig]}
        self._wcs = None
        self._data: np.ndarray | None = None
        self._uncertainty: np.ndarray | None = None

    @property
    def cube_wcs(self):
        """The cube's full SIP WCS as an astropy ``WCS``."""
        return self._parent.astropy_wcs

    @property
    def coordinate(self):
        """The requested centre as an ICRS ``SkyCoord``."""
        if self._coordinate is None:
            from astropy.coordinates import SkyCoord

            self._coordinate = SkyCoord(self.ra, self.dec, unit="deg")
        return self._coordinate

    @property
    def data(self) -> np.ndarray:
        """Flux, float32 ``(ntime, ny, nx)`` (made from the cube block on first access)."""
        if self._data is None:
            self._data = np.ascontiguousarray(self._block[..., 0].transpose(2, 0, 1), dtype=np.float32)
        return self._data

    @property
    def uncertainty(self) -> np.ndarray:
        """Flux uncertainty, float32 ``(ntime, ny, nx)``."""
        if self._uncertainty is None:
            self._uncertainty = np.ascontiguousarray(self._block[..., 1].transpose(2, 0, 1), dtype=np.float32)
        return self._uncertainty

    @property
    def shape(self) -> tuple[int, int, int]:
        """Shape of :attr:`data`: ``(ntime, ny, nx)``."""
        ny, nx = self.aperture.shape
        return (self._block.shape[2], ny, nx)

    @property
    def wcs(self):
        """The cutout's linear TAN astropy ``WCS`` (fitted to the cube's SIP WCS over the cutout)."""
        if self._wcs is None:
            self._wcs = linear_wcs(self._fit, self.aperture.shape)
        return self._wcs

    def tpf_input(self) -> TpfCutout:
        """Return what :mod:`skycut.tess.tpf` needs to serialise this cutout's TPF (a :class:`TpfCutout`)."""
        f = self._fit
        return TpfCutout(
            ra=self.ra,
            dec=self.dec,
            lims=self.cutout_lims,
            block=self._block,
            aperture=self.aperture,
            crval=f.crval,
            crpix=f.crpix,
            cd=f.cd,
            wcs_msep=f.msep,
            wcs_sig=f.sig,
            corner=self.ccd_corner,
            object_name=self.object_name,
            ticid=self.ticid,
        )

    @property
    def ccd_corner(self) -> tuple[int, int]:
        """1-based CCD ``(column, row)`` of the cutout's first pixel, from the FFI's physical WCS.

        As SPOC's ``1CRV5P``/``2CRV5P``; lightkurve's ``tpf.column``/``tpf.row``.
        """
        c1, p1, d1, c2, p2, d2 = self._parent.physical
        (xmin, _), (ymin, _) = self.cutout_lims
        return int(round(c1 + (xmin + 1 - p1) * d1)), int(round(c2 + (ymin + 1 - p2) * d2))

    def tpf_bytes(self) -> bytes:
        """Serialise this cutout's target pixel file to FITS bytes."""
        return tpf_bytes(self._parent.meta, self.tpf_input())

    def to_tpf(self):
        """Return this cutout's target pixel file as an astropy ``HDUList``."""
        return tpf_hdulist(self._parent.meta, self.tpf_input())

    def tpf_parts(self, scratch: int | None = None, *, deferred: bool = False):
        """Serialise this cutout's TPF as buffers to write in order (see :func:`skycut.tess.tpf.tpf_parts`).

        ``scratch=k`` builds the pixel table in the cube's reused buffer number ``k``: the parts are valid until
        the next call with the same ``k`` on any cutout of this cube. ``deferred=True`` returns a function that
        fills the pixel table and returns the parts (the headers are formatted now).
        """
        return tpf_parts(self._parent.meta, self.tpf_input(), scratch=scratch, deferred=deferred)

    def write_tpf(self, path: str | os.PathLike) -> Path:
        """Write this cutout's TPF to ``path`` (atomically) and return the path."""
        with self._parent.write_lock:  # the table is written from the cube's chunk buffer 0, then released
            return self.tpf_parts(scratch=0, deferred=True).write(path)

    def filename(self, cutout_size: Any, legacy: bool = False) -> str:
        """Return astrocut's TPF name for this cutout (``cutout_size`` as the user gave it).

        Parameters
        ----------
        cutout_size : Any
            The size as the user gave it (it appears in the name as ``{s0}-x-{s1}``).
        legacy : bool
            astrocut's old form ``{stem}_{ra:.6f}_{dec:.6f}_{nx}x{ny}_astrocut.fits``.

        Returns
        -------
        str
            ``{cube stem without -cube}_{ra:.7f}_{dec:.7f}_{s0}-x-{s1}_astrocut.fits`` (or the legacy form).
        """
        stem = cube_stem(self.cube_filename)
        if legacy:
            (x0, x1), (y0, y1) = self.cutout_lims
            return f"{stem}_{self.ra:.6f}_{self.dec:.6f}_{x1 - x0}x{y1 - y0}_astrocut.fits"
        return f"{stem}_{self.ra:.7f}_{self.dec:.7f}_{size_label(cutout_size)}_astrocut.fits"


# ------------------------------------------------------------------------------------------ one cube


#: Most cutouts whose linear WCS are fitted together (:meth:`_CubeSession.iter_cut`).
FIT_CHUNK = 16


def _fit_chunks(n: int) -> list[tuple[int, int]]:
    """``[start, end)`` index ranges of the fits of ``n`` cutouts: 1, 2, 4, ... up to :data:`FIT_CHUNK` cutouts.

    The first cutout is fitted alone, so its TPF can be written at once; fitting 16 at a time stalled the writes
    behind it (3 ms of fits on the reading thread while the writers ran out of work).
    """
    out, start, size = [], 0, 1
    while start < n:
        out.append((start, min(n, start + size)))
        start, size = start + size, min(FIT_CHUNK, 2 * size)
    return out


class _CubeSession:
    """An opened cube with its WCS and TPF metadata; cuts batches of targets."""

    def __init__(
        self, path, *, fill_value: float, rounding: str, threads: int | str, fsspec_kwargs: dict | None
    ):
        self.name = str(path) if not isinstance(path, str) else path
        self.reader = CubeReader(path, fsspec_kwargs=fsspec_kwargs, threads=threads)
        try:
            self.row = cube_wcs_row(self.reader.table, self.name)
            self.wcs = cube_wcs_from_row(self.reader.table, self.row, self.reader.shape)
        except Exception:
            self.reader.close()
            raise
        log.debug("%s: using WCS from row %d out of %d", self.name, self.row, self.reader.ntime)
        self.meta = cube_meta(self.reader, self.row)
        self.physical = physical_origin(self.reader.table, self.row)
        self.fill_value = fill_value
        self.rounding = rounding
        self.write_lock = threading.Lock()

    @property
    def astropy_wcs(self):
        """The cube's WCS as an astropy ``WCS`` (SIP kept)."""
        return self.wcs.to_astropy() if isinstance(self.wcs, TanSip) else self.wcs

    def size_pixels(self, size: CutoutSize) -> tuple[int, int]:
        """``(nx, ny)`` of a parsed cutout size (pixels, or angular through the WCS's pixel scale)."""
        if size.in_pixels:
            return size.pixels()
        scales = self.wcs.pixel_scales() if isinstance(self.wcs, TanSip) else pixel_scales_deg(self.wcs)
        return size.pixels(scales)

    def locate(self, ra: np.ndarray, dec: np.ndarray, shape_xy: tuple[int, int]) -> list[np.ndarray | None]:
        """Cutout limits of every coordinate (``None`` where the box misses the CCD)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                px, py = self.wcs.all_world2pix(ra, dec, 0, quiet=True)
            except Exception:  # noqa: BLE001 - wcslib gives up on points far off the chip
                px, py = self.wcs.wcs_world2pix(ra, dec, 0)
        out: list[np.ndarray | None] = []
        nrows, ncols = self.reader.nrows, self.reader.ncols
        for x, y in zip(np.atleast_1d(px), np.atleast_1d(py), strict=True):
            if not (np.isfinite(x) and np.isfinite(y)) or abs(x) > 1e6 or abs(y) > 1e6:
                out.append(None)
                continue
            lims = _limits((x, y), shape_xy, self.rounding)
            out.append(lims if _clip(lims, nrows, ncols) is not None else None)
        return out

    def iter_cut(
        self,
        ra: Sequence[float],
        dec: Sequence[float],
        lims_list: Sequence[np.ndarray],
        targets: Sequence[str | None],
        *,
        copy: bool = True,
        buffers: int = 1,
    ) -> Iterator[tuple[int, CubeCutoutInstance | InvalidInputError]]:
        """Read and pad the blocks of several located cutouts; yield ``(index, cutout)`` as each block arrives.

        Remote reads of every cutout go out together; a cutout whose bytes cannot be read yields the error
        instead (see :meth:`CubeReader.iter_blocks`). ``copy=False``: a local cutout's pixels are a view of the
        cube's memory map and a remote one's are in one of ``buffers`` reused arrays (per shape, in turn), for a
        caller done with each cutout before it has taken ``buffers`` more.
        """
        nrows, ncols = self.reader.nrows, self.reader.ncols
        clips = [_clip(lims, nrows, ncols) for lims in lims_list]
        fits: dict[int, LinearFit] = {}
        chunks = _fit_chunks(len(lims_list))
        for i, raw in self.reader.iter_blocks([c[0] for c in clips], copy=copy, buffers=buffers):
            if isinstance(raw, InvalidInputError):
                yield i, raw
                continue
            lims, (dy, dx) = lims_list[i], clips[i][1]
            ny, nx = int(lims[1, 1] - lims[1, 0]), int(lims[0, 1] - lims[0, 0])
            aperture = np.zeros((ny, nx), dtype=np.int32)
            aperture[dy, dx] = 1
            if raw.shape[:2] == (ny, nx):
                block = raw
            else:
                block = np.full((ny, nx, *raw.shape[2:]), self.fill_value, dtype=">f4")
                block[dy, dx] = raw
            if i not in fits:
                # the WCS fits of a few cutouts at a time, in one set of array operations, so the first TPFs are
                # written while later ones are fitted (a fit is the same alone or with others)
                chunk = range(*next(c for c in chunks if c[0] <= i < c[1]))
                fits.update(zip(chunk, fit_linear_tans(self.wcs, [lims_list[k] for k in chunk]), strict=True))
            yield i, CubeCutoutInstance(self, ra[i], dec[i], lims, block, aperture, targets[i], fits[i])

    def cut(
        self,
        ra: Sequence[float],
        dec: Sequence[float],
        lims_list: Sequence[np.ndarray],
        targets: Sequence[str | None],
    ) -> list[CubeCutoutInstance]:
        """Return the cutouts of :meth:`iter_cut`, in order; raise the first read error."""
        out: list[Any] = [None] * len(lims_list)
        for i, cutout in self.iter_cut(ra, dec, lims_list, targets):
            if isinstance(cutout, InvalidInputError):
                raise cutout
            out[i] = cutout
        return out

    def block_nbytes(self, lims: np.ndarray) -> int:
        """Bytes of the cube block read for a located cutout (every cadence, flux and uncertainty)."""
        clip = _clip(lims, self.reader.nrows, self.reader.ncols)
        (x0, x1), (y0, y1) = clip[0]
        return (x1 - x0) * (y1 - y0) * int(np.prod(self.reader.shape[2:])) * self.reader.dtype.itemsize

    def close(self) -> None:
        """Close the cube's reader."""
        self.reader.close()


def _where(ra: float, dec: float) -> str:
    return f"({ra:.6f}, {dec:.6f})"
