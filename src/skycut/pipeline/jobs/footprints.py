"""TPFs from every TESS cube that holds each target (astrocut's TessFootprintCutout), in two forms.

* **Offline plan** (the manifest's ``footprint_uri`` omitted): :func:`plan_footprint_cubes` finds, when the
  workflow is planned, every (sector, camera, CCD) whose science pixels each target's cutout touches, from
  tess-point's pointings and camera geometry (:func:`skycut.tess.sectors.plan_cubes`, no network), and groups
  the targets per cube; :func:`footprint_cube_cutouts` is one job: one cube opened once, its batch of targets cut
  with :func:`skycut.tess.cube_batch.cut_cube_targets`. A cube that is missing (not released yet, or not in a
  private mirror) skips its targets with the message naming its URI; the other cubes' jobs are unaffected.
* **Footprint file** (``footprint_uri`` given, e.g. MAST's or the demo's): :func:`footprint_cutouts` matches each
  target of a batch against the file when the job runs and cuts every matching cube.

Either way a target's TPFs go to ``{target slug}/`` beside the job's index, with astrocut's file names
(``tess-sSSSS-C-D_<ra>_<dec>_<nx>-x-<ny>_astrocut.fits``), so all sectors of one target share a directory.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...core.batch import BatchResult
from ...exceptions import InvalidInputError, InvalidQueryError
from ..options import fill, fsspec_kwargs
from .index import finish

if TYPE_CHECKING:  # pragma: no cover
    from ..sections import FootprintCutoutSpec
    from ..targets import Target

log = logging.getLogger(__name__)

#: TESS pixel scale (arcsec) turning angular cutout sizes into pixels for the offline search.
ARCSEC_PER_PX = 21.0


def plan_footprint_cubes(targets: list[Target], spec: FootprintCutoutSpec) -> dict[str, list[Target]]:
    """Find the cubes each target is cut from, offline: ``{cube URI: targets}`` (no network).

    Parameters
    ----------
    targets : list of Target
        Resolved targets (ICRS ``ra``/``dec``, ``size``).
    spec : FootprintCutoutSpec
        The set: its sectors (``sectors`` or ``1..last_sector``) and ``cube_base_uri``.

    Returns
    -------
    dict
        Cube URI (``{cube_base_uri}tess-sSSSS-C-D-cube.fits``) -> the targets whose cutout box, at their own size
        (angles at 21"/pixel, rounded to whole pixels as the cutout will be), touches that CCD's science pixels,
        in manifest order; cubes ordered by sector, camera, CCD.

    Raises
    ------
    InvalidInputError, InvalidQueryError
        A target without a position, a size too large, a sector not in tess-point's table.
    """
    import numpy as np

    from ...tess.sectors import plan_cubes

    scale = ARCSEC_PER_PX / 3600.0
    by_size: dict[tuple[int, int], list[int]] = {}
    for i, target in enumerate(targets):
        by_size.setdefault(target.size.pixels((scale, scale)), []).append(i)
    ra = np.array([t.ra for t in targets], dtype=np.float64)
    dec = np.array([t.dec for t in targets], dtype=np.float64)
    members: dict[str, list[int]] = {}
    for size, idx in by_size.items():
        sel = np.asarray(idx)
        for uri, found in plan_cubes(
            ra[sel],
            dec[sel],
            size,
            spec.sector_list(),
            base_uri=spec.cube_base_uri,
            pixel_scale=ARCSEC_PER_PX,
        ).items():
            members.setdefault(uri, []).extend(sel[found].tolist())
    out = {uri: [targets[i] for i in sorted(members[uri])] for uri in sorted(members)}
    log.debug(
        "%d target(s): %d cube(s), %d (target, cube) pair(s)",
        len(targets),
        len(out),
        sum(len(v) for v in out.values()),
    )
    return out


def footprint_cube_cutouts(
    cube: str, targets: list[Target], spec: FootprintCutoutSpec, index_path: str
) -> dict[str, Any]:
    """One offline-planned job: cut a batch of targets from one cube into ``{target}/<astrocut name>``.

    The cube is opened once per distinct cutout size in the batch (usually once).

    Parameters
    ----------
    cube : str
        The cube's URI or path (from the plan).
    targets : list of Target
        The batch's targets.
    spec : FootprintCutoutSpec
        The set (fill value, threads, fsspec options).
    index_path : str
        The job's JSON index (with the key ``cube``).

    Returns
    -------
    dict
        The index. A target entirely off the CCD is skipped; when the cube cannot be opened because it does not
        exist, every target of the batch is skipped with that message (naming the cube), so a planned but
        unreleased cube does not stop the run. Any other failure to open the cube fails the job (it may be
        transient), as does a target whose TPF cannot be made.
    """
    from ...tess.cube_batch import cut_cube_targets

    out = Path(index_path).parent.parent
    by_size: dict[Any, list[Target]] = {}
    for target in targets:
        by_size.setdefault(target.size, []).append(target)
    result = BatchResult()
    for size, group in by_size.items():
        try:
            result.merge(
                cut_cube_targets(
                    cube,
                    [(t.name, (t.ra, t.dec)) for t in group],
                    size,
                    fill_value=fill(spec.fill_value),
                    output_paths={t.name: _astrocut_path(out / t.slug, cube, t, size) for t in group},
                    threads=spec.threads,
                    fsspec_kwargs=fsspec_kwargs(spec.fsspec),
                )
            )
        except (InvalidInputError, InvalidQueryError, OSError) as exc:
            if not _is_missing(exc):
                raise
            for t in group:
                result.skip(t.name, f"cube not found: {exc}")
    return finish(index_path, result, cube=cube)


def _is_missing(exc: BaseException) -> bool:
    """Tell whether the error comes from a cube that does not exist.

    fsspec turns an HTTP or S3 404 into a ``FileNotFoundError``, as a missing local file is; the library's error
    chains to it.
    """
    node: BaseException | None = exc
    for _ in range(10):
        if node is None:
            return False
        if isinstance(node, FileNotFoundError):
            return True
        node = node.__cause__ or node.__context__
    return False


def _astrocut_path(folder: Path, cube: str, target: Target, size: Any) -> Path:
    """Return astrocut's TPF name for a cube and a target.

    As :class:`~skycut.tess.footprint.TessFootprintCutout` writes it:
    ``{sectorName}_{ra:.7f}_{dec:.7f}_{size label}_astrocut.fits``.
    """
    from ...core.coords import size_label
    from ...tess.cube_reader import cube_stem

    return folder / f"{cube_stem(cube)}_{target.ra:.7f}_{target.dec:.7f}_{size_label(size)}_astrocut.fits"


def footprint_cutouts(targets: list[Target], spec: FootprintCutoutSpec, index_path: str) -> dict[str, Any]:
    """Run a job matched to a footprint file: TPFs for each target from every matching cube, in ``{target}/``.

    Parameters
    ----------
    targets : list of Target
        The batch's targets (resolved ICRS ``ra``/``dec`` and ``size``).
    spec : FootprintCutoutSpec
        The manifest's footprint-cutout set (sectors, footprint file, cube base URI, fill value, threads,
        fsspec options).
    index_path : str
        The job's JSON index.

    Returns
    -------
    dict
        The index; a target no cube covers is skipped with the reason.
    """
    from ...tess.footprint import TessFootprintCutout

    out = Path(index_path).parent
    options = fsspec_kwargs(spec.fsspec)
    result = BatchResult()
    for target in targets:
        try:
            cut = TessFootprintCutout(
                (target.ra, target.dec),
                target.size,
                fill_value=fill(spec.fill_value),
                sequence=spec.sector_list(),
                footprint_uri=spec.footprint_uri,
                cube_base_uri=spec.cube_base_uri,
                fsspec_kwargs=options,
                threads=spec.threads,
            )
        except InvalidQueryError as exc:
            result.skip(target.name, str(exc))
            continue
        result.add(target.name, cut.write_as_tpf(out / target.slug))
    return finish(index_path, result)
