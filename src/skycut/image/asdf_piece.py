"""One Roman ASDF cutout (:class:`CutoutPiece`) and the pure steps that make it.

Used by :class:`skycut.image.asdf_cutout.ASDFCutout`, which runs these steps for every input file and coordinate:
the fsspec options of an input (:func:`input_fsspec_kwargs`), the target's pixel and pixel scale on the detector
(:func:`locate_target`), the output ``roman`` node in lite mode (:func:`lite_roman`) or full mode
(:func:`full_roman`), the output file name (:func:`output_name`) and the selection of cutouts by file and
coordinate (:func:`select_pieces`). None of them warns: skipping a cutout, and the warning that says so, is the
class's business.

Pixel conventions as :mod:`skycut.core.geometry`: 0-based pixels, ``x`` = column (numpy axis -1), ``y`` = row
(numpy axis -2); limits are half-open ``[[xmin, xmax], [ymin, ymax]]`` in original pixels.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..core.coords import parse_coordinates
from ..core.geometry import cutout_basename
from ..exceptions import InvalidInputError
from .asdf_io import (
    as_file_list,
    coordinate_key,
    copy_node,
    cut_array,
    input_stem,
    is_array,
    schema_required,
    separation_deg,
)
from .asdf_wcs import get_center_pixel, pixel_scale_and_orientation, sky_of_pixels, updated_wcsinfo

log = logging.getLogger(__name__)

__all__ = [
    "CutoutPiece",
    "full_roman",
    "input_fsspec_kwargs",
    "lite_roman",
    "locate_target",
    "output_name",
    "select_pieces",
]


@dataclass
class CutoutPiece:
    """One cutout: an input file at one coordinate."""

    file: str
    key: str
    coordinate: Any  # scalar SkyCoord
    limits: np.ndarray  # [[xmin, xmax], [ymin, ymax]]
    cutout: Any  # astropy Cutout2D (data + FITS-approximated WCS)
    roman: Any  # the output "roman" node (full: the input's node type; lite: dict)
    pixel_scale_deg: float
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def shape(self) -> tuple[int, int]:
        """Numpy shape ``(ny, nx)`` of the science cutout."""
        return tuple(self.cutout.data.shape)

    @property
    def gwcs(self) -> Any:
        """The cutout's sliced gwcs (``roman.meta.wcs``)."""
        return self.roman["meta"]["wcs"]


def input_fsspec_kwargs(file: str, credentials: dict, fsspec_kwargs: dict) -> dict:
    """Return the user's fsspec options for opening ``file``, with the S3 ``credentials`` for ``s3://`` URIs.

    The result is protocol-neutral, as :func:`skycut.image.asdf_io.open_asdf` takes it (it keeps the options
    that apply to the file's protocol, see :func:`skycut.core.remote.storage_options`).
    """
    from ..core.remote import protocol

    if protocol(file) in ("s3", "s3a") and credentials:
        return {**credentials, **fsspec_kwargs}
    return dict(fsspec_kwargs)


def locate_target(gw: Any, ra: float, dec: float) -> tuple[float, float, float] | None:
    """Return ``(x, y, scale)`` of the sky position ``(ra, dec)`` (degrees) on the detector plane of ``gw``.

    ``x, y`` is the 0-based pixel from :func:`skycut.image.asdf_wcs.get_center_pixel` and ``scale`` the local
    pixel scale in degrees. Returns None when the position does not map onto the detector plane, or when the
    pixel's forward transform lands farther than ``max(1 arcsec, one pixel)`` from the position (the inverse
    does not round-trip).
    """
    x, y = get_center_pixel(gw, ra, dec)
    scale = None
    if math.isfinite(x) and math.isfinite(y):
        try:
            scale, _ = pixel_scale_and_orientation(gw, x, y)
            back = sky_of_pixels(gw, x, y)
            if separation_deg(ra, dec, float(back[0]), float(back[1])) > max(1.0 / 3600.0, scale):
                scale = None
        except InvalidInputError:
            scale = None
    if scale is None:
        return None
    return x, y, scale


