"""Cube cutouts: target pixel files from TESS cubes (local, ``s3://`` or ``https://``), many targets per cube.

Public API (astrocut names and signatures):

* :class:`TessCubeCutout` — cut one or more cubes at one or more coordinates (one cutout, one TPF each);
  ``cutouts_by_file``, ``cutouts``, ``tpf_cutouts_by_file``, ``tpf_cutouts``, ``write_as_tpf``, ``write_as_zip``.
* :func:`cube_cut` and :class:`CutoutFactory` — the functional wrappers.
* :class:`CubeCutoutInstance` (one cutout and its TPF) and the opened cube they are cut from live in
  :mod:`skycut.tess.cube_session`; they are imported here, so ``skycut.tess.cube_cutout.CubeCutoutInstance``
  still works.
* The batch entry point for the workflow, :func:`skycut.tess.cube_batch.cut_cube_targets` (one cube, many named
  targets, each TPF written where the caller says), is built on :class:`skycut.tess.cube_session._CubeSession`.

Pixel conventions: 0-based, ``x`` = CCD column, ``y`` = CCD row; cutout arrays are ``(ntime, ny, nx)``;
``cutout_lims = [[xmin, xmax], [ymin, ymax]]`` half-open and unclipped.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..core.coords import parse_size, radec_arrays, size_label
from ..core.geometry import check_fill_value, check_rounding_method
from ..exceptions import DataWarning, InvalidInputError, InvalidQueryError, NoWcsKeywordsFoundError
from .cube_reader import resolve_threads
from .cube_session import (
    CubeCutoutInstance,
    _CubeSession,
    _where,
)
from .cube_session import _fit_chunks as _fit_chunks  # re-exported (imported from here before the split)

log = logging.getLogger(__name__)


# ------------------------------------------------------------------------------------------ small helpers


def write_tpf(cutout: CubeCutoutInstance, path: str | os.PathLike) -> Path:
    """Write ``cutout``'s target pixel file to ``path`` atomically; returns the path."""
    return cutout.write_tpf(path)


def _as_file_list(input_files) -> list:
    if isinstance(input_files, (str, os.PathLike)):
        return [input_files]
    files = list(input_files)
    if not files:
        raise InvalidInputError("no input cube given")
    return files


# ------------------------------------------------------------------------------------------ the class


