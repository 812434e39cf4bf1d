"""TESS FFI cubes (:class:`~skycut.tess.cube_factory.CubeFactory`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from ..sections import CubeSpec


def build_cube(files: list[str], spec: CubeSpec, cube_file: str) -> str:
    """Build one TESS cube from the FFIs ``files`` into ``cube_file``.

    Parameters
    ----------
    files : list of str
        The sector/camera/CCD's calibrated FFIs (resolved paths).
    spec : CubeSpec
        The manifest's cube (sector, memory budget in GB).
    cube_file : str
        The cube to write.

    Returns
    -------
    str
        The cube's path.
    """
    from ...tess.cube_factory import CubeFactory

    return str(
        CubeFactory().make_cube(
            files, cube_file=cube_file, sector=spec.sector, max_memory=spec.max_memory, verbose=True
        )
    )
