"""Roman ASDF image cutouts: :class:`ASDFCutout`, the functional :func:`asdf_cut` and :func:`get_center_pixel`.

Input: Level 2 (or any) Roman ASDF images, i.e. a tree ``tree["roman"]`` with a 2-D science array ``data`` and a
gwcs in ``tree["roman"]["meta"]["wcs"]``. Local paths (``str``/``pathlib.Path``), ``s3://`` URIs (anonymous by
default, or ``key``/``secret``/``token``) and ``https://`` URLs (through fsspec, ``fsspec_kwargs`` for
``endpoint_url`` etc.). Only what a cutout needs is read: local uncompressed blocks are memory-mapped, remote
uncompressed blocks are fetched row range by row range, and lz4-compressed blocks (roman_datamodels' default)
are decompressed chunk by chunk, only the chunks holding the cutout's rows (see :class:`skycut.image.asdf_io.AsdfHandle`).

Pixel conventions (as :mod:`skycut.core.geometry`): 0-based pixels, ``x`` = column (numpy axis -1), ``y`` = row
(numpy axis -2). ``cutout_size=[nx, ny]`` gives arrays of numpy shape ``(ny, nx)``. Limits are half-open
``[[xmin, xmax], [ymin, ymax]]`` in original pixels, and the part outside the image is padded with
``fill_value`` (integer arrays get an integer fill: ``int(fill_value)`` when that is representable, else 0).

Output modes:

* **full** (``lite=False``, the default, as the astrocut documentation's "Lite Mode" section specifies; astrocut
  1.4.0's code defaults to ``lite=True``): every array of ``tree["roman"]`` whose last two dimensions equal the
  science data's (``data``, ``err``, ``dq``, 3-D ``context``, ...) is cut with the same limits; the metadata is
  kept with ``meta.wcs`` replaced by the sliced gwcs and ``meta.wcsinfo`` recomputed for the cutout. The
  ``roman`` node keeps its type (a roman_datamodels tagged node stays tagged, so the file opens with
  ``roman_datamodels.datamodels.open``); arrays of other shapes that its schema requires (reference-pixel
  arrays) are copied unchanged, other arrays of other shapes are dropped; non-array entries are kept.
* **lite** (``lite=True``): ``roman = {"meta": {"wcs", "orig_file", "coordinate"}, "data"}``.

Centring: the box of ``n`` pixels starts at ``ceil(x - n / 2)`` (astropy ``Cutout2D``'s rule, which astrocut
uses for ASDF), so for odd sizes the middle pixel contains the target. The target pixel comes from the gwcs
inverse refined by Newton steps on the forward transform (exact even for fitted inverses).

Skipped with a :class:`DataWarning`: a coordinate that does not map onto the detector plane (or whose inverse
does not round-trip), a box that misses the image, and a cutout whose science data are all NaN. Unlike astrocut,
an all-zero cutout is kept (zero is valid data).

File names: ``{input_stem}_{ra:.7f}_{dec:.7f}_{s0}-x-{s1}[_lite]_astrocut.{asdf|fits}`` (astrocut's).
"""

from __future__ import annotations

import copy
import io
import logging
import math
import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..core.atomic import atomic_output, write_hdulist, write_zip
from ..core.coords import parse_coordinates, parse_size, size_in_pixels
from ..core.geometry import cutout_basename, overlap
from ..core.provenance import creation_date, settle_asdf_history
from ..exceptions import DataWarning, InvalidInputError, InvalidQueryError
from .asdf_io import (
    MISSION_KEY,
    CoordinateCutouts,
    CutoutList,
    as_file_list,
    asdf_metadata_hdu,
    coordinate_key,
    copy_node,
    cut_array,
    input_stem,
    is_array,
    make_table,
    open_asdf,
    output_kind,
    read_asdf_metadata,
    roman_parts,
    schema_required,
    separation_deg,
)
from .asdf_wcs import (
    FileFitsWcs,
    centered_limits,
    get_center_pixel,
    local_linear_wcs,
    make_cutout2d,
    pixel_scale_and_orientation,
    sky_of_pixels,
    slice_gwcs,
    updated_wcsinfo,
)

log = logging.getLogger(__name__)

