"""Building blocks shared by the simulators: results with truth, shapes, Gaussian rendering, magnitudes.

Pixel conventions: 0-based, pixel centres on integers, ``x`` = column = FITS axis 1; arrays are ``(ny, nx)``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..core.atomic import write_bytes, write_hdulist
from ..exceptions import InvalidInputError


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
    """Write ``hdulist`` atomically with CHECKSUM/DATASUM cards whose comments carry no time stamp.

    So the same content gives byte-identical files. Returns the path written.
    """
    for hdu in hdulist:
        hdu.add_checksum(when="deterministic checksum")
    return write_hdulist(hdulist, path, checksum=False)


def render_gaussians(
    image: np.ndarray, x: Any, y: Any, flux: Any, sigma: Any, radius: int | None = None
) -> None:
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
    px = ix0[:, None] + offsets[None, :]  # (n, m) pixel columns
    py = iy0[:, None] + offsets[None, :]
    s = (np.sqrt(2.0) * sigma)[:, None]
    fx = 0.5 * (erf((px + 0.5 - x[:, None]) / s) - erf((px - 0.5 - x[:, None]) / s))
    fy = 0.5 * (erf((py + 0.5 - y[:, None]) / s) - erf((py - 0.5 - y[:, None]) / s))
    stamps = flux[:, None, None] * fy[:, :, None] * fx[:, None, :]  # (n, m_y, m_x)
    inside = ((py >= 0) & (py < ny))[:, :, None] & ((px >= 0) & (px < nx))[:, None, :]
    flat = (py[:, :, None] * nx + px[:, None, :])[inside]
    if flat.size * 8 < image.size and image.flags.c_contiguous:
        np.add.at(
            image.reshape(-1), flat, stamps[inside].astype(image.dtype)
        )  # few sources: no full-size temp
    else:
        total = np.bincount(flat, weights=stamps[inside], minlength=ny * nx)
        image += total.reshape(ny, nx).astype(image.dtype, copy=False)


def magnitudes(
    rng: np.random.Generator, n: int, bright: float, faint: float, slope: float = 0.3
) -> np.ndarray:
    """Draw ``n`` magnitudes in ``[bright, faint]`` with counts rising as ``10**(slope * m)``."""
    u = rng.random(n)
    lo, hi = 10 ** (slope * bright), 10 ** (slope * faint)
    return np.log10(lo + u * (hi - lo)) / slope
