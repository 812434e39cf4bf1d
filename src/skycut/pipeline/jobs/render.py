"""PNG/JPG images of cutouts: greyscale per product, or colour from three products (R, G, B)."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...core.batch import BatchResult
from ..names import slugify
from .index import finish, merge_products

if TYPE_CHECKING:  # pragma: no cover
    from ..sections import RenderSpec

log = logging.getLogger(__name__)


def cutout_arrays(path: str) -> list[tuple[Any, dict[str, Any]]]:
    """Read the image arrays of a cutout file with rendering metadata: FITS CUTOUT HDUs or an ASDF's data."""
    import numpy as np

    from ... import __version__

    meta_base = {"input_file": Path(path).name, "origin": "skycut", "version": __version__}
    arrays = []
    if path.endswith(".asdf"):
        import asdf

        with asdf.open(path, memmap=False) as af:
            data = np.asarray(af["roman"]["data"])
            arrays.append((getattr(data, "value", data), dict(meta_base)))
        return arrays
    from astropy.io import fits
    from astropy.wcs import WCS
    from astropy.wcs.utils import proj_plane_pixel_scales

    with fits.open(path) as hdul:
        primary = hdul[0].header
        for hdu in hdul:
            if hdu.data is None or hdu.data.ndim != 2:
                continue
            meta = dict(meta_base)
            meta.update(
                cutout_size_x_pix=hdu.data.shape[1],
                cutout_size_y_pix=hdu.data.shape[0],
                center_ra_deg=primary.get("RA_OBJ"),
                center_dec_deg=primary.get("DEC_OBJ"),
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                wcs = WCS(hdu.header)
            if wcs.has_celestial:
                meta["pixel_scale_arcsec_per_pix"] = float(
                    np.mean(proj_plane_pixel_scales(wcs.celestial)) * 3600
                )
            arrays.append((np.array(hdu.data, dtype=float), meta))
    return arrays


def render_images(inputs: dict[str, list[str]], spec: RenderSpec, index_path: str) -> dict[str, Any]:
    """Render the cutouts listed in the index files of ``inputs``; images go beside the index.

    Greyscale: ``{product}/{target}.{fmt}`` (``_{k}`` added when a file holds several cutouts).
    Colour: ``{target}.{fmt}`` from the first cutout of each of the three products (R, G, B in ``inputs`` order),
    each channel normalised around its own sky so that the sky is grey (``neutral_sky`` of
    :func:`skycut.image.render.to_pil_images`).

    Parameters
    ----------
    inputs : dict
        Product name (input set or combine group) -> its index files, in the manifest's order.
    spec : RenderSpec
        The manifest's render set (targets, stretch, limits, invert, colorize, format).
    index_path : str
        The job's JSON index.

    Returns
    -------
    dict
        The index; a colour target whose channels differ in shape is skipped with the reason.
    """
    from ...image.render import save_image, to_pil_images

    files_by_product = {name: merge_products(paths) for name, paths in inputs.items()}
    wanted = set(spec.targets) if spec.targets else None
    options = dict(
        stretch=spec.stretch,
        minmax_percent=spec.minmax_percent,
        minmax_value=spec.minmax_value,
        invert=spec.invert,
    )
    result = BatchResult()
    out = Path(index_path).parent
    if spec.colorize:
        names = list(files_by_product)
        common = set.intersection(*(set(files_by_product[n]) for n in names))
        for target in sorted(common if wanted is None else common & wanted):
            channels = [cutout_arrays(files_by_product[n][target][0])[0] for n in names]
            arrays = [a for a, _ in channels]
            if len({a.shape for a in arrays}) != 1:
                result.skip(target, f"channel shapes differ: {[a.shape for a in arrays]}")
                continue
            meta = dict(channels[0][1], input_file=",".join(m["input_file"] for _, m in channels))
            img = to_pil_images(arrays, [meta] * 3, colorize=True, neutral_sky=True, **options)[0]
            result.add(target, [save_image(img, out / f"{slugify(target)}.{spec.format}", spec.format)])
    else:
        for product, by_target in files_by_product.items():
            for target, files in sorted(by_target.items()):
                if wanted is not None and target not in wanted:
                    continue
                pairs = [p for f in files for p in cutout_arrays(f)]
                images = to_pil_images(
                    [a for a, _ in pairs], [m for _, m in pairs], colorize=False, **options
                )
                for k, img in enumerate(images):
                    stem = slugify(target) if len(images) == 1 else f"{slugify(target)}_{k}"
                    result.add(
                        target, [save_image(img, out / product / f"{stem}.{spec.format}", spec.format)]
                    )
    return finish(index_path, result)
