"""One cutout of a FITS image: :class:`CutoutInstance`, and the pure steps that make its pixels and its HDU.

:class:`skycut.image.fits_cutout.FITSCutout` cuts every (file, extension, coordinate) with these:

* :func:`image_shape`: the numpy shape of an image from its header (and whether its extra axes can go);
* :func:`own_pixels`: the padded block read from the image made the cutout's own array, Pan-STARRS asinh
  scaling undone where asked;
* :func:`cutout_hdu`: the cutout's ``CUTOUT`` HDU (its header made by
  :func:`skycut.image.fits_helpers.cutout_header`) and the lookup-table distortion extensions its WCS
  references.

Conventions as in :mod:`skycut.core.geometry`: 0-based pixels, ``x`` = column = FITS axis 1, ``y`` = row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..core.remote import is_remote
from .fits_helpers import cutout_header, linearize_asinh, lookup_tables

if TYPE_CHECKING:  # pragma: no cover
    from astropy.io import fits
    from astropy.wcs import WCS


@dataclass
class CutoutInstance:
    """One cutout: the pixels of one extension of one file around one coordinate.

    Attributes
    ----------
    data : ndarray, shape ``(ny, nx)`` (``(..., ny, nx)`` for images with more axes)
    wcs : astropy.wcs.WCS
        Celestial WCS of the cutout (original WCS, SIP kept, ``CRPIX`` shifted by ``(-xmin, -ymin)``).
    limits : ndarray ``[[xmin, xmax], [ymin, ymax]]``
        Half-open box in original 0-based pixels, not clipped to the image.
    original_shape : tuple
        numpy shape of the original image (astrocut calls it ``shape_input``).
    slices_original : (slice, slice)
        ``(rows, columns)`` of the original image that the cutout covers (clipped to the image).
    coordinate : SkyCoord
        The requested centre. ``input_file``, ``extension`` (HDU index) identify the source.
    """

    data: np.ndarray
    wcs: WCS
    limits: np.ndarray
    original_shape: tuple[int, ...]
    slices_original: tuple[slice, slice]
    coordinate: Any
    input_file: str
    extension: int
    aperture: np.ndarray = field(repr=False, default=None)
    empty: bool = False
    coordinate_index: int = 0

    @property
    def shape(self) -> tuple[int, ...]:
        """Numpy shape of the cutout data, ``(ny, nx)`` (``(..., ny, nx)`` for images with more axes)."""
        return self.data.shape

    @property
    def shape_input(self) -> tuple[int, ...]:
        """Numpy shape of the original image (astrocut's name for :attr:`original_shape`)."""
        return self.original_shape

    @property
    def xmin_original(self) -> int:
        """First (0-based) original column in the cutout, clipped to the image, as astrocut reports it."""
        return self.slices_original[1].start

    @property
    def xmax_original(self) -> int:
        """End (exclusive) of the original columns in the cutout, as astrocut reports it."""
        return self.slices_original[1].stop

    @property
    def ymin_original(self) -> int:
        """First (0-based) original row in the cutout, clipped to the image, as astrocut reports it."""
        return self.slices_original[0].start

    @property
    def ymax_original(self) -> int:
        """End (exclusive) of the original rows in the cutout, as astrocut reports it."""
        return self.slices_original[0].stop


def image_shape(header: fits.Header) -> tuple[tuple[int, ...], tuple[int, ...] | None]:
    """Return the numpy shape of an image HDU from its header, and its 2-D shape if the other axes can go.

    Parameters
    ----------
    header : astropy.io.fits.Header
        The image's header (``NAXIS``, ``NAXISn``).

    Returns
    -------
    shape : tuple of int
        ``(NAXISn, ..., NAXIS2, NAXIS1)``.
    shape_2d : tuple of int or None
        ``shape[-2:]`` when the image has more than two axes and every extra one has length 1 (its cutouts are
        then 2-D); None otherwise.
    """
    naxis = header["NAXIS"]
    shape = tuple(int(header[f"NAXIS{i}"]) for i in range(naxis, 0, -1))
    if len(shape) > 2 and all(n == 1 for n in shape[:-2]):
        return shape, shape[-2:]
    return shape, None


def own_pixels(
    data: np.ndarray, on_image: tuple[Any, ...], header: fits.Header, linearize: bool
) -> np.ndarray:
    """Return a cutout's pixels as an array of its own, with Pan-STARRS asinh scaling undone if asked.

    Parameters
    ----------
    data : ndarray
        The padded block read from the image (possibly a view of a memory map: it is then copied, so that the
        caller gets its own writable array).
    on_image : tuple
        Index of the pixels of ``data`` that come from the image (``(Ellipsis, rows, columns)``).
    header : astropy.io.fits.Header
        The image's header (``BSOFTEN``, ``BOFFSET``).
    linearize : bool
        Linearise the pixels from the image with :func:`skycut.image.fits_helpers.linearize_asinh` (integer
        data become float64); the padding keeps its fill value.

    Returns
    -------
    ndarray
        ``data`` itself when it owns its memory and nothing is linearised; else a new array.
    """
    if not data.flags.owndata:  # a view of the memory map: give the caller its own writable array
        data = data.copy()
    if linearize:  # only the pixels from the image; the padding keeps fill_value
        if data.dtype.kind != "f":
            data = data.astype(np.float64)
        data[on_image] = linearize_asinh(data[on_image], header)
    return data


def cutout_hdu(
    inst: CutoutInstance, header: fits.Header, name: str, linearized: bool
) -> tuple[fits.ImageHDU, list[fits.ImageHDU]]:
    """Build the ``CUTOUT`` HDU of one cutout, and the lookup-table extensions its WCS references.

    Parameters
    ----------
    inst : CutoutInstance
        The cutout.
    header : astropy.io.fits.Header
        Header of the original extension.
    name : str
        The input file's name: ``ORIG_FLE`` is its file name (a remote input's whole URI).
    linearized : bool
        The data were linearised from Pan-STARRS asinh scaling (see
        :func:`skycut.image.fits_helpers.cutout_header`).

    Returns
    -------
    hdu : astropy.io.fits.ImageHDU
        The cutout HDU (``EXTNAME = 'CUTOUT'``).
    tables : list of astropy.io.fits.ImageHDU
        Its ``WCSDVARR``/``D2IMARR`` extensions (empty without lookup-table distortions), to be numbered per
        output file (:func:`skycut.image.fits_helpers.number_lookup_tables`).
    """
    from astropy.io import fits

    orig_file = name if is_remote(name) else Path(name).name
    hdr = cutout_header(
        header,
        inst.wcs,
        int(inst.limits[0][0]),
        int(inst.limits[1][0]),
        orig_file=orig_file,
        orig_ext=inst.extension,
        linearized=linearized,
        empty=inst.empty,
    )
    hdu = fits.ImageHDU(data=inst.data, header=hdr)  # EXTNAME = CUTOUT is in hdr
    return hdu, lookup_tables(inst.wcs)[1]
