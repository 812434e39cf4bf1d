"""Simulated input data for tests, benchmarks and demos: TESS FFIs, HST skycells and Roman Level 2 ASDF.

Everything is deterministic: the same arguments and ``seed`` give byte-identical files (headers carry no
"now" timestamps). Each generator returns a :class:`SimResult` whose ``truth`` dictionary (also written as a
``*_truth.json`` file next to the data) lists what was put in the images, so tests can check results
against the truth rather than against skycut's own output.

Pixel conventions (as in :mod:`skycut.geometry`): truth pixel positions are 0-based with pixel centres on
integers, ``x`` = column = FITS axis 1, ``y`` = row = FITS axis 2; numpy arrays are ``(ny, nx)``.

The generators live in :mod:`skycut.simulate_tess` (TESS) and :mod:`skycut.simulate_images` (HST and
Roman); they are re-exported here::

    from skycut.simulate import make_tess_ffis, make_hst_images, make_roman_asdf, simulate_demo
"""

from __future__ import annotations

import importlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import write_bytes, write_hdulist
from .exceptions import InvalidInputError

log = logging.getLogger(__name__)

# public name -> submodule that defines it (imported on first use, avoiding an import cycle)
_REEXPORTS = {
    "make_tess_ffis": "simulate_tess",
    "tess_ffi_names": "simulate_tess",
    "write_path_table": "simulate_tess",
    "tess_ccd_wcs": "simulate_tess",
    "tess_sector_times": "simulate_tess",
    "make_hst_images": "simulate_images",
    "hst_image_names": "simulate_images",
    "make_roman_asdf": "simulate_images",
    "roman_asdf_name": "simulate_images",
}

__all__ = ["SimResult", "render_gaussians", "simulate_demo", "demo_file_names", *_REEXPORTS]


def __getattr__(name: str) -> Any:
    module = _REEXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'skycut.simulate' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"skycut.{module}"), name)
    globals()[name] = value
    return value


@dataclass
class SimResult:
    """What a simulator made.

    Attributes
    ----------
    files : list of Path
        The data files, in a documented order (TESS: time order; HST: band by band, skycell x05 then x06).
    truth : dict
        JSON-serialisable description of the simulated scene (positions are 0-based pixels of the file).
    truth_file : Path or None
        Where ``truth`` was saved (``*_truth.json`` next to the files).
    """

    files: list[Path] = field(default_factory=list)
    truth: dict = field(default_factory=dict)
    truth_file: Path | None = None


# ----------------------------------------------------------------------------------------------------------
# small shared helpers
# ----------------------------------------------------------------------------------------------------------

def check_shape(shape: Any, name: str = "shape") -> tuple[int, int]:
    """Validate a ``(rows, cols)`` shape and return it as two ints (at least 8 each)."""
    try:
        rows, cols = (int(v) for v in shape)
    except Exception as exc:
        raise InvalidInputError(f"{name} must be (rows, cols), got {shape!r}") from exc
    if rows < 8 or cols < 8:
        raise InvalidInputError(f"{name} must be at least (8, 8), got {shape!r}")
    return rows, cols


