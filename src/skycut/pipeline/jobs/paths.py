"""Moving targets: a path table followed through cubes into one re-centred TPF (astrocut's
``path_to_footprints`` + ``center_on_path``)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...core.atomic import atomic_output
from ...exceptions import InvalidQueryError
from ..options import fsspec_kwargs

if TYPE_CHECKING:  # pragma: no cover
    from ..manifest import PathSpec

log = logging.getLogger(__name__)


def read_path(table_file: str, time_format: str = "jd"):
    """A path table (columns ``time``, ``ra``, ``dec``) as astrocut's ``Table(time: Time, position: SkyCoord)``.

    ``time_format``: ``jd``/``iso`` (read as given), ``mjd``, or ``btjd`` (BJD - 2457000, TESS's TIME); TDB.
    """
    import numpy as np

    from ...tess.moving_target import read_path_table

    if time_format in ("jd", "iso"):
        return read_path_table(table_file)
    from astropy.coordinates import SkyCoord
    from astropy.table import Table
    from astropy.time import Time

    raw = Table.read(table_file, format="ascii.ecsv" if table_file.endswith(".ecsv") else "ascii.csv")
    missing = {"time", "ra", "dec"} - set(raw.colnames)
    if missing:
        raise ValueError(f"{table_file}: missing column(s) {sorted(missing)}")
    values = np.asarray(raw["time"], dtype=float)
    time = Time(values + 2457000.0, format="jd", scale="tdb") if time_format == "btjd" else Time(
        values, format="mjd", scale="tdb")
    return Table({"time": time, "position": SkyCoord(raw["ra"], raw["dec"], unit="deg")})


def cube_wcs(cube: str, fsspec_kwargs: dict[str, Any] | None = None):
    """The full (SIP) WCS a cube's cutouts use, with ``pixel_shape`` set to the FFI's ``(ncols, nrows)``."""
    from ...core.tansip import TanSip
    from ...tess.cube_reader import CubeReader
    from ...tess.cube_wcs import cube_wcs_from_row, cube_wcs_row

    reader = CubeReader(cube, fsspec_kwargs=fsspec_kwargs)
    try:
        wcs = cube_wcs_from_row(reader.table, cube_wcs_row(reader.table, str(cube)), reader.shape)
        wcs = wcs.to_astropy() if isinstance(wcs, TanSip) else wcs
        wcs.pixel_shape = (reader.ncols, reader.nrows)
        return wcs
    finally:
        reader.close()


def moving_target(spec: PathSpec, cubes: list[str], output: str) -> str:
    """Follow a moving target through cubes: cover its path with TPFs (``path_to_footprints``), cut them,
    and re-centre on the path (``center_on_path``); the result is written to ``output``.

    Parameters
    ----------
    spec : PathSpec
        The manifest's path (table, time format, size, object name, fsspec options).
    cubes : list of str
        The cubes to follow it through (paths/URIs; the plan resolves names and sector lookups).
    output : str
        The TPF to write.

    Returns
    -------
    str
        ``output``.
    """
    import shutil
    import tempfile

    from ...tess.cube_cutout import cut_cube_targets
    from ...tess.moving_target import center_on_path, path_to_footprints

    options = fsspec_kwargs(spec.fsspec)
    path = read_path(spec.table, spec.time_format)
    with tempfile.TemporaryDirectory(prefix="skycut-path-") as scratch:
        tpfs: list[str] = []
        wcs = None
        for k, cube in enumerate(cubes):
            cube_w = cube_wcs(cube, options)
            boxes = path_to_footprints(path["position"], spec.size, cube_w)
            if not boxes:
                log.info("%s: the path does not cross this cube", cube)
                continue
            wcs = wcs or cube_w
            for j, box in enumerate(boxes):
                ny, nx = box["size"]
                name = f"c{k}_b{j}"
                result = cut_cube_targets(cube, [(name, box["coordinates"])], [nx, ny],
                                          output_paths={name: Path(scratch) / f"{name}.fits"},
                                          fsspec_kwargs=options)
                if result.failed:
                    raise InvalidQueryError(f"{cube}: {result.failed[name]}")
                tpfs += [str(p) for paths in result.written.values() for p in paths]
        if not tpfs:
            raise InvalidQueryError(f"the path in {spec.table} crosses none of the cubes {cubes}")
        made = center_on_path(path, spec.size, tpfs, target=spec.target, img_wcs=wcs, output_path=scratch,
                              verbose=False)
        with atomic_output(output) as tmp:
            shutil.copyfile(made, tmp)
    log.info("moving target %s: %d TPF(s) -> %s", spec.target or spec.table, len(tpfs), output)
    return output


def moving_target_frames(tpf: str, strip_path: str, title: str | None = None) -> list[Path]:
    """The frames of a moving-target TPF: a strip ``strip_path`` (PNG) and an animated GIF beside it
    (same stem, ``.gif``), both following the target (:func:`skycut.pipeline.plots.path_frames`).

    Parameters
    ----------
    tpf : str
        The moving-target TPF (this stage's output).
    strip_path : str
        The strip to write (``paths/{name}_frames.png``).
    title : str, optional
        A line above the strip.

    Returns
    -------
    list of Path
        The strip and the GIF.
    """
    from ..plots import path_frames

    strip = Path(strip_path)
    return path_frames(tpf, strip, strip.with_suffix(".gif"), title=title)
