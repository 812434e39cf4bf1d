"""Target pixel files of one (cube, target batch), and a light-curve plot and mean image per TPF.

The cube-cutout job is numpy-only for decimal targets: it hands the library the targets' resolved ICRS
``(ra, dec)`` floats, so neither it nor :func:`~skycut.tess.cube_cutout.cut_cube_targets` loads
``astropy.coordinates``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...core.atomic import atomic_output
from ...core.batch import BatchResult
from ..names import object_name, slugify, tic_id
from ..options import fill, fsspec_kwargs
from .index import finish, read_index

if TYPE_CHECKING:  # pragma: no cover
    from ..manifest import CubeCutoutSpec, Target

log = logging.getLogger(__name__)


def cut_cube(cube: str, targets: list[Target], spec: CubeCutoutSpec, index_path: str) -> dict[str, Any]:
    """Cut a batch of targets from one cube into ``{target}.fits`` TPFs beside the index.

    Files are named by the target's slug (:func:`skycut.pipeline.names.slugify`), the index keyed by its name.
    A TPF's ``OBJECT`` is :func:`skycut.pipeline.names.object_name` of the target and a TIC name sets ``TICID``.

    The cube is opened, and its table and WCS read, once per distinct cutout size in the batch (usually once).

    Parameters
    ----------
    cube : str
        Path or URI of the cube.
    targets : list of Target
        The batch's targets (resolved ICRS ``ra``/``dec`` and ``size``).
    spec : CubeCutoutSpec
        The manifest's cube-cutout set (fill value, threads, fsspec options).
    index_path : str
        The job's JSON index (with the key ``cube``).

    Returns
    -------
    dict
        The index: a target entirely off the CCD is skipped, a target that could not be made failed, each with
        the library's reason (:class:`skycut.core.batch.BatchResult`).
    """
    from ...tess.cube_cutout import cut_cube_targets

    by_size: dict[Any, list[Target]] = {}
    for target in targets:
        by_size.setdefault(target.size, []).append(target)  # a hashable core.coords.CutoutSize
    out = Path(index_path).parent
    result = BatchResult()
    for size, group in by_size.items():
        result.merge(cut_cube_targets(
            cube, [(t.name, (t.ra, t.dec)) for t in group], size,
            output_paths={t.name: out / f"{t.slug}.fits" for t in group},
            object_names={t.name: object_name(t.name, resolved=t.coordinates is None) for t in group},
            tic_ids={t.name: tic_id(t.name) for t in group if tic_id(t.name) is not None},
            fill_value=fill(spec.fill_value), threads=spec.threads, fsspec_kwargs=fsspec_kwargs(spec.fsspec)))
    return finish(index_path, result, cube=cube)


def tpf_light_curve(tpf_path: str) -> tuple[Any, Any, Any]:
    """Simple-aperture light curve of a TPF: ``(time, flux, quality)`` summing FLUX over APERTURE pixels.

    TIME is BTJD (BJD - 2457000); cadences with no finite pixel give NaN.
    """
    import numpy as np
    from astropy.io import fits

    with fits.open(tpf_path) as hdul:
        table = hdul["PIXELS"].data
        aperture = hdul["APERTURE"].data > 0
        flux = np.asarray(table["FLUX"], dtype=float)
        time = np.asarray(table["TIME"], dtype=float)
        quality = np.asarray(table["QUALITY"])
    pixels = flux[:, aperture]
    total = np.where(np.isfinite(pixels).any(axis=1), np.nansum(pixels, axis=1), np.nan)
    return time, total, quality


def plot_tpfs(cutout_index: str, plot_index: str) -> dict[str, Any]:
    """For every TPF of a cube-cutout index: a light-curve plot and a mean image (PNG), beside ``plot_index``.

    Writes ``{target}_lightcurve.png`` and ``{target}_mean.png`` (the target's slug; its name in the title).

    Parameters
    ----------
    cutout_index : str
        The cube-cutout job's index.
    plot_index : str
        This job's index.

    Returns
    -------
    dict
        The index.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from astropy.io import fits

    from ...image.render import save_image, to_pil_images

    result = BatchResult()
    out = Path(plot_index).parent
    for target, files in sorted(read_index(cutout_index)["products"].items()):
        tpf = files[0]
        time, flux, quality = tpf_light_curve(tpf)
        fig, ax = plt.subplots(figsize=(7, 3), dpi=100)
        good = quality == 0
        ax.plot(time[good], flux[good], ".-", lw=0.8, ms=3, label="QUALITY = 0")
        if (~good).any():
            ax.plot(time[~good], flux[~good], "x", color="tab:red", ms=4, label="flagged")
        ax.set_xlabel("Time [BTJD]")
        ax.set_ylabel("Aperture flux [e-/s]")
        ax.set_title(f"{target} ({Path(tpf).name})", fontsize=9)
        ax.legend(fontsize=7)
        fig.tight_layout()
        lc_path = out / f"{slugify(target)}_lightcurve.png"
        with atomic_output(lc_path) as tmp:
            fig.savefig(tmp, format="png")
        plt.close(fig)
        with fits.open(tpf) as hdul:
            mean = np.nanmean(np.asarray(hdul["PIXELS"].data["FLUX"], dtype=float), axis=0)
            meta = {"input_file": Path(tpf).name, "center_ra_deg": hdul[0].header.get("RA_OBJ"),
                    "center_dec_deg": hdul[0].header.get("DEC_OBJ"), "cutout_size_x_pix": mean.shape[1],
                    "cutout_size_y_pix": mean.shape[0], "origin": "skycut"}
        img = to_pil_images([mean], [meta], stretch="asinh", minmax_percent=None, minmax_value=None,
                            invert=False, colorize=False)[0]
        info = dict(img.info)
        img = img.resize((img.width * 8, img.height * 8), resample=0)  # nearest: one TESS pixel = 8x8
        img.info.update(info)
        mean_path = save_image(img, out / f"{slugify(target)}_mean.png", "png")
        result.add(target, [lc_path, mean_path])
    return finish(plot_index, result)