class TessCubeCutout:
    """Cutouts of TESS cubes at one or more sky positions; one target pixel file per (cube, coordinate).

    Parameters
    ----------
    input_files : str, path-like, or list of them
        Cube files: local paths, ``s3://`` URIs or ``https://`` URLs.
    coordinates : SkyCoord, str, or list
        Cutout centre(s); every coordinate gives its own cutout (astrocut keeps only the first).
    cutout_size : int, array, Quantity
        ``(nx, ny)`` in pixels or angular units (one value: square).
    fill_value : float
        Value of pixels off the CCD.
    limit_rounding_method : {"round", "ceil", "floor"}
        How the lower pixel limit is rounded; the cutout always has exactly the requested number of pixels.
    threads : int or "auto"
        Parallel ranged requests for remote cubes.
    verbose : bool
        Log progress at DEBUG level on the ``skycut`` logger.
    fsspec_kwargs : dict, optional
        Options for remote cubes (``anon`` defaults to True for s3; ``endpoint_url``, ``key``, ``secret``, ...).

    With several cubes, one that is missing or cannot be read is skipped with a :class:`DataWarning` naming it and
    the cause, and the other cubes are cut; an error is raised only when no cube gives a cutout.

    Raises
    ------
    InvalidInputError
        A bad argument, the single cube cannot be read, or no cube could be read.
    InvalidQueryError
        No cube gives a cutout (every target entirely off the CCD).
    """

    def __init__(
        self,
        input_files,
        coordinates,
        cutout_size=25,
        fill_value: float = np.nan,
        limit_rounding_method: str = "round",
        threads: int | str = 1,
        verbose: bool = False,
        *,
        fsspec_kwargs: dict | None = None,
    ):
        if verbose:
            logging.getLogger("skycut").setLevel(logging.DEBUG)
        self._files = _as_file_list(input_files)
        self._ra, self._dec = radec_arrays(coordinates)
        self._cutout_size = cutout_size
        self._size = parse_size(cutout_size)
        self._fill_value = check_fill_value(fill_value)
        self._rounding = check_rounding_method(limit_rounding_method)
        resolve_threads(threads)  # refuses a bad value now; "auto" itself reaches the reader
        self._threads = threads
        self._fsspec_kwargs = fsspec_kwargs
        self.cutouts_by_file: dict[Any, list[CubeCutoutInstance]] = {}
        self._tpfs: dict[Any, list] | None = None
        self._cut_all()

    def _cut_all(self) -> None:
        import time

        start = time.perf_counter()
        problems: list[str] = []
        unreadable: list[InvalidInputError] = []
        for file in self._files:
            try:
                session = _CubeSession(
                    file,
                    fill_value=self._fill_value,
                    rounding=self._rounding,
                    threads=self._threads,
                    fsspec_kwargs=self._fsspec_kwargs,
                )
            except InvalidInputError as exc:  # a missing or unreadable cube: the other cubes are still cut
                if len(self._files) == 1:
                    raise
                log.warning("cube %s cannot be read, skipped: %s", file, exc)
                unreadable.append(exc)
                problems.append(str(exc))
                continue
            try:
                shape_xy = session.size_pixels(self._size)
                located = session.locate(self._ra, self._dec, shape_xy)
                keep = [i for i, lims in enumerate(located) if lims is not None]
                for i, lims in enumerate(located):
                    if lims is None:
                        problems.append(
                            f"target {_where(self._ra[i], self._dec[i])} is not on cube {session.name!r}"
                        )
                if keep:
                    self.cutouts_by_file[file] = session.cut(
                        self._ra[keep], self._dec[keep], [located[i] for i in keep], [None] * len(keep)
                    )
                    for c in self.cutouts_by_file[file]:
                        log.debug(
                            "%s: cutout at (%.8f, %.8f): limits %s, shape %s, linear WCS max/rms offset "
                            "%.3g/%.3g arcsec",
                            session.name,
                            c.ra,
                            c.dec,
                            c.cutout_lims.tolist(),
                            c.shape,
                            c.wcs_fit["WCS_MSEP"][0] * 3600,
                            c.wcs_fit["WCS_SIG"][0] * 3600,
                        )
                if session.reader.remote:
                    log.debug(
                        "%s: %d requests, %d bytes read",
                        session.name,
                        session.reader.requests,
                        session.reader.bytes_read,
                    )
            finally:
                session.close()
        if not self.cutouts_by_file:
            if len(unreadable) == len(self._files):
                raise InvalidInputError("no cube could be read: " + "; ".join(problems))
            raise InvalidQueryError("; ".join(problems) + " (cutout entirely off the CCD or cube unreadable)")
        for p in problems:
            warnings.warn(p + "; skipped", DataWarning, stacklevel=3)
        log.debug("total time: %.3f s", time.perf_counter() - start)

    # -- results
    @property
    def cutouts(self) -> list[CubeCutoutInstance]:
        """Every cutout (:class:`CubeCutoutInstance`), cube by cube, in coordinate order."""
        return [c for cs in self.cutouts_by_file.values() for c in cs]

    @property
    def tpf_cutouts_by_file(self) -> dict[Any, list]:
        """``{cube: [HDUList, ...]}``, one target pixel file per coordinate (built on first access)."""
        if self._tpfs is None:
            self._tpfs = {f: [c.to_tpf() for c in cs] for f, cs in self.cutouts_by_file.items()}
        return self._tpfs

    @property
    def tpf_cutouts(self) -> list:
        """Every target pixel file (``HDUList``), in :attr:`cutouts` order."""
        return [h for hs in self.tpf_cutouts_by_file.values() for h in hs]

    # -- output
    def _names(self, legacy_filenames: bool) -> list[str]:
        return [c.filename(self._size, legacy_filenames) for c in self.cutouts]

    def write_as_tpf(
        self,
        output_dir: str | os.PathLike = ".",
        output_file: str | Sequence[str] | None = None,
        legacy_filenames: bool = False,
    ) -> list[str]:
        """Write every cutout as a TPF; returns the paths.

        ``output_file`` names the file when there is a single cutout, or is a list with one name per cutout
        (in :attr:`cutouts` order). Otherwise astrocut's names are used:
        ``{cube stem without -cube}_{ra:.7f}_{dec:.7f}_{s0}-x-{s1}_astrocut.fits``.
        """
        cutouts = self.cutouts
        names = self._names(legacy_filenames)
        if output_file is not None:
            given = [output_file] if isinstance(output_file, (str, os.PathLike)) else list(output_file)
            if len(given) != len(cutouts):
                raise InvalidInputError(f"output_file gives {len(given)} name(s) for {len(cutouts)} cutouts")
            names = [os.fspath(g) for g in given]
        return [str(c.write_tpf(Path(output_dir) / name)) for c, name in zip(cutouts, names, strict=True)]

    def write_as_zip(
        self,
        output_dir: str | os.PathLike = ".",
        filename: str | os.PathLike | None = None,
        legacy_filenames: bool = False,
    ) -> str:
        """Write all TPFs into one zip archive (no intermediate files); returns its path."""
        from ..core.atomic import write_zip

        if filename is None:
            filename = (
                f"astrocut_{self._ra[0]:.7f}_{self._dec[0]:.7f}_{size_label(self._size)}.zip"
                if len(self._ra) == 1
                else "astrocut_tpf_cutouts.zip"
            )
        members = (
            (name, c.tpf_bytes()) for c, name in zip(self.cutouts, self._names(legacy_filenames), strict=True)
        )
        return write_zip(members, output_dir, filename)