def to_jsonable(obj: Any) -> Any:
    """Convert numpy scalars/arrays and Paths inside ``obj`` to plain JSON types."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, Path):
        return str(obj)
    return obj


def write_truth(truth: dict, path: str | Path) -> Path:
    """Write ``truth`` as pretty, key-sorted JSON (atomically) and return the path."""
    text = json.dumps(to_jsonable(truth), indent=1, sort_keys=True)
    return write_bytes(text.encode() + b"\n", path)


def write_fits(hdulist, path: str | Path) -> Path:
    """Write ``hdulist`` atomically with CHECKSUM/DATASUM cards whose comments carry no time stamp, so the
    same content gives byte-identical files."""
    for hdu in hdulist:
        hdu.add_checksum(when="deterministic checksum")
    return write_hdulist(hdulist, path, checksum=False)


def render_gaussians(image: np.ndarray, x: Any, y: Any, flux: Any, sigma: Any, radius: int | None = None) -> None:
    """Add pixel-integrated circular Gaussians to ``image`` in place.

    Each source's total flux (over an infinite image) is ``flux``; the value of a pixel is the integral of
    the Gaussian over the pixel's square, so the light-weighted centroid is exactly ``(x, y)``. Only a
    ``(2 * radius + 1)``-pixel square stamp around each source is rendered, vectorised over sources.

    Parameters
    ----------
    image : ndarray (ny, nx)
        Float image, modified in place.
    x, y : array-like
        0-based source centres (``x`` = column). Sources may lie outside the image (their wings are clipped).
    flux : array-like
        Total flux of each source, in image units times pixels.
    sigma : float or array-like
        Gaussian standard deviation in pixels (per source, or one for all).
    radius : int, optional
        Stamp half-width in pixels; default ``ceil(5 * max(sigma))``.
    """
    from scipy.special import erf

    x = np.atleast_1d(np.asarray(x, dtype=float))
    y = np.atleast_1d(np.asarray(y, dtype=float))
    flux = np.broadcast_to(np.asarray(flux, dtype=float), x.shape)
    sigma = np.broadcast_to(np.asarray(sigma, dtype=float), x.shape)
    if x.size == 0:
        return
    ny, nx = image.shape
    if radius is None:
        radius = int(np.ceil(5 * sigma.max()))
    offsets = np.arange(-radius, radius + 1)
    ix0 = np.floor(x + 0.5).astype(np.int64)
    iy0 = np.floor(y + 0.5).astype(np.int64)
    keep = (ix0 + radius >= 0) & (ix0 - radius < nx) & (iy0 + radius >= 0) & (iy0 - radius < ny)
    if not keep.any():
        return
    x, y, flux, sigma, ix0, iy0 = x[keep], y[keep], flux[keep], sigma[keep], ix0[keep], iy0[keep]
    px = ix0[:, None] + offsets[None, :]                       # (n, m) pixel columns
    py = iy0[:, None] + offsets[None, :]
    s = (np.sqrt(2.0) * sigma)[:, None]
    fx = 0.5 * (erf((px + 0.5 - x[:, None]) / s) - erf((px - 0.5 - x[:, None]) / s))
    fy = 0.5 * (erf((py + 0.5 - y[:, None]) / s) - erf((py - 0.5 - y[:, None]) / s))
    stamps = flux[:, None, None] * fy[:, :, None] * fx[:, None, :]   # (n, m_y, m_x)
    inside = ((py >= 0) & (py < ny))[:, :, None] & ((px >= 0) & (px < nx))[:, None, :]
    flat = (py[:, :, None] * nx + px[:, None, :])[inside]
    if flat.size * 8 < image.size and image.flags.c_contiguous:
        np.add.at(image.reshape(-1), flat, stamps[inside].astype(image.dtype))   # few sources: no full-size temp
    else:
        total = np.bincount(flat, weights=stamps[inside], minlength=ny * nx)
        image += total.reshape(ny, nx).astype(image.dtype, copy=False)


def magnitudes(rng: np.random.Generator, n: int, bright: float, faint: float, slope: float = 0.3) -> np.ndarray:
    """Draw ``n`` magnitudes in ``[bright, faint]`` with counts rising as ``10**(slope * m)``."""
    u = rng.random(n)
    lo, hi = 10 ** (slope * bright), 10 ** (slope * faint)
    return np.log10(lo + u * (hi - lo)) / slope


# ----------------------------------------------------------------------------------------------------------
# demo
# ----------------------------------------------------------------------------------------------------------

_SECTION_KEYS = {"tess": {"sector", "camera", "ccd", "n_ffi", "shape"}, "hst": {"bands", "shape"},
                 "roman": {"shape"}}


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
        raise InvalidInputError(f"unknown keys {sorted(unknown)} in demo spec section {key!r}; "
                                f"allowed: {', '.join(sorted(_SECTION_KEYS[key]))}")
    return value


def _shape_or_none(value: Any, where: str) -> tuple[int, int] | None:
    return None if value is None else check_shape(value, where)


def demo_file_names(spec: dict, out_dir: str | Path) -> dict[str, list[str]]:
    """The data file paths :func:`simulate_demo` would make for ``spec``, without making anything.

    Returns ``{"tess": [...], "hst": [...], "roman": [...]}`` (only the sections present), each a list of
    path strings under ``out_dir/tess``, ``out_dir/hst`` and ``out_dir/roman``.
    """
    from .simulate_images import hst_image_names, roman_asdf_name
    from .simulate_tess import tess_ffi_names

    out_dir = Path(out_dir)
    names: dict[str, list[str]] = {}
    tess = _section(spec, "tess")
    if tess is not None:
        names["tess"] = [str(out_dir / "tess" / n) for n in tess_ffi_names(
            sector=tess.get("sector", 11), camera=tess.get("camera", 1), ccd=tess.get("ccd", 1),
            n_ffi=tess.get("n_ffi", 8))]
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
    from .simulate_images import make_hst_images, make_roman_asdf
    from .simulate_tess import make_tess_ffis

    if not isinstance(spec, dict):
        raise InvalidInputError(f"demo spec must be a mapping, got {type(spec).__name__}")
    out_dir = Path(out_dir)
    seed = spec.get("seed", 0) or 0
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InvalidInputError(f"demo spec 'seed' must be a non-negative integer, got {seed!r}")
    made: dict[str, list[Path]] = {}
    tess = _section(spec, "tess")
    if tess is not None:
        res = make_tess_ffis(out_dir / "tess", sector=tess.get("sector", 11), camera=tess.get("camera", 1),
                             ccd=tess.get("ccd", 1), n_ffi=tess.get("n_ffi", 8),
                             shape=_shape_or_none(tess.get("shape"), "tess.shape"), seed=seed)
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
