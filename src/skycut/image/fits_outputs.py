"""The outputs made of FITS image cutouts: which cutouts share a file, its HDUList, names, image metadata.

Pure functions on :class:`skycut.image.fits_instance.CutoutInstance` and their ``CUTOUT`` HDUs, which
:class:`skycut.image.fits_cutout.FITSCutout` builds its results on:

* :func:`group_cutouts`: one group of cutouts per output file (per coordinate, or per (file, coordinate));
* :func:`cutout_hdulist`: a group's HDUList, i.e. the primary HDU, the cutouts, and their lookup-table
  extensions numbered across the file;
* :func:`fits_file_names`, :func:`image_file_names` and :func:`zip_file_name`: the names of the written files,
  and :func:`fits_zip_members`: the FITS files as members of a zip archive;
* :func:`image_metadata` and :func:`colour_channels`: what a PNG/JPG image of a cutout records, and which
  cutouts become R, G, B.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import __version__
from ..core.coords import size_label
from ..core.geometry import cutout_basename
from .fits_helpers import ORIGIN, input_stem, number_lookup_tables, primary_hdu

if TYPE_CHECKING:  # pragma: no cover
    from astropy.io import fits

    from .fits_instance import CutoutInstance

log = logging.getLogger(__name__)


def group_cutouts(
    members: Sequence[tuple[str, CutoutInstance, fits.ImageHDU]],
    coordinates: Sequence[Any],
    input_files: Sequence[str],
    single_outfile: bool,
) -> list[tuple[Any, str | None, list[tuple[str, CutoutInstance, fits.ImageHDU]]]]:
    """Group the cutouts into output files, in output order.

    Parameters
    ----------
    members : list of (str, CutoutInstance, astropy.io.fits.ImageHDU)
        Every cutout with its input file's name and its ``CUTOUT`` HDU, in input-file order.
    coordinates : list of SkyCoord
        The (scalar) coordinates; a cutout's ``coordinate_index`` indexes this list.
    input_files : list of str
        The input names, in order.
    single_outfile : bool
        One group per coordinate with every file's cutouts, or one per (file, coordinate).

    Returns
    -------
    list of (coordinate, str or None, list of members)
        ``(coordinate, file or None, members)`` per output file: the file is None with ``single_outfile``. A
        coordinate (or file) without cutouts gives no group.
    """
    groups = []
    for ci, coord in enumerate(coordinates):
        chosen = [m for m in members if m[1].coordinate_index == ci]
        if not chosen:
            continue
        if single_outfile:
            groups.append((coord, None, chosen))
        else:
            for name in input_files:
                sub = [m for m in chosen if m[0] == name]
                if sub:
                    groups.append((coord, name, sub))
    return groups


def cutout_hdulist(
    coordinate: Any, hdus: Sequence[fits.ImageHDU], lookup: Mapping[int, list[fits.ImageHDU]]
) -> fits.HDUList:
    """Build the HDUList of one output file: primary HDU, cutout HDUs, then their lookup-table extensions.

    Parameters
    ----------
    coordinate : SkyCoord
        The file's coordinate (``RA_OBJ``, ``DEC_OBJ`` of :func:`skycut.image.fits_helpers.primary_hdu`).
    hdus : list of astropy.io.fits.ImageHDU
        The file's ``CUTOUT`` HDUs, in order (each belongs to exactly one file).
    lookup : mapping of int to list of astropy.io.fits.ImageHDU
        ``id(hdu)`` of a cutout HDU -> its ``WCSDVARR``/``D2IMARR`` extensions
        (:func:`skycut.image.fits_instance.cutout_hdu`). They follow the cutouts, each cutout's own, numbered
        (``EXTVER``) across the file; the extensions and the cutouts' ``DPj``/``D2IMj`` references to them are
        changed in place (:func:`skycut.image.fits_helpers.number_lookup_tables`).

    Returns
    -------
    astropy.io.fits.HDUList
    """
    from astropy.io import fits

    counters: dict[str, int] = {}
    tables = []
    for hdu in hdus:
        own = lookup.get(id(hdu), [])
        number_lookup_tables(hdu.header, own, counters)
        tables += own
    return fits.HDUList([primary_hdu(coordinate)] + list(hdus) + tables)


def fits_file_names(
    groups: Sequence[tuple[Any, str | None]], cutout_prefix: str, cutout_size: Any
) -> list[str]:
    """Return the names of the output FITS files, one per group, in order.

    ``{stem}_{ra:.7f}_{dec:.7f}_{s0}-x-{s1}_astrocut.fits`` (:func:`skycut.core.geometry.cutout_basename`),
    where ``stem`` is the input file's stem, or ``cutout_prefix`` for a group of several files; ``_k`` is
    appended to the stem part if two inputs share a stem.

    Parameters
    ----------
    groups : list of (coordinate, str or None)
        Each output file's coordinate and input file (None: several files, see :func:`group_cutouts`).
    cutout_prefix : str
        The stem of files holding several inputs' cutouts.
    cutout_size : int, [nx, ny], Quantity, or str
        The cutout size as given (it is part of the name).

    Returns
    -------
    list of str
    """
    names, used = [], set()
    for coord, name in groups:
        base = cutout_basename(input_stem(name) if name else cutout_prefix, coord, cutout_size)
        candidate, k = base, 1
        while candidate in used:  # two inputs with the same stem
            candidate, k = f"{base}_{k}", k + 1
        used.add(candidate)
        names.append(candidate + ".fits")
    return names


def fits_zip_members(hdulists: Sequence[fits.HDUList], names: Sequence[str]) -> Iterator[tuple[str, bytes]]:
    """Yield ``(name, bytes)`` for each output FITS file (checksums written), the members of a zip archive.

    Parameters
    ----------
    hdulists : list of astropy.io.fits.HDUList
        The output files' HDULists.
    names : list of str
        Their names (:func:`fits_file_names`), in the same order.

    Yields
    ------
    (str, bytes)
        A member for :func:`skycut.core.atomic.write_zip`; each file is serialised only when asked for.
    """
    for hdul, fname in zip(hdulists, names, strict=True):
        member = io.BytesIO()
        hdul.writeto(member, checksum=True)
        yield fname, member.getvalue()


def image_file_names(
    coordinate: Any,
    insts: Sequence[CutoutInstance],
    cutout_size: Any,
    ext: str,
    colour_prefix: str | None = None,
) -> list[str]:
    """Return the names of the PNG/JPG images of one coordinate's cutouts, in order.

    ``{input_stem}_{ra:.7f}_{dec:.7f}_{s0}-x-{s1}_astrocut_{i}{ext}``, where ``i`` counts the cutouts of the
    coordinate (so every cutout, several extensions of one file included, gets its own file); with
    ``colour_prefix``, the one name of their colour image,
    ``{colour_prefix}_{ra:.7f}_{dec:.7f}_{s0}-x-{s1}_astrocut{ext}``.

    Parameters
    ----------
    coordinate : SkyCoord
        The cutouts' coordinate.
    insts : list of CutoutInstance
        The coordinate's cutouts, in order.
    cutout_size : int, [nx, ny], Quantity, or str
        The cutout size as given (it is part of the name).
    ext : str
        The file name extension, with its dot (``".jpg"``).
    colour_prefix : str, optional
        Name one colour image instead of one grey image per cutout.

    Returns
    -------
    list of str
    """
    if colour_prefix is not None:
        return [cutout_basename(colour_prefix, coordinate, cutout_size) + ext]
    return [
        f"{cutout_basename(input_stem(inst.input_file), coordinate, cutout_size)}_{i}{ext}"
        for i, inst in enumerate(insts)
    ]


def zip_file_name(coordinate: Any, cutout_size: Any) -> str:
    """Return the default name of a zip of cutouts, ``astrocut_{ra:.7f}_{dec:.7f}_{s0}-x-{s1}.zip``."""
    return f"astrocut_{coordinate.ra.deg:.7f}_{coordinate.dec.deg:.7f}_{size_label(cutout_size)}.zip"


def image_metadata(inst: CutoutInstance) -> dict[str, Any]:
    """Return the metadata a PNG/JPG image of a cutout records (see :func:`skycut.image.render.save_image`).

    Parameters
    ----------
    inst : CutoutInstance
        The cutout.

    Returns
    -------
    dict
        ``input_file``, the cutout size in pixels, its mean pixel scale (arcsec per pixel), the centre
        (degrees), ``origin`` and ``version``.
    """
    from astropy.wcs.utils import proj_plane_pixel_scales

    scale = float(np.mean(proj_plane_pixel_scales(inst.wcs)) * 3600.0)
    return {
        "input_file": inst.input_file,
        "cutout_size_x_pix": int(inst.data.shape[-1]),
        "cutout_size_y_pix": int(inst.data.shape[-2]),
        "pixel_scale_arcsec_per_pix": scale,
        "center_ra_deg": float(inst.coordinate.ra.deg),
        "center_dec_deg": float(inst.coordinate.dec.deg),
        "origin": ORIGIN,
        "version": __version__,
    }


def colour_channels(insts: list[CutoutInstance]) -> list[CutoutInstance]:
    """Choose the cutouts to use as R, G, B.

    With three or more input files, the first cutout (first selected extension) of each file, so that e.g.
    the SCI, WHT and CTX extensions of one HST file never become different colours; otherwise the cutouts in
    order.
    (Extra channels are dropped later with a warning.)

    Parameters
    ----------
    insts : list of CutoutInstance
        The cutouts of one coordinate, in input-file order.

    Returns
    -------
    list of CutoutInstance
        The cutouts to colour, in R, G, B order.
    """
    files = list(dict.fromkeys(i.input_file for i in insts))
    if len(files) >= 3 and len(files) < len(insts):
        firsts = [next(i for i in insts if i.input_file == f) for f in files]
        log.info("colorize: using the first extension of each file (%s)", ", ".join(files[:3]))
        return firsts
    return insts
