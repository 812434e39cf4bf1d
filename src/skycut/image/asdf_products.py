"""In-memory products of Roman ASDF cutouts: ASDF files, FITS ``HDUList`` and rendered images.

Each function takes :class:`skycut.image.asdf_piece.CutoutPiece` objects, the cutouts made by
:class:`skycut.image.asdf_cutout.ASDFCutout`:

* :func:`as_asdf_file`: an ``asdf.AsdfFile`` with the tree ``{"roman": piece.roman}`` and one history entry;
* :func:`as_fits_hdulist`: PRIMARY, CUTOUT (science data, FITS-approximated WCS, ``ORIG_FLE``) and ASDF (the
  metadata tree, see :func:`skycut.image.asdf_io.read_asdf_metadata`);
* :func:`product_bytes`: either of them serialised, as the bytes of a file;
* :func:`render_pieces`: PIL images (grey, or one RGB image per coordinate) with :func:`image_metadata`.

The ASDF file and the ``HDUList`` are built on first use and kept on the piece. asdf, astropy and PIL are
imported inside the functions.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from typing import Any

from .. import __version__
from ..core.provenance import creation_date, settle_asdf_history
from ..exceptions import DataWarning
from .asdf_io import MISSION_KEY, asdf_metadata_hdu
from .asdf_piece import CutoutPiece

__all__ = [
    "ORIGIN",
    "SOFTWARE",
    "as_asdf_file",
    "as_fits_hdulist",
    "history_text",
    "image_metadata",
    "product_bytes",
    "render_pieces",
]

ORIGIN = "STScI/MAST"
SOFTWARE = {"name": "skycut", "version": __version__, "author": "skycut developers"}


def history_text(piece: CutoutPiece) -> str:
    """Return the history entry of a cutout: its shape and sky coordinates."""
    return (
        f"Cutout of size {piece.shape} at sky coordinates "
        f"({piece.coordinate.ra.deg:.8f}, {piece.coordinate.dec.deg:.8f})"
    )


def as_asdf_file(piece: CutoutPiece) -> Any:
    """Return the cutout as an ``asdf.AsdfFile`` (tree ``roman``), built on the first call and kept."""
    if "asdf" not in piece._cache:
        import asdf

        af = asdf.AsdfFile({MISSION_KEY: piece.roman})
        af.add_history_entry(history_text(piece), software=SOFTWARE)
        settle_asdf_history(af)  # history extensions in a fixed order
        piece._cache["asdf"] = af
    return piece._cache["asdf"]


def as_fits_hdulist(piece: CutoutPiece) -> Any:
    """Return the cutout as a FITS ``HDUList`` (PRIMARY, CUTOUT, ASDF), built on the first call and kept."""
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
            "history": {"entries": [{"description": history_text(piece), "software": SOFTWARE}]},
        }
        piece._cache["fits"] = fits.HDUList([primary, image, asdf_metadata_hdu(tree)])
    return piece._cache["fits"]


def product_bytes(piece: CutoutPiece, kind: str) -> bytes:
    """Return the bytes of the cutout's ASDF file (``kind="asdf"``) or FITS file (``"fits"``, with checksums)."""
    member = io.BytesIO()
    if kind == "asdf":
        as_asdf_file(piece).write_to(member)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=UserWarning)  # astropy's long-keyword/HIERARCH notes
            as_fits_hdulist(piece).writeto(member, checksum=True)
    return member.getvalue()


def image_metadata(piece: CutoutPiece) -> dict[str, Any]:
    """Return the metadata an image of the cutout carries (see :mod:`skycut.image.render`)."""
    ny, nx = piece.shape
    return {
        "input_file": piece.file,
        "cutout_size_x_pix": nx,
        "cutout_size_y_pix": ny,
        "pixel_scale_arcsec_per_pix": piece.pixel_scale_deg * 3600.0,
        "center_ra_deg": float(piece.coordinate.ra.deg),
        "center_dec_deg": float(piece.coordinate.dec.deg),
        "origin": ORIGIN,
        "version": __version__,
    }


def render_pieces(
    pieces: Sequence[CutoutPiece], coordinates: Sequence[tuple[str, Any]], colorize: bool, options: dict
) -> list[tuple[Any, Any, Any]]:
    """``(file or [files], coordinate, PIL image)`` rows; colour images group the cutouts by coordinate.

    Without ``colorize`` there is one grey image per piece. With it, the pieces are grouped by the
    ``(key, coordinate)`` pairs of ``coordinates``, in that order; each group's first three pieces make one RGB
    image, and a group of fewer than three warns (:class:`DataWarning`) and makes none. ``options`` are passed
    to :func:`skycut.image.render.to_pil_images`.
    """
    from .render import to_pil_images

    if not colorize:
        images = to_pil_images(
            [p.cutout.data for p in pieces],
            [image_metadata(p) for p in pieces],
            colorize=False,
            **options,
        )
        return [(p.file, p.coordinate, img) for p, img in zip(pieces, images, strict=True)]
    rows = []
    for key, coord in coordinates:
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
            [image_metadata(p) for p in group],
            colorize=True,
            **options,
        )[0]
        rows.append(([p.file for p in group[:3]], coord, img))
    return rows