# ------------------------------------------------------------------------------------------ functional API


def cube_cut(
    cube_file,
    coordinates,
    cutout_size,
    target_pixel_file=None,
    output_path: str | os.PathLike = ".",
    memory_only: bool = False,
    threads: int | str = 1,
    verbose: bool = False,
    legacy_filenames: bool = False,
    *,
    fsspec_kwargs: dict | None = None,
):
    """Cut one cube into target pixel files (astrocut's ``cube_cut``).

    Parameters
    ----------
    cube_file : str or path-like
        Local path, ``s3://`` URI or ``https://`` URL of one cube.
    coordinates : SkyCoord, str, or list
        Cutout centre(s); every coordinate gives its own TPF.
    cutout_size : int, array, Quantity
        ``(nx, ny)`` in pixels or angular units (one value: square).
    target_pixel_file : str or list of str, optional
        Output name(s) (see :meth:`TessCubeCutout.write_as_tpf`); default astrocut's names.
    output_path : str or path-like
        Directory of the written TPFs.
    memory_only : bool
        Return ``HDUList`` objects instead of writing files.
    threads : int or "auto"
        Parallel ranged requests for a remote cube.
    verbose : bool
        Log progress at DEBUG level on the ``skycut`` logger.
    legacy_filenames : bool
        astrocut's old file names (see :meth:`CubeCutoutInstance.filename`).
    fsspec_kwargs : dict, optional
        Options for a remote cube.

    Returns
    -------
    str, HDUList, or list of them
        The TPF path (or ``HDUList`` with ``memory_only``). Several coordinates give a list.

    Raises
    ------
    InvalidInputError
        A bad argument or an unreadable cube.
    InvalidQueryError
        Every target is entirely off the CCD.
    """
    cut = TessCubeCutout(
        cube_file, coordinates, cutout_size, threads=threads, verbose=verbose, fsspec_kwargs=fsspec_kwargs
    )
    single = len(cut.cutouts) == 1
    if memory_only:
        tpfs = cut.tpf_cutouts
        return tpfs[0] if single else tpfs
    paths = cut.write_as_tpf(output_path, target_pixel_file, legacy_filenames)
    return paths[0] if single else paths


class CutoutFactory:
    """astrocut's backwards-compatible factory; :meth:`cube_cut` also records the last cutout's geometry."""

    def __init__(self):
        self.cube_wcs = None
        self.center_coord = None
        self.cutout_lims = None
        self.cutout_wcs = None

    def cube_cut(
        self,
        cube_file,
        coordinates,
        cutout_size,
        target_pixel_file=None,
        output_path=".",
        memory_only: bool = False,
        threads: int | str = 1,
        verbose: bool = False,
        legacy_filenames: bool = False,
        *,
        fsspec_kwargs: dict | None = None,
    ):
        """As :func:`cube_cut` (astrocut 1.4's signature: no ``product``, SPOC cubes only)."""
        cut = TessCubeCutout(
            cube_file, coordinates, cutout_size, threads=threads, verbose=verbose, fsspec_kwargs=fsspec_kwargs
        )
        first = cut.cutouts[0]
        self.cube_wcs, self.center_coord = first.cube_wcs, first.coordinate
        self.cutout_lims, self.cutout_wcs = first.cutout_lims, first.wcs
        single = len(cut.cutouts) == 1
        if memory_only:
            return cut.tpf_cutouts[0] if single else cut.tpf_cutouts
        paths = cut.write_as_tpf(output_path, target_pixel_file, legacy_filenames)
        return paths[0] if single else paths


__all__ = [
    "TessCubeCutout",
    "CubeCutoutInstance",
    "cube_cut",
    "CutoutFactory",
    "write_tpf",
    "NoWcsKeywordsFoundError",
]