def output_name(file: str, coord: Any, cutout_size: Any, lite: bool, ext: str) -> str:
    """Return ``{input_stem}_{ra:.7f}_{dec:.7f}_{s0}-x-{s1}[_lite]_astrocut.{ext}`` (astrocut's file names)."""
    base = cutout_basename(input_stem(file), coord, cutout_size)
    if lite:
        base = base[: -len("_astrocut")] + "_lite_astrocut"
    return f"{base}.{ext}"


def lite_roman(sliced: Any, data_cut: Any, file: str, key: str) -> dict:
    """Build the output ``roman`` node in lite mode: ``{"meta": {"wcs", "orig_file", "coordinate"}, "data"}``."""
    return {"meta": {"wcs": sliced, "orig_file": file, "coordinate": key}, "data": data_cut}


def full_roman(
    handle: Any,
    roman: Any,
    data_cut: Any,
    limits: np.ndarray,
    parent_shape: tuple[int, int],
    sliced: Any,
    *,
    fill_value: float,
    cutout_size: Any,
    key: str,
    coord: Any,
) -> Any:
    """Build the output ``roman`` node in full mode (see :mod:`skycut.image.asdf_cutout`).

    Every array of ``roman`` whose last two dimensions equal ``parent_shape`` is cut with ``limits`` (read
    through ``handle.source``; ``data_cut`` is the science data already cut); arrays of other shapes are
    copied when the node's schema requires them and dropped otherwise; other entries are deep-copied. In the
    metadata, ``wcs`` becomes ``sliced``, ``wcsinfo`` is recomputed, ``filename`` (if present) is the output
    name of the full-mode ASDF file, and ``orig_file`` and ``coordinate`` are set.
    """
    file = handle.name
    out = copy_node(roman)
    required = schema_required(roman)
    for name in list(out.keys()):
        if name == "meta":
            continue
        value = roman[name]
        if name == "data":
            out[name] = data_cut
        elif is_array(value):
            shape = tuple(int(v) for v in value.shape)
            if len(shape) >= 2 and shape[-2:] == parent_shape:
                out[name] = cut_array(handle.source(value), limits, fill_value)
            elif name in required:
                out[name] = value.copy() if hasattr(value, "unit") else np.array(value, copy=True)
                log.debug(
                    "%s: %s %s is not image-shaped but required by the schema; copied", file, name, shape
                )
            else:
                del out[name]
                log.debug("%s: %s %s is not image-shaped; dropped", file, name, shape)
        else:
            out[name] = copy.deepcopy(value)
    meta_in = roman["meta"]
    meta = copy_node(meta_in)
    for name in list(meta.keys()):
        meta[name] = sliced if name == "wcs" else copy.deepcopy(meta_in[name])
    if hasattr(meta.get("wcsinfo"), "keys"):
        meta["wcsinfo"] = updated_wcsinfo(meta["wcsinfo"], sliced, limits, parent_shape)
    if "filename" in meta:
        meta["filename"] = output_name(file, coord, cutout_size, False, "asdf")
    meta["orig_file"] = file
    meta["coordinate"] = key
    out["meta"] = meta
    return out


def select_pieces(
    pieces: Sequence[CutoutPiece],
    known_files: Sequence[str],
    known_keys: Sequence[str],
    input_files: Any = None,
    coordinates: Any = None,
) -> list[CutoutPiece]:
    """Return the ``pieces`` cut from ``input_files`` at ``coordinates`` (None: no filter on that axis).

    Raises
    ------
    InvalidInputError
        A file not in ``known_files`` or a coordinate whose key is not in ``known_keys``.
    """
    files = keys = None
    if input_files is not None:
        files = set(as_file_list(input_files))
        unknown = sorted(files - set(known_files))
        if unknown:
            raise InvalidInputError(f"input_files {unknown} are not inputs of this ASDFCutout")
    if coordinates is not None:
        keys = {coordinate_key(c) for c in parse_coordinates(coordinates)}
        unknown = sorted(keys - set(known_keys))
        if unknown:
            raise InvalidInputError(f"coordinates {unknown} are not coordinates of this ASDFCutout")
    return [p for p in pieces if (files is None or p.file in files) and (keys is None or p.key in keys)]
