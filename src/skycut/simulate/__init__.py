"""Simulated input data for tests, benchmarks and demos: TESS FFIs, HST skycells and Roman Level 2 ASDF.

Everything is deterministic: the same arguments and ``seed`` give byte-identical files (headers carry no
"now" timestamps). Each generator returns a :class:`SimResult` whose ``truth`` dictionary (also written as a
``*_truth.json`` file next to the data) lists what was put in the images, so tests can check results
against the truth rather than against skycut's own output.

Pixel conventions (as in :mod:`skycut.core.geometry`): truth pixel positions are 0-based with pixel centres on
integers, ``x`` = column = FITS axis 1, ``y`` = row = FITS axis 2; numpy arrays are ``(ny, nx)``.

The generators live in :mod:`skycut.simulate.tess` (TESS) and :mod:`skycut.simulate.images` (HST and
Roman); they are re-exported here::

    from skycut.simulate import make_tess_ffis, make_hst_images, make_roman_asdf, simulate_demo
"""

from __future__ import annotations

import importlib
import logging
from pathlib import Path
from typing import Any

import numpy as np

from ..exceptions import InvalidInputError
from .common import SimResult, check_shape, render_gaussians, write_truth  # noqa: F401

log = logging.getLogger(__name__)

# public name -> submodule that defines it (imported on first use, avoiding an import cycle)
_REEXPORTS = {
    "make_tess_ffis": "tess",
    "tess_ffi_names": "tess",
    "write_path_table": "tess",
    "tess_ccd_wcs": "tess",
    "tess_sector_times": "tess",
    "make_hst_images": "images",
    "hst_image_names": "images",
    "make_roman_asdf": "images",
    "roman_asdf_name": "images",
}

__all__ = ["SimResult", "render_gaussians", "simulate_demo", "demo_file_names", *_REEXPORTS]


def __getattr__(name: str) -> Any:
    module = _REEXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'skycut.simulate' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"skycut.simulate.{module}"), name)
    globals()[name] = value
    return value


# ----------------------------------------------------------------------------------------------------------
# demo
# ----------------------------------------------------------------------------------------------------------

_SECTION_KEYS = {
    "tess": {"sector", "camera", "ccd", "n_ffi", "shape"},
    "hst": {"bands", "shape"},
    "roman": {"shape"},
}


def _section(spec: dict, key: str) -> dict | None:
    if not isinstance(spec, dict):
        raise InvalidInputError(f"demo spec must be a mapping, got {type(spec).__name__}")
    unknown = set(spec) - {"seed", *_SECTION_KEYS}
    if unknown:
        raise InvalidInputError(f"unknown demo spec keys {sorted(unknown)}; allowed: seed, tess, hst, roman")
    value = spec.get(key)
    if value is None or value is False:
        return None
    if value is True:
        return {}
    if not isinstance(value, dict):
        raise InvalidInputError(f"demo spec section {key!r} must be a mapping or null, got {value!r}")
    unknown = set(value) - _SECTION_KEYS[key]
    if unknown:
        raise InvalidInputError(
            f"unknown keys {sorted(unknown)} in demo spec section {key!r}; "
            f"allowed: {', '.join(sorted(_SECTION_KEYS[key]))}"
        )
    return value


def _shape_or_none(value: Any, where: str) -> tuple[int, int] | None:
    return None if value is None else check_shape(value, where)


def demo_file_names(spec: dict, out_dir: str | Path) -> dict[str, list[str]]:
    """Return the data file paths :func:`simulate_demo` would make for ``spec``, without making anything.

    Returns ``{"tess": [...], "hst": [...], "roman": [...]}`` (only the sections present), each a list of
    path strings under ``out_dir/tess``, ``out_dir/hst`` and ``out_dir/roman``.
    """
    from .images import hst_image_names, roman_asdf_name
    from .tess import tess_ffi_names

    out_dir = Path(out_dir)
    names: dict[str, list[str]] = {}
    tess = _section(spec, "tess")
    if tess is not None:
        names["tess"] = [
            str(out_dir / "tess" / n)
            for n in tess_ffi_names(
                sector=tess.get("sector", 11),
                camera=tess.get("camera", 1),
                ccd=tess.get("ccd", 1),
                n_ffi=tess.get("n_ffi", 8),
            )
        ]
    hst = _section(spec, "hst")
    if hst is not None:
        kwargs = {"bands": tuple(hst["bands"])} if hst.get("bands") else {}
        names["hst"] = [str(out_dir / "hst" / n) for n in hst_image_names(**kwargs)]
    roman = _section(spec, "roman")
    if roman is not None:
        names["roman"] = [str(out_dir / "roman" / roman_asdf_name())]
    return names


def simulate_demo(spec: dict, out_dir: str | Path) -> dict[str, list[Path]]:
    """Make every data set a demo ``spec`` asks for under ``out_dir`` (``tess/``, ``hst/``, ``roman/``).

    Parameters
    ----------
    spec : dict
        ``{"seed": int, "tess": {"sector", "camera", "ccd", "n_ffi", "shape"}, "hst": {"bands", "shape"},
        "roman": {"shape"}}``; each section is optional (missing or ``None`` = skip); ``shape`` is
        ``(rows, cols)``, ``None`` for TESS means full size (2078 x 2136).
    out_dir : path-like
        Output root.

    Returns
    -------
    dict
        Section name -> list of data files made (truth JSON files are written beside them).
    """
    from .images import make_hst_images, make_roman_asdf
    from .tess import make_tess_ffis

    if not isinstance(spec, dict):
        raise InvalidInputError(f"demo spec must be a mapping, got {type(spec).__name__}")
    out_dir = Path(out_dir)
    seed = spec.get("seed", 0) or 0
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InvalidInputError(f"demo spec 'seed' must be a non-negative integer, got {seed!r}")
    made: dict[str, list[Path]] = {}
    tess = _section(spec, "tess")
    if tess is not None:
        res = make_tess_ffis(
            out_dir / "tess",
            sector=tess.get("sector", 11),
            camera=tess.get("camera", 1),
            ccd=tess.get("ccd", 1),
            n_ffi=tess.get("n_ffi", 8),
            shape=_shape_or_none(tess.get("shape"), "tess.shape"),
            seed=seed,
        )
        made["tess"] = res.files
    hst = _section(spec, "hst")
    if hst is not None:
        kwargs: dict[str, Any] = {"seed": seed}
        if hst.get("bands"):
            kwargs["bands"] = tuple(hst["bands"])
        if hst.get("shape") is not None:
            kwargs["shape"] = check_shape(hst["shape"], "hst.shape")
        made["hst"] = make_hst_images(out_dir / "hst", **kwargs).files
    roman = _section(spec, "roman")
    if roman is not None:
        kwargs = {"seed": seed}
        if roman.get("shape") is not None:
            kwargs["shape"] = check_shape(roman["shape"], "roman.shape")
        made["roman"] = make_roman_asdf(out_dir / "roman", **kwargs).files
    return made
