"""Moving targets: a path table followed through cubes into one re-centred TPF.

The steps are astrocut's ``path_to_footprints`` + ``center_on_path``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...core.atomic import atomic_output
from ...exceptions import InvalidQueryError
from ..options import fsspec_kwargs

if TYPE_CHECKING:  # pragma: no cover
    from ..sections import PathSpec

log = logging.getLogger(__name__)


def read_path(table_file: str, time_format: str = "jd"):
    """Read a path table (columns ``time``, ``ra``, ``dec``) as astrocut's ``Table(time: Time, position: SkyCoord)``.

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
    time = (
        Time(values + 2457000.0, format="jd", scale="tdb")
        if time_format == "btjd"
        else Time(values, format="mjd", scale="tdb")
    )
    return Table({"time": time, "position": SkyCoord(raw["ra"], raw["dec"], unit="deg")})


def cube_wcs(cube: str, fsspec_kwargs: dict[str, Any] | None = None):
    """Return the full (SIP) WCS a cube's cutouts use, with ``pixel_shape`` set to the FFI's ``(ncols, nrows)``."""
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
    """Follow a moving target through cubes into one re-centred TPF, written to ``output``.

    The path is covered with TPFs (``path_to_footprints``), which are cut and re-centred on the path
    (``center_on_path``). A cube that is missing, cannot be read or fails to cut does not stop the others: it is
    logged as a warning naming the cube and the cause, and the TPF is made from the other cubes (with the TPFs
    already cut from a cube that fails part way). The job fails only when no cube gives a TPF.

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

    Raises
    ------
    InvalidQueryError
        When no cube gives a TPF: the path crosses none of the cubes, or every cube it crosses failed (each
        failure named).
    """
    import shutil
    import tempfile

    from ...tess.cube_batch import cut_cube_targets
    from ...tess.moving_target import center_on_path, path_to_footprints

    options = fsspec_kwargs(spec.fsspec)
    path = read_path(spec.table, spec.time_format)
    failed: dict[str, str] = {}  # cube -> why it could not be cut
    with tempfile.TemporaryDirectory(prefix="skycut-path-") as scratch:
        tpfs: list[str] = []
        wcs = None
        for k, cube in enumerate(cubes):
            try:
                cube_w = cube_wcs(cube, options)
                boxes = path_to_footprints(path["position"], spec.size, cube_w)
            except (OSError, ValueError) as exc:  # a missing or unreadable cube (SkycutError is a ValueError)
                failed[cube] = _record_failure(cube, exc)
                continue
            if not boxes:
                log.info("%s: the path does not cross this cube", cube)
                continue
            for j, box in enumerate(boxes):
                ny, nx = box["size"]
                name = f"c{k}_b{j}"
                try:
                    result = cut_cube_targets(
                        cube,
                        [(name, box["coordinates"])],
                        [nx, ny],
                        output_paths={name: Path(scratch) / f"{name}.fits"},
                        fsspec_kwargs=options,
                    )
                except (OSError, ValueError) as exc:
                    failed[cube] = _record_failure(cube, exc)
                    break
                if result.failed:
                    failed[cube] = _record_failure(cube, result.failed[name])
                    break
                cut = [str(p) for paths in result.written.values() for p in paths]
                if cut:
                    wcs = wcs or cube_w
                    tpfs += cut
        if not tpfs:
            if failed:
                raise InvalidQueryError(
                    f"the path in {spec.table}: no cube could be cut ("
                    + "; ".join(f"{cube}: {why}" for cube, why in failed.items())
                    + ")"
                )
            raise InvalidQueryError(f"the path in {spec.table} crosses none of the cubes {cubes}")
        made = center_on_path(
            path, spec.size, tpfs, target=spec.target, img_wcs=wcs, output_path=scratch, verbose=False
        )
        with atomic_output(output) as tmp:
            shutil.copyfile(made, tmp)
    if failed:
        log.warning(
            "moving target %s: made without %d failing cube(s): %s",
            spec.target or spec.table,
            len(failed),
            ", ".join(failed),
        )
    log.info("moving target %s: %d TPF(s) -> %s", spec.target or spec.table, len(tpfs), output)
    return output


def _record_failure(cube: str, error: BaseException | str) -> str:
    """Log that ``cube`` could not be cut, and why, as a warning; return the cause as text."""
    text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    log.warning("cube %s could not be cut, skipped (the other cubes go on): %s", cube, text)
    return text


def moving_target_frames(tpf: str, strip_path: str, title: str | None = None) -> list[Path]:
    """Draw the frames of a moving-target TPF: a strip ``strip_path`` (PNG) and an animated GIF beside it.

    The GIF has the same stem (``.gif``); both follow the target (:func:`skycut.pipeline.plots.path_frames`).

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
