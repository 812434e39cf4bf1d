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

The steps that make one cutout are in :mod:`skycut.image.asdf_piece`, its in-memory products (ASDF file, FITS
``HDUList``, images) in :mod:`skycut.image.asdf_products`.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..core.atomic import atomic_output, write_hdulist, write_zip
from ..core.coords import parse_coordinates, parse_size, size_in_pixels
from ..core.geometry import cutout_basename, overlap
from ..exceptions import DataWarning, InvalidInputError, InvalidQueryError
from .asdf_io import (
    CoordinateCutouts,
    CutoutList,
    as_file_list,
    coordinate_key,
    cut_array,
    input_stem,
    make_table,
    open_asdf,
    output_kind,
    read_asdf_metadata,
    roman_parts,
)
from .asdf_piece import (
    CutoutPiece,
    full_roman,
    input_fsspec_kwargs,
    lite_roman,
    locate_target,
    output_name,
    select_pieces,
)
from .asdf_products import ORIGIN as ORIGIN
from .asdf_products import SOFTWARE as SOFTWARE
from .asdf_products import as_asdf_file, as_fits_hdulist, product_bytes, render_pieces
from .asdf_wcs import (
    FileFitsWcs,
    centered_limits,
    get_center_pixel,
    local_linear_wcs,
    make_cutout2d,
    slice_gwcs,
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
        self._pieces: list[CutoutPiece] = []
        self._cache: dict[str, Any] = {}
        self.cutout()

    def __repr__(self) -> str:
        """Summarise the cutter: number of cutouts, files, coordinates, the size and the mode."""
        return (
            f"<ASDFCutout {len(self._pieces)} cutout(s) of {len(self._input_files)} file(s) at "
            f"{len(self._coordinates)} coordinate(s), size {self._cutout_size!r}, lite={self._lite}>"
        )

    # -- cutting -------------------------------------------------------------------------------------------

    def cutout(self) -> CutoutList:
        """Cut every file at every coordinate (called by the constructor); returns :attr:`cutouts`."""
        self._pieces, self._cache = [], {}
        for file in self._input_files:
            with open_asdf(
                file,
                fsspec_kwargs=input_fsspec_kwargs(file, self._credentials, self._fsspec_kwargs),
                asdf_kwargs=self._asdf_kwargs,
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
    ) -> CutoutPiece | None:
        file = handle.name
        ra, dec = float(coord.ra.deg), float(coord.dec.deg)
        located = locate_target(gw, ra, dec)
        if located is None:
            warnings.warn(
                f"{file}: coordinate ({key}) is outside the footprint of the gwcs; skipped",
                DataWarning,
                stacklevel=4,
            )
            return None
        x, y, scale = located
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
            out = lite_roman(sliced, cut, file, key)
        else:
            out = full_roman(
                handle,
                roman,
                cut,
                limits,
                parent_shape,
                sliced,
                fill_value=self._fill_value,
                cutout_size=self._cutout_size,
                key=key,
                coord=coord,
            )
        return CutoutPiece(file, key, coord, limits, cutout2d, out, scale)

    # -- selection -----------------------------------------------------------------------------------------

    def _select(self, input_files: Any = None, coordinates: Any = None) -> list[CutoutPiece]:
        return select_pieces(
            self._pieces, self._input_files, [k for k, _ in self._coordinates], input_files, coordinates
        )

    def iter_file_coord_pairs(
        self, *, input_files: Any = None, coordinates: Any = None
    ) -> Iterator[tuple[str, str]]:
        """``(file, coordinate key)`` of each cutout made, optionally filtered."""
        for p in self._select(input_files, coordinates):
            yield p.file, p.key

    def _output_name(self, file: str, coord: Any, ext: str, lite: bool | None = None) -> str:
        return output_name(file, coord, self._cutout_size, self._lite if lite is None else lite, ext)

    # -- in-memory products --------------------------------------------------------------------------------

    def _list(self, pieces: list[CutoutPiece], values: list[Any]) -> CutoutList:
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
        return self._list(self._pieces, [as_asdf_file(p) for p in self._pieces])

    @property
    def fits_cutouts(self) -> CutoutList:
        """The cutouts as FITS ``HDUList``.

        Each holds PRIMARY, CUTOUT (science data, FITS-approximated WCS, ORIG_FLE) and ASDF (the metadata
        tree, see :func:`read_asdf_metadata`).
        """
        return self._list(self._pieces, [as_fits_hdulist(p) for p in self._pieces])

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
            [p.file for p in pieces], [p.coordinate for p in pieces], [as_asdf_file(p) for p in pieces]
        )

    def iter_asdf_cutouts(
        self, *, input_files: Any = None, coordinates: Any = None
    ) -> Iterator[tuple[str, Any, Any]]:
        """Yield ``(file, coordinate, asdf.AsdfFile)`` for each selected cutout (all, unless filtered)."""
        for p in self._select(input_files, coordinates):
            yield p.file, p.coordinate, as_asdf_file(p)

    def get_fits_cutouts(self, *, input_files: Any = None, coordinates: Any = None) -> Any:
        """Table ``file, coordinate, cutout (HDUList)`` of the selected cutouts."""
        pieces = self._select(input_files, coordinates)
        return make_table(
            [p.file for p in pieces], [p.coordinate for p in pieces], [as_fits_hdulist(p) for p in pieces]
        )

    def iter_fits_cutouts(
        self, *, input_files: Any = None, coordinates: Any = None
    ) -> Iterator[tuple[str, Any, Any]]:
        """Yield ``(file, coordinate, HDUList)`` for each selected cutout (all, unless filtered)."""
        for p in self._select(input_files, coordinates):
            yield p.file, p.coordinate, as_fits_hdulist(p)

    # -- writing -------------------------------------------------------------------------------------------

    def write_as_asdf(
        self, output_dir: str | os.PathLike = ".", *, input_files: Any = None, coordinates: Any = None
    ) -> list[str]:
        """Write the selected cutouts as ASDF files (atomically) and return their paths."""
        paths = []
        for p in self._select(input_files, coordinates):
            path = Path(output_dir) / self._output_name(p.file, p.coordinate, "asdf")
            with atomic_output(path) as tmp:
                as_asdf_file(p).write_to(tmp)
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
                write_hdulist(as_fits_hdulist(p), path)
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
                data = product_bytes(p, kind)
                yield self._output_name(p.file, p.coordinate, kind), data

        return write_zip(members(), output_dir, filename or f"astrocut_{kind}_cutouts.zip")

    # -- images --------------------------------------------------------------------------------------------

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
        rows = render_pieces(self._select(input_files, coordinates), self._coordinates, colorize, options)
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
        for files, coord, img in render_pieces(
            self._select(input_files, coordinates), self._coordinates, colorize, options
        ):
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