__all__ = [
    "ASDFCutout",
    "CoordinateCutouts",
    "CutoutList",
    "asdf_cut",
    "get_center_pixel",
    "read_asdf_metadata",
]

ORIGIN = "STScI/MAST"
SOFTWARE = {"name": "skycut", "version": __version__, "author": "skycut developers"}


@dataclass
class _Piece:
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
        return tuple(self.cutout.data.shape)

    @property
    def gwcs(self) -> Any:
        return self.roman["meta"]["wcs"]


# ------------------------------------------------------------------------------------------------------------
# the cutout class
# ------------------------------------------------------------------------------------------------------------


class ASDFCutout:
    """Cutouts of Roman ASDF images at one or more sky positions (astrocut's ``ASDFCutout``).

    The work is done on construction. Pixel conventions: see the module docstring.

    Parameters
    ----------
    input_files : str, pathlib.Path, or a list of them
        Local ASDF files, ``s3://`` URIs or ``https://`` URLs.
    coordinates : SkyCoord, str, or a list of them
        Cutout centres (``"ra dec"`` in degrees, or sexagesimal). Every file is cut at every coordinate.
    cutout_size : int, two-element sequence, Quantity or str
        ``n`` for ``n x n`` pixels, ``[nx, ny]`` (FITS order: arrays of numpy shape ``(ny, nx)``), or angular
        sizes, converted with the local pixel scale of the gwcs at the target.
    fill_value : int or float
        Value for the part of a cutout outside the image (integer arrays: see the module docstring).
    key, secret, token : str, optional
        S3 credentials; without them S3 is read anonymously.
    lite : bool
        ``False`` (default, as documented): all image-shaped arrays and the full metadata; ``True``: only the
        science data and the sliced gwcs.
    asdf_kwargs : dict, optional
        Extra arguments for ``asdf.open`` (default ``lazy_load=True``, ``memmap=True`` for local files).
    verbose : bool
        Set the ``skycut`` logger to DEBUG.
    fsspec_kwargs : dict, optional
        fsspec/s3fs options for remote inputs (``endpoint_url``, ``anon``, ``block_size``, ...).

    Raises
    ------
    InvalidInputError
        A file is missing, not ASDF, or has no ``roman.meta.wcs`` gwcs; a bad size, coordinate or fill value.
    InvalidQueryError
        No coordinate falls on any image (each miss is also reported as a :class:`DataWarning`).
    """

    def __init__(
        self,
        input_files: Any,
        coordinates: Any,
        cutout_size: Any = 25,
        fill_value: float = np.nan,
        key: str | None = None,
        secret: str | None = None,
        token: str | None = None,
        lite: bool = False,
        asdf_kwargs: dict | None = None,
        verbose: bool = False,
        *,
        fsspec_kwargs: dict | None = None,
    ):
        if verbose:
            logging.getLogger("skycut").setLevel(logging.DEBUG)
        self._input_files = list(dict.fromkeys(as_file_list(input_files)))  # duplicates cut once
        coords = parse_coordinates(coordinates)
        seen: dict[str, Any] = {}
        for c in coords:
            seen.setdefault(coordinate_key(c), c)
        self._coordinates = list(seen.items())
        self._cutout_size = cutout_size
        self._size = parse_size(cutout_size)
        if isinstance(fill_value, bool) or not isinstance(fill_value, (int, float, np.integer, np.floating)):
            raise InvalidInputError(f"fill_value must be an int or a float, got {fill_value!r}")
        self._fill_value = fill_value
        self._lite = bool(lite)
        self._asdf_kwargs = dict(asdf_kwargs or {})
        self._credentials = {
            k: v for k, v in (("key", key), ("secret", secret), ("token", token)) if v is not None
        }
        self._fsspec_kwargs = dict(fsspec_kwargs or {})
        self._pieces: list[_Piece] = []
        self._cache: dict[str, Any] = {}
        self.cutout()

    def __repr__(self) -> str:
        """Summarise the cutter: number of cutouts, files, coordinates, the size and the mode."""
        return (
            f"<ASDFCutout {len(self._pieces)} cutout(s) of {len(self._input_files)} file(s) at "
            f"{len(self._coordinates)} coordinate(s), size {self._cutout_size!r}, lite={self._lite}>"
        )

    # -- cutting -------------------------------------------------------------------------------------------

    def _storage_options(self, file: str) -> dict:
        from ..core.remote import protocol

        if protocol(file) in ("s3", "s3a") and self._credentials:
            return {**self._credentials, **self._fsspec_kwargs}
        return dict(self._fsspec_kwargs)

    def cutout(self) -> CutoutList:
        """Cut every file at every coordinate (called by the constructor); returns :attr:`cutouts`."""
        self._pieces, self._cache = [], {}
        for file in self._input_files:
            with open_asdf(
                file, fsspec_kwargs=self._storage_options(file), asdf_kwargs=self._asdf_kwargs
            ) as handle:
                roman, gw, data = roman_parts(handle.tree, file)
                parent_shape = (int(data.shape[0]), int(data.shape[1]))
                fits_wcs = FileFitsWcs(gw, parent_shape, file)
                for key, coord in self._coordinates:
                    piece = self._cut_one(handle, roman, gw, data, parent_shape, key, coord, fits_wcs)
                    if piece is not None:
                        self._pieces.append(piece)
        if not self._pieces:
            coords = ", ".join(f"({k})" for k, _ in self._coordinates)
            raise InvalidQueryError(
                f"no cutout made: coordinate(s) {coords} fall outside the footprint of "
                f"{', '.join(self._input_files)}"
            )
        return self.cutouts

    def _cut_one(
        self,
        handle: Any,
        roman: Any,
        gw: Any,
        data: Any,
        parent_shape: tuple[int, int],
        key: str,
        coord: Any,
        fits_wcs: FileFitsWcs,
    ) -> _Piece | None:
        file = handle.name
        ra, dec = float(coord.ra.deg), float(coord.dec.deg)
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
            warnings.warn(
                f"{file}: coordinate ({key}) is outside the footprint of the gwcs; skipped",
                DataWarning,
                stacklevel=4,
            )
            return None
        nx, ny = size_in_pixels(self._size, local_linear_wcs(gw, x, y))
        limits = centered_limits((x, y), (nx, ny))
        window = overlap(limits, parent_shape)
        if window is None:
            warnings.warn(
                f"{file}: the cutout at ({key}) (centre pixel x={x:.1f}, y={y:.1f}) does not overlap the "
                f"image of shape {parent_shape}; skipped",
                DataWarning,
                stacklevel=4,
            )
            return None
        cut = cut_array(handle.source(data), limits, self._fill_value)
        values = np.asarray(getattr(cut, "value", cut))
        if values.dtype.kind in "fc" and not np.isfinite(values[window[2], window[3]]).any():
            warnings.warn(
                f"{file}: the cutout at ({key}) contains no data (all NaN); skipped",
                DataWarning,
                stacklevel=4,
            )
            return None
        log.debug("%s: cutout at (%s) limits %s", file, key, limits.tolist())
        sliced = slice_gwcs(gw, limits)
        cutout2d = make_cutout2d(values, limits, parent_shape, fits_wcs)
        if self._lite:
            out = {"meta": {"wcs": sliced, "orig_file": file, "coordinate": key}, "data": cut}
        else:
            out = self._full_roman(handle, roman, cut, limits, parent_shape, sliced, key, coord)
        return _Piece(file, key, coord, limits, cutout2d, out, scale)

    def _full_roman(
        self,
        handle: Any,
        roman: Any,
        data_cut: Any,
        limits: np.ndarray,
        parent_shape: tuple[int, int],
        sliced: Any,
        key: str,
        coord: Any,
    ) -> Any:
        """Build the output ``roman`` node in full mode (see the module docstring)."""
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
                    out[name] = cut_array(handle.source(value), limits, self._fill_value)
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
            meta["filename"] = self._output_name(file, coord, "asdf")
        meta["orig_file"] = file
        meta["coordinate"] = key
        out["meta"] = meta
        return out

    # -- selection -----------------------------------------------------------------------------------------

    def _select(self, input_files: Any = None, coordinates: Any = None) -> list[_Piece]:
        files = keys = None
        if input_files is not None:
            files = set(as_file_list(input_files))
            unknown = sorted(files - set(self._input_files))
            if unknown:
                raise InvalidInputError(f"input_files {unknown} are not inputs of this ASDFCutout")
        if coordinates is not None:
            keys = {coordinate_key(c) for c in parse_coordinates(coordinates)}
            unknown = sorted(keys - {k for k, _ in self._coordinates})
            if unknown:
                raise InvalidInputError(f"coordinates {unknown} are not coordinates of this ASDFCutout")
        return [
            p for p in self._pieces if (files is None or p.file in files) and (keys is None or p.key in keys)
        ]

    def iter_file_coord_pairs(
        self, *, input_files: Any = None, coordinates: Any = None
    ) -> Iterator[tuple[str, str]]:
        """``(file, coordinate key)`` of each cutout made, optionally filtered."""
        for p in self._select(input_files, coordinates):
            yield p.file, p.key

    def _output_name(self, file: str, coord: Any, ext: str, lite: bool | None = None) -> str:
        base = cutout_basename(input_stem(file), coord, self._cutout_size)
        if self._lite if lite is None else lite:
            base = base[: -len("_astrocut")] + "_lite_astrocut"
        return f"{base}.{ext}"

    # -- in-memory products --------------------------------------------------------------------------------

    def _history(self, piece: _Piece) -> str:
        return (
            f"Cutout of size {piece.shape} at sky coordinates "
            f"({piece.coordinate.ra.deg:.8f}, {piece.coordinate.dec.deg:.8f})"
        )

    def _asdf_file(self, piece: _Piece) -> Any:
        if "asdf" not in piece._cache:
            import asdf

            af = asdf.AsdfFile({MISSION_KEY: piece.roman})
            af.add_history_entry(self._history(piece), software=SOFTWARE)
            settle_asdf_history(af)  # history extensions in a fixed order
            piece._cache["asdf"] = af
        return piece._cache["asdf"]

    def _fits_hdulist(self, piece: _Piece) -> Any:
        if "fits" not in piece._cache:
            from astropy.io import fits

            primary = fits.PrimaryHDU()
            h = primary.header
            h["ORIGIN"] = (ORIGIN, "institution responsible for creating this file")
            h["DATE"] = (creation_date(), "file creation date")
            h["PROCVER"] = (__version__, "skycut version")
            h["RA_OBJ"] = (float(piece.coordinate.ra.deg), "[deg] right ascension of the cutout centre")
            h["DEC_OBJ"] = (float(piece.coordinate.dec.deg), "[deg] declination of the cutout centre")
            wcs = piece.cutout.wcs
            header = wcs.to_header(relax=True) if wcs is not None else fits.Header()
            header["ORIG_FLE"] = (piece.file, "original ASDF file")
            image = fits.ImageHDU(data=piece.cutout.data, header=header, name="CUTOUT")
            tree = {
                MISSION_KEY: {"meta": piece.roman["meta"]},
                "history": {"entries": [{"description": self._history(piece), "software": SOFTWARE}]},
            }
            piece._cache["fits"] = fits.HDUList([primary, image, asdf_metadata_hdu(tree)])
        return piece._cache["fits"]

    def _list(self, pieces: list[_Piece], values: list[Any]) -> CutoutList:
        return CutoutList(values, [p.file for p in pieces], [p.coordinate for p in pieces])

    @property
    def cutouts_by_file(self) -> dict[str, CoordinateCutouts]:
        """Map each input file to its cutouts: ``{file: CoordinateCutouts}``.

        Per input file, its ``Cutout2D`` objects in coordinate order, also indexable by coordinate key
        (``"ra dec"``, 8 decimals). Files without any cutout are left out.
        """
        out: dict[str, list] = {}
        for p in self._pieces:
            out.setdefault(p.file, []).append((p.key, p.cutout))
        return {f: CoordinateCutouts(items) for f, items in out.items()}

    @property
    def cutouts(self) -> CutoutList:
        """The science cutouts as astropy ``Cutout2D`` objects (``.data``, ``.wcs`` = FITS approximation, ...)."""
        return self._list(self._pieces, [p.cutout for p in self._pieces])

    @property
    def asdf_cutouts(self) -> CutoutList:
        """The cutouts as ``asdf.AsdfFile`` objects (tree ``roman`` as described in the module docstring)."""
        return self._list(self._pieces, [self._asdf_file(p) for p in self._pieces])

    @property
    def fits_cutouts(self) -> CutoutList:
        """The cutouts as FITS ``HDUList``.

        Each holds PRIMARY, CUTOUT (science data, FITS-approximated WCS, ORIG_FLE) and ASDF (the metadata
        tree, see :func:`read_asdf_metadata`).
        """
        return self._list(self._pieces, [self._fits_hdulist(p) for p in self._pieces])

    @property
    def image_cutouts(self) -> list:
        """``get_image_cutouts()`` with default settings, as a list of PIL images."""
        if "images" not in self._cache:
            self._cache["images"] = list(self.get_image_cutouts()["cutout"])
        return self._cache["images"]

    def get_cutouts(self, *, input_files: Any = None, coordinates: Any = None) -> Any:
        """Table ``file, coordinate, cutout (Cutout2D)`` of the selected cutouts."""
        pieces = self._select(input_files, coordinates)
        return make_table(
            [p.file for p in pieces], [p.coordinate for p in pieces], [p.cutout for p in pieces]
        )

    def iter_cutouts(
        self, *, input_files: Any = None, coordinates: Any = None
    ) -> Iterator[tuple[str, Any, Any]]:
        """Yield ``(file, coordinate, Cutout2D)`` for each selected cutout (all, unless filtered)."""
        for p in self._select(input_files, coordinates):
            yield p.file, p.coordinate, p.cutout

    def get_asdf_cutouts(self, *, input_files: Any = None, coordinates: Any = None) -> Any:
        """Table ``file, coordinate, cutout (asdf.AsdfFile)`` of the selected cutouts."""
        pieces = self._select(input_files, coordinates)
        return make_table(
            [p.file for p in pieces], [p.coordinate for p in pieces], [self._asdf_file(p) for p in pieces]
        )

    def iter_asdf_cutouts(
        self, *, input_files: Any = None, coordinates: Any = None
    ) -> Iterator[tuple[str, Any, Any]]:
        """Yield ``(file, coordinate, asdf.AsdfFile)`` for each selected cutout (all, unless filtered)."""
        for p in self._select(input_files, coordinates):
            yield p.file, p.coordinate, self._asdf_file(p)

    def get_fits_cutouts(self, *, input_files: Any = None, coordinates: Any = None) -> Any:
        """Table ``file, coordinate, cutout (HDUList)`` of the selected cutouts."""
        pieces = self._select(input_files, coordinates)
        return make_table(
            [p.file for p in pieces], [p.coordinate for p in pieces], [self._fits_hdulist(p) for p in pieces]
        )

    def iter_fits_cutouts(
        self, *, input_files: Any = None, coordinates: Any = None
    ) -> Iterator[tuple[str, Any, Any]]:
        """Yield ``(file, coordinate, HDUList)`` for each selected cutout (all, unless filtered)."""
        for p in self._select(input_files, coordinates):
            yield p.file, p.coordinate, self._fits_hdulist(p)

    # -- writing -------------------------------------------------------------------------------------------

    def write_as_asdf(
        self, output_dir: str | os.PathLike = ".", *, input_files: Any = None, coordinates: Any = None
    ) -> list[str]:
        """Write the selected cutouts as ASDF files (atomically) and return their paths."""
        paths = []
        for p in self._select(input_files, coordinates):
            path = Path(output_dir) / self._output_name(p.file, p.coordinate, "asdf")
            with atomic_output(path) as tmp:
                self._asdf_file(p).write_to(tmp)
            log.debug("wrote %s", path)
            paths.append(str(path))
        return paths

    def write_as_fits(
        self, output_dir: str | os.PathLike = ".", *, input_files: Any = None, coordinates: Any = None
    ) -> list[str]:
        """Write the selected cutouts as FITS files (atomically, with checksums) and return their paths."""
        paths = []
        for p in self._select(input_files, coordinates):
            path = Path(output_dir) / self._output_name(p.file, p.coordinate, "fits")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", category=UserWarning)  # astropy's long-keyword/HIERARCH notes
                write_hdulist(self._fits_hdulist(p), path)
            paths.append(str(path))
        return paths

    def write_as_zip(
        self,
        output_dir: str | os.PathLike = ".",
        filename: str | os.PathLike | None = None,
        *,
        output_format: str = ".asdf",
        input_files: Any = None,
        coordinates: Any = None,
    ) -> str:
        """Write the selected cutouts (ASDF or FITS) into one zip file and return its path.

        The default name is ``astrocut_{asdf|fits}_cutouts.zip``.
        """
        kind = output_kind(output_format)

        def members():
            for p in self._select(input_files, coordinates):
                member = io.BytesIO()
                if kind == "asdf":
                    self._asdf_file(p).write_to(member)
                else:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", category=UserWarning)
                        self._fits_hdulist(p).writeto(member, checksum=True)
                yield self._output_name(p.file, p.coordinate, kind), member.getvalue()

        return write_zip(members(), output_dir, filename or f"astrocut_{kind}_cutouts.zip")

    # -- images --------------------------------------------------------------------------------------------

    def _image_metadata(self, p: _Piece) -> dict[str, Any]:
        ny, nx = p.shape
        return {
            "input_file": p.file,
            "cutout_size_x_pix": nx,
            "cutout_size_y_pix": ny,
            "pixel_scale_arcsec_per_pix": p.pixel_scale_deg * 3600.0,
            "center_ra_deg": float(p.coordinate.ra.deg),
            "center_dec_deg": float(p.coordinate.dec.deg),
            "origin": ORIGIN,
            "version": __version__,
        }

    def _images(self, pieces: list[_Piece], colorize: bool, options: dict) -> list[tuple[Any, Any, Any]]:
        """``(file or [files], coordinate, PIL image)`` rows; colour images group the cutouts by coordinate."""
        from .render import to_pil_images

        if not colorize:
            images = to_pil_images(
                [p.cutout.data for p in pieces],
                [self._image_metadata(p) for p in pieces],
                colorize=False,
                **options,
            )
            return [(p.file, p.coordinate, img) for p, img in zip(pieces, images, strict=True)]
        rows = []
        for key, coord in self._coordinates:
            group = [p for p in pieces if p.key == key]
            if not group:
                continue
            if len(group) < 3:
                warnings.warn(
                    f"colorize needs three cutouts at ({key}), got {len(group)}; no colour image made",
                    DataWarning,
                    stacklevel=3,
                )
                continue
            img = to_pil_images(
                [p.cutout.data for p in group],
                [self._image_metadata(p) for p in group],
                colorize=True,
                **options,
            )[0]
            rows.append(([p.file for p in group[:3]], coord, img))
        return rows

    def get_image_cutouts(
        self,
        *,
        input_files: Any = None,
        coordinates: Any = None,
        stretch: str = "asinh",
        minmax_percent: Sequence[float] | None = None,
        minmax_value: Sequence[float] | None = None,
        invert: bool = False,
        colorize: bool = False,
        flip_orientation: bool = True,
    ) -> Any:
        """Table ``file, coordinate, cutout (PIL.Image)`` of the selected cutouts rendered as 8-bit images.

        Normalisation as :func:`skycut.image.render.to_pil_images` (default ``minmax_percent=[0.5, 99.5]``). With
        ``colorize`` there is one RGB image per coordinate from the first three files' cutouts (R, G, B); a
        coordinate with fewer than three gets a :class:`DataWarning` and no image; ``file`` lists the three.
        """
        options = {
            "stretch": stretch,
            "minmax_percent": minmax_percent,
            "minmax_value": minmax_value,
            "invert": invert,
            "flip_orientation": flip_orientation,
        }
        rows = self._images(self._select(input_files, coordinates), colorize, options)
        t = make_table(
            [", ".join(r[0]) if isinstance(r[0], list) else r[0] for r in rows],
            [r[1] for r in rows],
            [r[2] for r in rows],
        )
        return t

    def iter_image_cutouts(
        self, *, input_files: Any = None, coordinates: Any = None, **options: Any
    ) -> Iterator[tuple[Any, Any, Any]]:
        """Yield ``(file, coordinate, PIL.Image)`` rows of :meth:`get_image_cutouts` (same options)."""
        t = self.get_image_cutouts(input_files=input_files, coordinates=coordinates, **options)
        for row in t:
            yield row["file"], row["coordinate"], row["cutout"]

    def write_as_img(
        self,
        *,
        input_files: Any = None,
        coordinates: Any = None,
        stretch: str = "asinh",
        minmax_percent: Sequence[float] | None = None,
        minmax_value: Sequence[float] | None = None,
        invert: bool = False,
        colorize: bool = False,
        output_format: str = ".jpg",
        output_dir: str | os.PathLike = ".",
        cutout_prefix: str = "cutout",
        flip_orientation: bool = True,
    ) -> list[str]:
        """Write the selected cutouts as images (any PIL format, metadata embedded); returns the paths.

        Names: ``{input_stem}_{ra:.7f}_{dec:.7f}_{s0}-x-{s1}_astrocut{ext}``, or with ``colorize``
        ``{cutout_prefix}_{ra:.7f}_{dec:.7f}_{s0}-x-{s1}_astrocut{ext}``.
        """
        from .render import image_format, save_image

        ext, _ = image_format(output_format)
        options = {
            "stretch": stretch,
            "minmax_percent": minmax_percent,
            "minmax_value": minmax_value,
            "invert": invert,
            "flip_orientation": flip_orientation,
        }
        paths = []
        for files, coord, img in self._images(self._select(input_files, coordinates), colorize, options):
            stem = cutout_prefix if colorize else input_stem(files)
            path = Path(output_dir) / (cutout_basename(stem, coord, self._cutout_size) + ext)
            paths.append(str(save_image(img, path, output_format)))
        return paths


