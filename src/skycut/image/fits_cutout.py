"""Cutouts from FITS images: :class:`FITSCutout`, and the functional :func:`fits_cut` and :func:`img_cut`.

Conventions (see :mod:`skycut.core.geometry`): pixels are 0-based, ``x`` is the column (FITS axis 1) and ``y``
the row (FITS axis 2); ``cutout_size=[200, 300]`` gives FITS dimensions ``(200, 300)``, i.e. numpy arrays of
shape ``(300, 200)``. A cutout of ``nx`` pixels centred on pixel coordinate ``x`` spans the original columns
``floor(x - nx/2 + 0.5) ... + nx - 1``; parts outside the image are filled with ``fill_value``.

Only the needed rows are read: local files are memory-mapped, tile-compressed HDUs are read through
``hdu.section`` (only the needed tiles are decompressed) and remote (https/s3) files are read as byte ranges
(:mod:`skycut.core.remote`).

Output layout (as astrocut 1.4.0): a ``PRIMARY`` HDU without data carrying ``ORIGIN``, ``DATE``, ``PROCVER``,
``RA_OBJ`` and ``DEC_OBJ``, then one ``CUTOUT`` image HDU per (file, extension) cutout, whose header is the
original extension's header with the WCS replaced by the cutout's (SIP kept, ``CRPIX`` shifted), plus
``O_EXT_NM``, ``ORIG_FLE``, ``ORIG_EXT`` and, for kept empty cutouts, ``EMPTY = T``. Unlike astrocut, skycut
also writes a physical alternate WCS (``WCSNAMEP = 'PHYSICAL'``, ``CRVAL1P`` = original 1-based column of
cutout column 1) and IRAF ``LTV1/LTV2``, and shifts ``CRPIX`` of any other alternate WCS. Lookup-table
distortions (HST's ``CPDISj``/``D2IMDISj``) are kept: each cutout's tables, moved with its pixel origin, follow the
cutouts as ``WCSDVARR``/``D2IMARR`` extensions numbered (``EXTVER``) across the file, as its ``DPj``/``D2IMj``
cards reference them.

The class is built on small pure helpers: :mod:`skycut.image.fits_helpers` (options, extensions, WCS, headers),
:mod:`skycut.image.fits_instance` (one cutout, :class:`CutoutInstance`, its pixels and HDU) and
:mod:`skycut.image.fits_outputs` (grouping cutouts into files, HDULists, file names, image metadata);
``CutoutInstance``, ``check_complete`` and ``colour_channels`` remain importable from here.

Several coordinates (astrocut keeps only the first): every coordinate is cut from every file. With
``single_outfile=True`` there is one HDUList (and one file) per coordinate holding the cutouts of all files;
with ``single_outfile=False`` one per (file, coordinate).
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..core.atomic import atomic_output, write_zip
from ..core.coords import parse_coordinates, parse_size, parse_size_input, size_in_pixels
from ..core.fits_open import FITSHandle, open_fits_handle
from ..core.geometry import extract_padded, overlap, shifted_wcs
from ..core.logs import set_verbose
from ..exceptions import DataWarning, InvalidInputError, InvalidQueryError
from .fits_helpers import (
    celestial_wcs_lookup,
    check_complete,
    check_fill_value,
    check_rounding_method,
    input_name,
    is_empty,
    rounded_limits,
    select_extensions,
    world_to_pixel,
)
from .fits_instance import CutoutInstance, cutout_hdu, image_shape, own_pixels
from .fits_outputs import (
    colour_channels,
    cutout_hdulist,
    fits_file_names,
    fits_zip_members,
    group_cutouts,
    image_file_names,
    image_metadata,
    zip_file_name,
)

if TYPE_CHECKING:  # pragma: no cover
    from astropy.io import fits
    from astropy.wcs import WCS
    from PIL import Image

log = logging.getLogger(__name__)


class FITSCutout:
    """Cutouts from one or more FITS images around one or more sky positions (astrocut-compatible).

    Parameters
    ----------
    input_files : str, Path, or list of those
        Local paths, ``https://`` URLs or ``s3://`` URIs.
    coordinates : SkyCoord, str, or list
        Centre(s): ``"ra dec"`` in degrees, sexagesimal strings, SkyCoord (scalar or array). Every coordinate
        is cut from every file.
    cutout_size : int, [nx, ny], Quantity, or str
        Pixels or angular size (``"30 arcsec"``); ``[200, 300]`` gives FITS dimensions (200, 300).
    fill_value : int or float
        Value of pixels outside the image.
    limit_rounding_method : {"round", "ceil", "floor"}
        How the box's lower edge ``x - n/2 + 0.5`` is rounded to a whole pixel.
    extension : None, int, str, list, or "all"
        HDUs to cut; default every image HDU with data and a celestial WCS.
    single_outfile : bool
        One HDUList per coordinate with all files' cutouts, or one per (file, coordinate).
    verbose : bool
        Set the ``skycut`` logger to DEBUG (:func:`skycut.core.logs.set_verbose`; no handler is installed).
    fsspec_kwargs : dict, optional
        Options for remote inputs (see :func:`skycut.core.remote.storage_options`).
    allow_empty : bool
        Keep cutouts whose pixels are all NaN or zero (marked ``EMPTY = T``) instead of skipping them.
    handles : dict of str to FITSHandle, optional
        Opened inputs to reuse, by input name (:func:`skycut.core.fits_open.open_fits_handle`); an input missing
        from it is opened and added to it. The caller closes them. For batches cutting the same files many times
        (a remote file's headers are then fetched once per batch). Default: every input is opened here and
        closed when its cutouts are made.

    Raises
    ------
    InvalidInputError
        Unreadable/missing/non-FITS file, no celestial WCS, bad arguments (the message names the file or
        argument).
    InvalidQueryError
        No cutout could be made (every target misses every image, or every cutout is empty).
    """

    def __init__(
        self,
        input_files: Any,
        coordinates: Any,
        cutout_size: Any = 25,
        fill_value: float = np.nan,
        limit_rounding_method: str = "round",
        extension: Any = None,
        single_outfile: bool = True,
        verbose: bool = False,
        *,
        fsspec_kwargs: dict | None = None,
        allow_empty: bool = False,
        handles: dict[str, FITSHandle] | None = None,
    ):
        set_verbose(verbose)
        if isinstance(input_files, (str, Path)) or hasattr(input_files, "__fspath__"):
            input_files = [input_files]
        self.input_files = list(dict.fromkeys(input_name(f) for f in input_files))  # unique, in order
        if not self.input_files:
            raise InvalidInputError("input_files is empty")
        self.coordinates = parse_coordinates(coordinates)
        # scalar SkyCoords and plain floats, made once (indexing/attribute access on SkyCoord is slow)
        self._coord_list = list(self.coordinates)
        self._radec = list(
            zip(self.coordinates.ra.deg.tolist(), self.coordinates.dec.deg.tolist(), strict=True)
        )
        self.cutout_size = cutout_size
        self._size = parse_size(cutout_size)
        check_fill_value(fill_value)
        self.fill_value = fill_value
        check_rounding_method(limit_rounding_method)
        self.limit_rounding_method = limit_rounding_method
        self.extension = extension
        self.single_outfile = single_outfile
        self.fsspec_kwargs = fsspec_kwargs
        self.allow_empty = allow_empty
        self._handles = handles
        self.cutouts_by_file: dict[str, list[CutoutInstance]] = {}
        self.hdu_cutouts_by_file: dict[str, list[fits.ImageHDU]] = {}
        self._lookup: dict[int, list[fits.ImageHDU]] = {}  # id(cutout HDU) -> its lookup-table extensions
        self._fits_cutouts: list[fits.HDUList] | None = None
        self._image_cutouts: list[Image.Image] | None = None
        self.cutout()

    # -- cutting ---------------------------------------------------------------------------------------

    def cutout(self) -> list[fits.HDUList]:
        """Make every cutout (called by the constructor) and return :attr:`fits_cutouts`."""
        self.cutouts_by_file.clear()
        self.hdu_cutouts_by_file.clear()
        self._lookup.clear()
        self._fits_cutouts = None
        missed: list[str] = []
        empties: list[str] = []
        for name in self.input_files:
            with self._open(name) as handle:
                wcs_of = celestial_wcs_lookup(handle.hdul)  # each HDU's WCS parsed once
                for index in select_extensions(handle.hdul, self.extension, name, wcs_of):
                    self._cut_extension(handle, index, wcs_of(index), missed, empties)
        if not any(self.cutouts_by_file.values()):
            reasons = missed + empties
            raise InvalidQueryError("no cutout could be made: " + "; ".join(reasons))
        for text in missed:
            warnings.warn(text + "; skipped", DataWarning, stacklevel=3)
        for text in empties:
            warnings.warn(text + "; skipped (use allow_empty=True to keep it)", DataWarning, stacklevel=3)
        return self.fits_cutouts

    def _open(self, name: str) -> contextlib.AbstractContextManager[FITSHandle]:
        """Return the opened input ``name`` as a context manager that closes it unless the caller owns it."""
        if self._handles is None:
            return open_fits_handle(name, self.fsspec_kwargs)
        if name not in self._handles:
            self._handles[name] = open_fits_handle(name, self.fsspec_kwargs)
        return contextlib.nullcontext(self._handles[name])

    def _cut_extension(
        self, handle: Any, index: int, wcs: WCS | None, missed: list[str], empties: list[str]
    ) -> None:
        name = handle.name
        hdu = handle.hdul[index]
        header = hdu.header
        if wcs is None:
            single = not isinstance(self.extension, list) and not (
                isinstance(self.extension, str) and self.extension.lower() == "all"
            )
            if single:
                raise InvalidInputError(f"extension {index} of {name} has no celestial WCS")
            warnings.warn(
                f"extension {index} of {name} has no celestial WCS; skipped", DataWarning, stacklevel=4
            )
            return
        shape, shape_2d = image_shape(header)
        nx, ny = size_in_pixels(self._size, wcs)
        section = None
        ext_label = f"{name}[{index}]"
        linearize = "BSOFTEN" in header and "BOFFSET" in header
        pixels = world_to_pixel(wcs, self.coordinates)
        for ci, coord in enumerate(self._coord_list):
            ra, dec = self._radec[ci]
            where = f"target ({ra:.7f}, {dec:.7f}) is outside {ext_label}"
            try:
                x, y = pixels[ci]
                limits = rounded_limits((x, y), (nx, ny), self.limit_rounding_method)
            except InvalidInputError:
                missed.append(where + " (does not project onto the image)")
                continue
            ov = overlap(limits, shape)
            if ov is None:
                missed.append(where)
                continue
            if section is None:
                check_complete(handle, index)
                section = handle.section(index)
            data, aperture = extract_padded(section, limits, shape, self.fill_value)
            if shape_2d is not None:
                data = data.reshape(data.shape[-2:])
            on_image = (Ellipsis, ov[2], ov[3])
            empty = is_empty(data[on_image])
            if empty and not self.allow_empty:
                empties.append(
                    f"cutout of {ext_label} at ({ra:.7f}, {dec:.7f}) contains no data (all NaN or zero)"
                )
                continue
            data = own_pixels(data, on_image, header, linearize)
            xmin, ymin = int(limits[0][0]), int(limits[1][0])
            cwcs = shifted_wcs(wcs, xmin, ymin, (nx, ny))
            inst = CutoutInstance(
                data=data,
                wcs=cwcs,
                limits=limits,
                original_shape=shape,
                slices_original=(ov[0], ov[1]),
                coordinate=coord,
                input_file=name,
                extension=index,
                aperture=aperture,
                empty=empty,
                coordinate_index=ci,
            )
            self.cutouts_by_file.setdefault(name, []).append(inst)
            self.hdu_cutouts_by_file.setdefault(name, []).append(
                self._make_hdu(inst, header, name, linearize)
            )
            log.debug("cut %s at (%.7f, %.7f): limits %s", ext_label, ra, dec, limits.tolist())

    def _make_hdu(
        self, inst: CutoutInstance, header: fits.Header, name: str, linearized: bool
    ) -> fits.ImageHDU:
        hdu, tables = cutout_hdu(inst, header, name, linearized)
        if tables:  # numbered per output file in fits_cutouts
            self._lookup[id(hdu)] = tables
        return hdu

    # -- results ---------------------------------------------------------------------------------------

    def _instances(self) -> Iterable[tuple[str, CutoutInstance, fits.ImageHDU]]:
        for name in self.input_files:
            for inst, hdu in zip(
                self.cutouts_by_file.get(name, []), self.hdu_cutouts_by_file.get(name, []), strict=True
            ):
                yield name, inst, hdu

    def _groups(self) -> list[tuple[Any, str | None, list[tuple[str, CutoutInstance, fits.ImageHDU]]]]:
        """``(coordinate, file or None, members)`` per output HDUList, in output order."""
        return group_cutouts(list(self._instances()), self._coord_list, self.input_files, self.single_outfile)

    @property
    def fits_cutouts(self) -> list[fits.HDUList]:
        """HDULists: one per coordinate (``single_outfile``) or one per (file, coordinate)."""
        if self._fits_cutouts is None:
            self._fits_cutouts = []
            for coord, _name, members in self._groups():
                self._fits_cutouts.append(cutout_hdulist(coord, [m[2] for m in members], self._lookup))
        return self._fits_cutouts

    @property
    def cutouts(self) -> list[CutoutInstance]:
        """All cutout instances, in input-file order."""
        return [m[1] for m in self._instances()]

    def _fits_names(self, cutout_prefix: str = "cutout") -> list[str]:
        """Output file names, in :attr:`fits_cutouts` order (``_k`` appended if two inputs share a stem)."""
        groups = [(coord, name) for coord, name, _members in self._groups()]
        return fits_file_names(groups, cutout_prefix, self.cutout_size)

    def write_as_fits(self, output_dir: str | Path = ".", cutout_prefix: str = "cutout") -> list[str]:
        """Write :attr:`fits_cutouts` (atomically, with checksums) and return the paths.

        Names: ``{cutout_prefix}_{ra:.7f}_{dec:.7f}_{s0}-x-{s1}_astrocut.fits`` with ``single_outfile``, else
        ``{input_stem}_{ra:.7f}_{dec:.7f}_{s0}-x-{s1}_astrocut.fits``.
        """
        paths = []
        for hdul, fname in zip(self.fits_cutouts, self._fits_names(cutout_prefix), strict=True):
            path = Path(output_dir) / fname
            with atomic_output(path) as tmp:
                # headers were built from parsed, valid cards: skip astropy's (slow) output verification
                hdul.writeto(tmp, overwrite=True, checksum=True, output_verify="ignore")
            log.debug("wrote %s", path)
            paths.append(str(path))
        return paths

    def write_as_zip(self, output_dir: str | Path = ".", filename: str | Path | None = None) -> str:
        """Write the FITS files into one zip archive (atomically) and return its path.

        Default name ``astrocut_{ra:.7f}_{dec:.7f}_{s0}-x-{s1}.zip`` (first coordinate).
        """
        if filename is None:
            filename = zip_file_name(self._coord_list[0], self.cutout_size)
        return write_zip(fits_zip_members(self.fits_cutouts, self._fits_names()), output_dir, filename)

    # -- images ----------------------------------------------------------------------------------------

    def _render(self, stretch, minmax_percent, minmax_value, invert, colorize, flip_orientation):
        """``[(coordinate, [instances], [images])]`` per coordinate."""
        from .render import to_pil_images

        out = []
        for ci, coord in enumerate(self._coord_list):
            insts = [m[1] for m in self._instances() if m[1].coordinate_index == ci]
            if not insts:
                continue
            if colorize:
                insts = colour_channels(insts)
            imgs = to_pil_images(
                [i.data for i in insts],
                [image_metadata(i) for i in insts],
                stretch=stretch,
                minmax_percent=minmax_percent,
                minmax_value=minmax_value,
                invert=invert,
                colorize=colorize,
                flip_orientation=flip_orientation,
            )
            out.append((coord, insts, imgs))
        return out

    def get_image_cutouts(
        self,
        stretch: str = "asinh",
        minmax_percent: Sequence[float] | None = None,
        minmax_value: Sequence[float] | None = None,
        invert: bool = False,
        colorize: bool = False,
        flip_orientation: bool = True,
    ) -> list[Image.Image]:
        """Render the cutouts as 8-bit PIL images.

        See :func:`skycut.image.render.to_pil_images` for the stretch and interval options.

        Parameters
        ----------
        stretch : str
            Stretch applied after normalisation (default ``"asinh"``).
        minmax_percent : [low, high], optional
            Percentile interval; the default interval is ``minmax_percent=[0.5, 99.5]``.
        minmax_value : [low, high], optional
            Explicit value interval (instead of percentiles).
        invert : bool
            Invert the grey scale.
        colorize : bool
            One RGB image per coordinate from its first three cutouts (the first extension of each of the
            first three files when several extensions were cut, see
            :func:`skycut.image.fits_outputs.colour_channels`).
        flip_orientation : bool
            Flip rows so that the image's top row is the cutout's last row (north up for a north-up WCS).

        Returns
        -------
        list of PIL.Image.Image
            One image per cutout, or one per coordinate with ``colorize``.
        """
        groups = self._render(stretch, minmax_percent, minmax_value, invert, colorize, flip_orientation)
        return [img for _c, _i, imgs in groups for img in imgs]

    @property
    def image_cutouts(self) -> list[Image.Image]:
        """:meth:`get_image_cutouts` with default options (cached)."""
        if self._image_cutouts is None:
            self._image_cutouts = self.get_image_cutouts()
        return self._image_cutouts

    def write_as_img(
        self,
        stretch: str = "asinh",
        minmax_percent: Sequence[float] | None = None,
        minmax_value: Sequence[float] | None = None,
        invert: bool = False,
        colorize: bool = False,
        output_format: str = ".jpg",
        output_dir: str | Path = ".",
        cutout_prefix: str = "cutout",
        flip_orientation: bool = True,
    ) -> str | list[str]:
        """Write the cutouts as images; returns a list of paths (one path string for a colour image).

        Names: ``{input_stem}_{ra:.7f}_{dec:.7f}_{s0}-x-{s1}_astrocut_{i}.{fmt}`` where ``i`` counts the
        cutouts of that coordinate (so every cutout, including several extensions of one file, gets its own
        file — astrocut overwrites/mislabels these); colour ``{cutout_prefix}_..._astrocut.{fmt}``.
        """
        from .render import image_format, save_image

        ext, _fmt = image_format(output_format)
        paths: list[str] = []
        for coord, insts, imgs in self._render(
            stretch, minmax_percent, minmax_value, invert, colorize, flip_orientation
        ):
            names = image_file_names(coord, insts, self.cutout_size, ext, cutout_prefix if colorize else None)
            for img, name in zip(imgs, names, strict=True):  # a colour image: one of each
                paths.append(str(save_image(img, Path(output_dir) / name, ext)))
        if colorize and len(paths) == 1:
            return paths[0]
        return paths

    CutoutInstance = CutoutInstance
    normalize_img = staticmethod(lambda *a, **k: _normalize(*a, **k))
    parse_size_input = staticmethod(parse_size_input)


def _normalize(*args: Any, **kwargs: Any) -> np.ndarray:
    from .render import normalize_img

    return normalize_img(*args, **kwargs)


# ----------------------------------------------------------------------------------------------- functions


def fits_cut(
    input_files: Any,
    coordinates: Any,
    cutout_size: Any = 25,
    correct_wcs: bool = False,
    extension: Any = None,
    single_outfile: bool = True,
    cutout_prefix: str = "cutout",
    output_dir: str | Path = ".",
    memory_only: bool = False,
    fill_value: float = np.nan,
    limit_rounding_method: str = "round",
    verbose: bool = False,
    *,
    fsspec_kwargs: dict | None = None,
    allow_empty: bool = False,
) -> str | list[str] | list[fits.HDUList]:
    """Cut FITS images and write the cutouts (astrocut's ``fits_cut``).

    Pixels are 0-based, ``x`` is the column (FITS axis 1) and ``y`` the row (FITS axis 2); ``cutout_size=[200,
    300]`` gives FITS dimensions ``(200, 300)``, i.e. numpy arrays of shape ``(300, 200)`` (see the module
    docstring for the output layout).

    Parameters
    ----------
    input_files : str, Path, or list of those
        Local paths, ``https://`` URLs or ``s3://`` URIs.
    coordinates : SkyCoord, str, or list
        Centre(s); every coordinate is cut from every file.
    cutout_size : int, [nx, ny], Quantity, or str
        Pixels or angular size (``"30 arcsec"``).
    correct_wcs : bool
        Accepted for compatibility and ignored (deprecated in astrocut 1.0); ``True`` warns.
    extension : None, int, str, list, or "all"
        HDUs to cut; default every image HDU with data and a celestial WCS.
    single_outfile : bool
        One file per coordinate with all files' cutouts, or one per (file, coordinate).
    cutout_prefix : str
        Stem of the output names with ``single_outfile`` (see :meth:`FITSCutout.write_as_fits`).
    output_dir : str or Path
        Directory of the written files.
    memory_only : bool
        Return the HDULists instead of writing files.
    fill_value : int or float
        Value of pixels outside the image.
    limit_rounding_method : {"round", "ceil", "floor"}
        How the box's lower edge ``x - n/2 + 0.5`` is rounded to a whole pixel.
    verbose : bool
        Set the ``skycut`` logger to DEBUG.
    fsspec_kwargs : dict, optional
        Options for remote inputs.
    allow_empty : bool
        Keep cutouts whose pixels are all NaN or zero instead of skipping them.

    Returns
    -------
    str, list of str, or list of astropy.io.fits.HDUList
        The list of HDULists with ``memory_only``, else the written path (a single string when one file was
        written) or list of paths.

    Raises
    ------
    InvalidInputError
        Unreadable/missing/non-FITS file, no celestial WCS, bad arguments.
    InvalidQueryError
        No cutout could be made.
    """
    if correct_wcs:
        warnings.warn("correct_wcs is deprecated and ignored", DeprecationWarning, stacklevel=2)
    if not memory_only and not verbose and fsspec_kwargs is None:
        # astropy-free fast path for plain local TAN(-SIP) images; None when not provably equivalent
        from .fits_fast import try_fits_cut

        paths = try_fits_cut(
            input_files,
            coordinates,
            cutout_size,
            extension=extension,
            single_outfile=single_outfile,
            cutout_prefix=cutout_prefix,
            output_dir=output_dir,
            fill_value=fill_value,
            limit_rounding_method=limit_rounding_method,
            allow_empty=allow_empty,
        )
        if paths is not None:
            return paths[0] if len(paths) == 1 else paths
    cut = FITSCutout(
        input_files,
        coordinates,
        cutout_size,
        fill_value=fill_value,
        limit_rounding_method=limit_rounding_method,
        extension=extension,
        single_outfile=single_outfile,
        verbose=verbose,
        fsspec_kwargs=fsspec_kwargs,
        allow_empty=allow_empty,
    )
    if memory_only:
        return cut.fits_cutouts
    paths = cut.write_as_fits(output_dir, cutout_prefix)
    return paths[0] if len(paths) == 1 else paths


def img_cut(
    input_files: Any,
    coordinates: Any,
    cutout_size: Any = 25,
    stretch: str = "asinh",
    minmax_percent: Sequence[float] | None = None,
    minmax_value: Sequence[float] | None = None,
    invert: bool = False,
    img_format: str = ".jpg",
    colorize: bool = False,
    cutout_prefix: str = "cutout",
    output_dir: str | Path = ".",
    extension: Any = None,
    fill_value: float = np.nan,
    limit_rounding_method: str = "round",
    verbose: bool = False,
    *,
    fsspec_kwargs: dict | None = None,
) -> str | list[str]:
    """Cut FITS images and write them as PNG/JPEG/... images (astrocut's ``img_cut``).

    Parameters
    ----------
    input_files, coordinates, cutout_size, extension, fill_value, limit_rounding_method
        As for :class:`FITSCutout`.
    verbose, fsspec_kwargs
        As for :class:`FITSCutout`.
    stretch, minmax_percent, minmax_value, invert, colorize
        As for :meth:`FITSCutout.get_image_cutouts`.
    img_format : str
        Output format, e.g. ``".jpg"`` or ``".png"``.
    cutout_prefix : str
        Stem of the name of a colour image.
    output_dir : str or Path
        Directory of the written images.

    Returns
    -------
    str or list of str
        The written paths; a single path string when one image was written.

    Raises
    ------
    InvalidInputError
        Unreadable/missing/non-FITS file, no celestial WCS, bad arguments.
    InvalidQueryError
        No cutout could be made.
    """
    cut = FITSCutout(
        input_files,
        coordinates,
        cutout_size,
        fill_value=fill_value,
        limit_rounding_method=limit_rounding_method,
        extension=extension,
        verbose=verbose,
        fsspec_kwargs=fsspec_kwargs,
    )
    paths = cut.write_as_img(
        stretch=stretch,
        minmax_percent=minmax_percent,
        minmax_value=minmax_value,
        invert=invert,
        colorize=colorize,
        output_format=img_format,
        output_dir=output_dir,
        cutout_prefix=cutout_prefix,
    )
    if isinstance(paths, list) and len(paths) == 1:
        return paths[0]
    return paths
