"""The offline demo's data: the simulator's FFIs, skycells and ASDF image, a footprint file and a path table.

The footprint file and the moving-target path table are what the footprint and moving-target stages read.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...core.atomic import atomic_output

if TYPE_CHECKING:  # pragma: no cover
    from ..sections import Demo

log = logging.getLogger(__name__)


def make_demo(
    spec: Demo, directory: str, *, path_table: str | None = None, footprints: str | None = None
) -> dict[str, list[str]]:
    """Make the simulated demo data a manifest's ``demo`` section asks for.

    Parameters
    ----------
    spec : Demo
        The manifest's demo section.
    directory : str
        Where the data go (``tess/``, ``hst/``, ``roman/`` below it).
    path_table, footprints : str, optional
        With a TESS section: where the moving-target path table and the FFI footprint file go (the plan's
        paths); left out when None.

    Returns
    -------
    dict
        ``{"tess": [...], "hst": [...], "roman": [...], "tess_extras": [...]}`` file paths (sections present).
    """
    from ...simulate import simulate_demo, write_path_table

    made = simulate_demo(spec.model_dump(exclude={"directory"}), directory)
    if made.get("tess"):
        extras = []
        if path_table is not None:
            tess_dir = Path(made["tess"][0]).parent
            truth = json.loads(next(tess_dir.glob("*_truth.json")).read_text())
            extras.append(write_path_table(truth, path_table))
        if footprints is not None:
            extras.append(write_footprint_json(made["tess"][:1], footprints))
        if extras:
            made["tess_extras"] = extras
    log.info("demo data in %s: %s", directory, ", ".join(f"{k} ({len(v)})" for k, v in made.items()))
    return {k: [str(p) for p in v] for k, v in made.items()}


def write_footprint_json(ffi_files: list[str], path: str | Path) -> Path:
    """Write a footprint file in MAST's format for the sector/camera/CCDs of ``ffi_files`` (one FFI each).

    The file holds column lists ``s_region``, ``sequence_number``, ``target_name``, ``obs_id``.

    Each polygon is the FFI's four image corners through its WCS; this is what lets the demo run footprint
    cutouts offline against locally built cubes.
    """
    from astropy.io import fits
    from astropy.wcs import WCS

    columns: dict[str, list[Any]] = {"s_region": [], "sequence_number": [], "target_name": [], "obs_id": []}
    for ffi in ffi_files:
        with fits.open(ffi) as hdul:
            header = hdul[1].header
            ny, nx = header["NAXIS2"], header["NAXIS1"]
            wcs = WCS(header)
            corners = wcs.all_pix2world(
                [[-0.5, -0.5], [nx - 0.5, -0.5], [nx - 0.5, ny - 0.5], [-0.5, ny - 0.5]], 0
            )
            sector, camera, ccd = (hdul[0].header[k] for k in ("SECTOR", "CAMERA", "CCD"))
        columns["s_region"].append("POLYGON " + " ".join(f"{ra:.8f} {dec:.8f}" for ra, dec in corners))
        columns["sequence_number"].append(int(sector))
        columns["target_name"].append("TESS FFI")
        columns["obs_id"].append(f"tess-s{int(sector):04d}-{int(camera)}-{int(ccd)}")
    with atomic_output(path) as tmp:
        Path(tmp).write_text(json.dumps(columns, indent=1) + "\n")
    return Path(path)
