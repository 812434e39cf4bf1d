"""Rendering cutouts as 8-bit images (PNG, JPEG, ...), shared by every cutout class.

Pipeline for one array (``normalize_img``): an *interval* maps the data to ``[0, 1]`` (clipping outside it),
then a *stretch* from :mod:`astropy.visualization` is applied, the result is scaled by 255 and truncated to
``uint8``; NaN pixels become 0; ``invert`` replaces ``v`` by ``255 - v``.

Orientation: a cutout array has row 0 at the bottom of the sky image (FITS convention, y up). Image files
have row 0 at the top, so :func:`to_pil_images` flips the rows by default (``flip_orientation=True``), so
that north-up images look north-up. An image is ``nx`` pixels wide and ``ny`` tall (``PIL.Image.size ==
(nx, ny)``), for a cutout of numpy shape ``(ny, nx)``.

Metadata: each image carries a dict in ``img.info`` with the keys ``input_file``, ``cutout_size_x_pix``,
``cutout_size_y_pix``, ``pixel_scale_arcsec_per_pix``, ``center_ra_deg``, ``center_dec_deg``, ``origin``,
``version``; :func:`save_image` stores it as PNG ``tEXt`` chunks (one per key) or, for JPEG/TIFF/WebP, as
JSON in the EXIF ``ImageDescription`` tag (270).

Colour: by default (astrocut's behaviour) each of the three channels gets its own interval from its own
percentiles, so a channel whose sky sits higher in its range tints the sky (the demo's sky was purple). With
``neutral_sky=True`` (:func:`neutral_sky_limits`, what the workflow uses) each channel is still normalised on its
own, as astropy's ``make_rgb``/``make_lupton_rgb`` do, but around its own sky level: the sky of every channel
maps to the same grey, and the channel's bright end (its upper percentile) to white.
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..core.atomic import atomic_output
from ..exceptions import InputWarning, InvalidInputError

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image

log = logging.getLogger(__name__)

STRETCHES = ("asinh", "sinh", "sqrt", "log", "linear")
DEFAULT_MINMAX_PERCENT = (0.5, 99.5)
METADATA_KEYS = (
    "input_file",
    "cutout_size_x_pix",
    "cutout_size_y_pix",
    "pixel_scale_arcsec_per_pix",
    "center_ra_deg",
    "center_dec_deg",
    "origin",
    "version",
)
EXIF_IMAGE_DESCRIPTION = 270


def _stretch(name: str):
    from astropy import visualization as vis

    factories = {
        "asinh": vis.AsinhStretch,
        "sinh": vis.SinhStretch,
        "sqrt": vis.SqrtStretch,
        "log": vis.LogStretch,
        "linear": vis.LinearStretch,
    }
    if not isinstance(name, str) or name.lower() not in factories:
        raise InvalidInputError(f"stretch {name!r} is not supported; choose one of {', '.join(STRETCHES)}")
    return factories[name.lower()]()


def _pair(value: Any, name: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{name} must be two numbers [low, high], got {value!r}") from exc
    if not (np.isfinite(lo) and np.isfinite(hi)) or lo >= hi:
        raise InvalidInputError(f"{name} must be two finite numbers with low < high, got {value!r}")
    return lo, hi


def _interval(minmax_percent: Any, minmax_value: Any):
    from astropy import visualization as vis

    if minmax_percent is not None and minmax_value is not None:
        raise InvalidInputError("give only one of minmax_percent and minmax_value, not both")
    if minmax_percent is not None:
        lo, hi = _pair(minmax_percent, "minmax_percent")
        if lo < 0 or hi > 100:
            raise InvalidInputError(f"minmax_percent must lie within [0, 100], got {minmax_percent!r}")
        return vis.AsymmetricPercentileInterval(lo, hi)
    if minmax_value is not None:
        return vis.ManualInterval(*_pair(minmax_value, "minmax_value"))
    return vis.MinMaxInterval()


def normalize_img(
    img_arr: Any,
    stretch: str = "asinh",
    minmax_percent: Sequence[float] | None = None,
    minmax_value: Sequence[float] | None = None,
    invert: bool = False,
) -> np.ndarray:
    """Scale an image array to 8 bits: interval, then stretch, then ``*255`` truncated to ``uint8``.

    Parameters
    ----------
    img_arr : array-like
        2-D data (any shape is accepted; the output has the same shape and axis order).
    stretch : {"asinh", "sinh", "sqrt", "log", "linear"}
        The :mod:`astropy.visualization` stretch, with astropy's default parameters
        (``AsinhStretch(a=0.1)``, ``SinhStretch(a=1/3)``, ``LogStretch(a=1000)``).
    minmax_percent : [low, high], optional
        Percentiles (of the finite pixels) mapped to 0 and 1 (``AsymmetricPercentileInterval``).
    minmax_value : [low, high], optional
        Data values mapped to 0 and 1 (``ManualInterval``). Exclusive with ``minmax_percent``; with neither
        the data's finite minimum and maximum are used (``MinMaxInterval``).
    invert : bool
        Return ``255 - value``.

    Returns
    -------
    numpy.ndarray of uint8
        NaN (and infinite) pixels are 0 before inversion.

    Raises
    ------
    InvalidInputError
        Empty array, unknown stretch, both or malformed intervals.
    """
    arr = np.asarray(img_arr, dtype=np.float64)
    if arr.size == 0:
        raise InvalidInputError("cannot render an empty image array")
    interval = _interval(minmax_percent, minmax_value)
    transform = _stretch(stretch)
    finite = np.isfinite(arr)
    if not finite.any():
        out = np.zeros(arr.shape, dtype=np.uint8)
    else:
        vmin, vmax = interval.get_limits(arr[finite])
        if vmax > vmin:
            scaled = np.clip((arr - vmin) / (vmax - vmin), 0.0, 1.0)
        else:  # a constant image: everything at the bottom of the range
            scaled = np.zeros_like(arr)
        stretched = transform(scaled, clip=True) * 255.0
        stretched[~finite] = 0.0
        out = stretched.astype(np.uint8)
    if invert:
        out = np.subtract(255, out, dtype=np.uint8)
    return out


def sky_level(img_arr: Any, nsigma: float = 3.0, iterations: int = 5) -> tuple[float, float]:
    """Estimate the sky of an image: the sigma-clipped median and standard deviation of its finite pixels.

    Parameters
    ----------
    img_arr : array-like
        The image.
    nsigma : float
        Clip pixels farther than ``nsigma`` robust standard deviations (1.4826 x the median absolute
        deviation) from the median.
    iterations : int
        At most this many clipping passes (fewer when nothing more is clipped).

    Returns
    -------
    (float, float)
        ``(median, std)``; ``(nan, nan)`` when the image has no finite pixel.
    """
    values = np.asarray(img_arr, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return float("nan"), float("nan")
    for _ in range(iterations):
        median = np.median(values)
        std = 1.4826 * np.median(np.abs(values - median))
        if std == 0:
            break
        keep = np.abs(values - median) <= nsigma * std
        if keep.all():
            break
        values = values[keep]
    median = float(np.median(values))
    return median, float(1.4826 * np.median(np.abs(values - median)))


def neutral_sky_limits(
    arrays: Sequence[Any],
    minmax_percent: Sequence[float] = DEFAULT_MINMAX_PERCENT,
) -> list[tuple[float, float]]:
    """Per-channel ``(vmin, vmax)`` for a colour composite whose sky is neutral grey.

    Each channel ``c`` has its sky level ``s_c`` (:func:`sky_level`) and the percentiles ``lo_c``, ``hi_c`` of
    ``minmax_percent``. ``vmax_c = hi_c``; the black point sits below the sky by the same fraction of the
    sky-to-white range in every channel, ``vmin_c = s_c - d (hi_c - s_c)`` with ``d`` the median over the
    channels of ``(s_c - lo_c) / (hi_c - s_c)``. So each channel's sky maps to ``d / (1 + d)`` before the
    stretch, the same value in the three channels, and stays grey after it; stars keep their colours (each
    channel still spans its own range, as in astropy's ``make_rgb`` with one interval per channel).

    Parameters
    ----------
    arrays : sequence of three 2-D arrays
        R, G, B data.
    minmax_percent : [low, high]
        Percentiles of the finite pixels; ``high`` is each channel's white point, ``low`` sets how far below
        the sky the black point lies.

    Returns
    -------
    list of (float, float)
        One ``(vmin, vmax)`` per channel, for :func:`normalize_img`'s ``minmax_value``. A channel with no
        finite pixel gets ``(0, 1)``; one whose upper percentile does not exceed its sky uses its maximum, and
        a constant one renders black.
    """
    lo_pct, hi_pct = _pair(minmax_percent, "minmax_percent")
    stats = []
    for arr in arrays:
        values = np.asarray(arr, dtype=np.float64)
        values = values[np.isfinite(values)]
        if values.size == 0:
            stats.append(None)
            continue
        sky, _ = sky_level(values)
        lo, hi = np.percentile(values, [lo_pct, hi_pct])
        if hi <= sky:
            hi = values.max()
        stats.append((sky, float(lo), float(hi)))
    depths = [(sky - lo) / (hi - sky) for sky, lo, hi in filter(None, stats) if hi > sky]
    depth = max(float(np.median(depths)), 0.0) if depths else 0.0
    limits = []
    for item in stats:
        if item is None:
            limits.append((0.0, 1.0))
        elif item[2] > item[0]:
            sky, _, hi = item
            limits.append((sky - depth * (hi - sky), hi))
        else:  # a constant channel: black
            limits.append((item[0], item[0] + 1.0))
    log.debug(
        "neutral-sky colour limits %s (black point %.3f of the sky-to-white range below the sky)",
        limits,
        depth,
    )
    return limits


def _pil_image(array: np.ndarray, flip: bool) -> Image.Image:
    """``L`` image from a (ny, nx) uint8 array, ``RGB`` from (ny, nx, 3); rows flipped if ``flip``."""
    from PIL import Image

    if flip:
        array = array[::-1]
    return Image.fromarray(np.ascontiguousarray(array))


def _merge_metadata(items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Metadata for a colour image: the keys the three channels share, ``input_file`` as a list of all three."""
    merged = dict(items[0]) if items else {}
    for key in list(merged):
        if any(m.get(key) != merged[key] for m in items[1:]):
            merged[key] = [m.get(key) for m in items]
    if items:
        merged["input_file"] = [m.get("input_file") for m in items]
    return merged


def to_pil_images(
    arrays: Sequence[np.ndarray],
    metadata: Sequence[Mapping[str, Any] | None] | None = None,
    *,
    stretch: str = "asinh",
    minmax_percent: Sequence[float] | None = None,
    minmax_value: Sequence[float] | None = None,
    invert: bool = False,
    colorize: bool = False,
    flip_orientation: bool = True,
    neutral_sky: bool = False,
) -> list[Image.Image]:
    """Render cutout arrays as PIL images (``L``, or one ``RGB`` image with ``colorize``).

    Parameters
    ----------
    arrays : sequence of 2-D arrays
        Cutout data, numpy shape ``(ny, nx)``, row 0 at the bottom (FITS convention).
    metadata : sequence of dict or None, optional
        One dict per array (keys as :data:`METADATA_KEYS`), attached to ``img.info``.
    stretch, minmax_percent, minmax_value, invert
        As :func:`normalize_img`, except that with neither interval given the default here is
        ``minmax_percent=[0.5, 99.5]`` (astrocut's default for image cutouts).
    colorize : bool
        Combine exactly three arrays, normalised separately, as R, G, B into one image. More than three:
        :class:`InputWarning` and the first three are used; fewer: :class:`InvalidInputError`.
    flip_orientation : bool
        Flip rows so that the image's top row is the cutout's last row (north up for a north-up WCS).
    neutral_sky : bool
        Colour only, and only with ``minmax_percent`` (or neither interval): give each channel the limits of
        :func:`neutral_sky_limits`, so the sky is grey. Default False: each channel's own percentiles
        (astrocut's behaviour). ``minmax_value`` applies the same values to the three channels either way.

    Returns
    -------
    list of PIL.Image.Image
        ``len(arrays)`` grey images, or one colour image. ``img.size == (nx, ny)``.
    """
    arrays = [np.asarray(a) for a in arrays]
    if metadata is None:
        metadata = [None] * len(arrays)
    if len(metadata) != len(arrays):
        raise InvalidInputError(f"got {len(metadata)} metadata entries for {len(arrays)} arrays")
    metadata = [dict(m) if m else {} for m in metadata]
    if minmax_percent is None and minmax_value is None:
        minmax_percent = DEFAULT_MINMAX_PERCENT
    for i, a in enumerate(arrays):
        if a.ndim != 2:
            raise InvalidInputError(f"cutout {i} has {a.ndim} dimensions; only 2-D cutouts can be rendered")
    options = {
        "stretch": stretch,
        "minmax_percent": minmax_percent,
        "minmax_value": minmax_value,
        "invert": invert,
    }
    if colorize:
        if len(arrays) < 3:
            raise InvalidInputError(f"colorize needs three cutouts (R, G, B), got {len(arrays)}")
        if len(arrays) > 3:
            warnings.warn(
                f"colorize uses the first three of {len(arrays)} cutouts as R, G, B; the others are ignored",
                InputWarning,
                stacklevel=2,
            )
            arrays, metadata = arrays[:3], metadata[:3]
        if len({a.shape for a in arrays}) != 1:
            raise InvalidInputError(
                f"colorize needs three cutouts of one shape, got {[a.shape for a in arrays]}"
            )
        if neutral_sky and minmax_value is None:
            channel_options = [
                dict(options, minmax_percent=None, minmax_value=limits)
                for limits in neutral_sky_limits(arrays, minmax_percent)
            ]
        else:
            channel_options = [options] * 3
        rgb = np.stack([normalize_img(a, **o) for a, o in zip(arrays, channel_options, strict=True)], axis=-1)
        img = _pil_image(rgb, flip_orientation)
        img.info.update(_merge_metadata(metadata))
        return [img]
    images = []
    for a, meta in zip(arrays, metadata, strict=True):
        img = _pil_image(normalize_img(a, **options), flip_orientation)
        img.info.update(meta)
        images.append(img)
    return images


def image_format(output_format: str) -> tuple[str, str]:
    """``(".png", "PNG")`` from ``"png"``, ``".png"``, ``"PNG"``, ...; unknown -> InvalidInputError."""
    from PIL import Image

    ext = "." + str(output_format).lower().lstrip(".")
    registered = Image.registered_extensions()
    if ext not in registered:
        raise InvalidInputError(f"output_format {output_format!r} is not an image format PIL can write")
    return ext, registered[ext]


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def save_image(img: Image.Image, path: str | Path, output_format: str | None = None) -> Path:
    """Write ``img`` atomically, with its metadata, and return the path.

    Parameters
    ----------
    img : PIL.Image.Image
        An image from :func:`to_pil_images`; the metadata keys found in ``img.info`` are stored.
    path : str or Path
        Final file name. Its suffix is replaced by ``output_format`` when that is given and differs.
    output_format : str, optional
        ``"png"``, ``".jpg"``, ... (any format PIL writes). Default: from the suffix of ``path``.
    """
    path = Path(path)
    ext, fmt = image_format(output_format if output_format is not None else path.suffix)
    if path.suffix.lower() != ext:
        path = path.with_name(path.name + ext) if not path.suffix else path.with_suffix(ext)
    meta = {k: img.info[k] for k in img.info if k in METADATA_KEYS}
    kwargs: dict[str, Any] = {}
    if fmt == "PNG":
        from PIL.PngImagePlugin import PngInfo

        info = PngInfo()
        for key, value in meta.items():
            info.add_text(key, _text(value))
        kwargs["pnginfo"] = info
    elif meta and fmt in ("JPEG", "TIFF", "WEBP", "MPO"):
        exif = img.getexif()
        exif[EXIF_IMAGE_DESCRIPTION] = json.dumps(meta)
        kwargs["exif"] = exif.tobytes() if fmt != "TIFF" else exif
    if fmt == "JPEG" and img.mode not in ("L", "RGB"):
        img = img.convert("RGB")
    with atomic_output(path) as tmp:
        img.save(tmp, format=fmt, **kwargs)
    log.debug("wrote image %s", path)
    return path


def read_image_metadata(path: str | Path) -> dict[str, Any]:
    """Read the metadata :func:`save_image` stored in an image file (PNG text chunks or EXIF JSON).

    Parameters
    ----------
    path : str or Path
        A PNG, JPEG, TIFF or WebP file.

    Returns
    -------
    dict
        The stored keys (:data:`METADATA_KEYS`); empty if the file holds none or its EXIF JSON is invalid.
    """
    from PIL import Image

    with Image.open(path) as img:
        if img.format == "PNG":
            return {k: v for k, v in getattr(img, "text", {}).items() if k in METADATA_KEYS}
        desc = img.getexif().get(EXIF_IMAGE_DESCRIPTION)
    if not desc:
        return {}
    try:
        return json.loads(desc)
    except ValueError:
        return {}
