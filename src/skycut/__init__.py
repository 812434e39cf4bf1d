"""skycut: astronomical cutouts as a declarative, reproducible workflow.

The public names mirror astrocut's so that its examples run with ``import skycut as astrocut``.
Heavy modules (astropy, asdf, gwcs, ...) are imported lazily, on first use of a name, so that a
process making one cutout starts fast.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

__version__ = "0.1.0"

log = logging.getLogger("skycut")
log.addHandler(logging.NullHandler())

# public name -> module that defines it
_LAZY = {
    # image cutouts
    "FITSCutout": "image.fits_cutout",
    "fits_cut": "image.fits_cutout",
    "img_cut": "image.fits_cutout",
    "ASDFCutout": "image.asdf_cutout",
    "asdf_cut": "image.asdf_cutout",
    "get_center_pixel": "image.asdf_cutout",
    "normalize_img": "image.render",
    # TESS cubes and cube cutouts
    "CubeFactory": "tess.cube_factory",
    "TessCubeCutout": "tess.cube_cutout",
    "cube_cut": "tess.cube_cutout",
    "CutoutFactory": "tess.cube_cutout",
    "cut_cube_targets": "tess.cube_batch",
    "TessFootprintCutout": "tess.footprint",
    "cube_cut_from_footprint": "tess.footprint",
    "get_tess_sectors": "tess.footprint",
    "ra_dec_crossmatch": "tess.footprint",
    "find_sectors": "tess.sectors",
    "plan_cubes": "tess.sectors",
    # post-processing
    "center_on_path": "tess.moving_target",
    "path_to_footprints": "tess.moving_target",
    "read_path_table": "tess.moving_target",
    "CutoutsCombiner": "image.combine",
    "build_default_combine_function": "image.combine",
    "build_median_combine_function": "image.combine",
    "resolve_combiner": "image.combine",
    # errors and warnings
    "SkycutError": "exceptions",
    "InvalidInputError": "exceptions",
    "InvalidQueryError": "exceptions",
    "NoWcsKeywordsFoundError": "exceptions",
    "ManifestError": "exceptions",
    "InputWarning": "exceptions",
    "DataWarning": "exceptions",
    "TypeWarning": "exceptions",
    "ModuleWarning": "exceptions",
}

__all__ = sorted([*_LAZY, "__version__", "log"])


def __getattr__(name: str) -> Any:
    """Import the module that defines public name ``name`` on first use and return the name's value.

    Raises
    ------
    AttributeError
        ``name`` is not one of skycut's public names.
    """
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'skycut' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"skycut.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """Return the public names, loaded or not."""
    return __all__