# ------------------------------------------------------------------------------------------------------------
# functional API
# ------------------------------------------------------------------------------------------------------------

_DEFAULT_OUTPUT_FILE = "example_roman_cutout.fits"


def asdf_cut(
    input_files: Any,
    ra: float,
    dec: float,
    cutout_size: Any = 25,
    output_file: str | os.PathLike = _DEFAULT_OUTPUT_FILE,
    write_file: bool = True,
    fill_value: float = np.nan,
    output_dir: str | os.PathLike = ".",
    output_format: str = ".asdf",
    key: str | None = None,
    secret: str | None = None,
    token: str | None = None,
    lite: bool = False,
    verbose: bool = False,
) -> Any:
    """Cut Roman ASDF image(s) at ``(ra, dec)`` degrees (astrocut's functional API).

    Pixel conventions: see the module docstring (``cutout_size=[nx, ny]`` gives arrays of numpy shape
    ``(ny, nx)``).

    Parameters
    ----------
    input_files : str, pathlib.Path, or a list of them
        Local ASDF files, ``s3://`` URIs or ``https://`` URLs.
    ra, dec : float
        The cutout centre, ICRS degrees.
    cutout_size : int, two-element sequence, Quantity or str
        As for :class:`ASDFCutout`.
    output_file : str or os.PathLike
        Deprecated and ignored (as in astrocut >= 1.0): names follow the module docstring. A non-default value
        warns (:class:`DeprecationWarning`).
    write_file : bool
        Write files (default) or return the cutouts in memory.
    fill_value : int or float
        Value for the part of a cutout outside the image.
    output_dir : str or os.PathLike
        Directory of the written files.
    output_format : {".asdf", ".fits"}
        Format of the written files (anything else: :class:`InvalidInputError`).
    key, secret, token : str, optional
        S3 credentials; without them S3 is read anonymously.
    lite : bool
        Defaults to ``False`` (see :class:`ASDFCutout`).
    verbose : bool
        Set the ``skycut`` logger to DEBUG.

    Returns
    -------
    astropy.table.Table or list of str
        ``write_file=False``: the :meth:`ASDFCutout.get_cutouts` table; otherwise the list of written paths,
        ``.asdf`` or ``.fits`` per ``output_format``.

    Raises
    ------
    InvalidInputError
        A bad input file, size, fill value or ``output_format``.
    InvalidQueryError
        The coordinate falls on no image.
    """
    if os.fspath(output_file) != _DEFAULT_OUTPUT_FILE:
        warnings.warn(
            "asdf_cut: output_file is deprecated and ignored; output names are generated",
            DeprecationWarning,
            stacklevel=2,
        )
    kind = output_kind(output_format) if write_file else None
    from astropy.coordinates import SkyCoord

    cutter = ASDFCutout(
        input_files,
        SkyCoord(float(ra), float(dec), unit="deg"),
        cutout_size,
        fill_value,
        key=key,
        secret=secret,
        token=token,
        lite=lite,
        verbose=verbose,
    )
    if not write_file:
        return cutter.get_cutouts()
    if kind == "asdf":
        return cutter.write_as_asdf(output_dir)
    return cutter.write_as_fits(output_dir)
