"""The workflow's figures: TPF light curves and mean images (matplotlib), moving-target frames (Pillow).

Every figure is drawn with matplotlib's Agg backend and written atomically (:func:`save_figure`); the same
inputs give the same bytes (PNG text chunks hold only matplotlib's version, no date).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ..core.atomic import atomic_output

log = logging.getLogger(__name__)

#: Moving-target frames: each TPF pixel becomes a FRAME_SCALE x FRAME_SCALE block; at most STRIP_COLUMNS frames
#: per row of the strip; GIF frame duration in milliseconds.
FRAME_SCALE = 16
STRIP_COLUMNS = 8
GIF_FRAME_MS = 250


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: str | Path, dpi: int = 100) -> Path:
    """Write a matplotlib figure as PNG atomically, close it, and return the path."""
    plt = _pyplot()
    path = Path(path)
    try:
        with atomic_output(path) as tmp:
            fig.savefig(tmp, format="png", dpi=dpi)
    finally:
        plt.close(fig)
    log.debug("wrote figure %s", path)
    return path


def _tpf_header(tpf: str) -> dict[str, Any]:
    from astropy.io import fits

    with fits.open(tpf) as hdul:
        primary = hdul[0].header
        return {
            "header": hdul["APERTURE"].header.copy(),
            "ra": primary.get("RA_OBJ"),
            "dec": primary.get("DEC_OBJ"),
            "sector": primary.get("SECTOR"),
            "camera": primary.get("CAMERA"),
            "ccd": primary.get("CCD"),
        }


def _observation(info: dict[str, Any]) -> str:
    if info["sector"] is None:
        return "TESS"
    return f"TESS sector {info['sector']}, camera {info['camera']}, CCD {info['ccd']}"


def light_curve_figure(lc: Any, tpf: str, target: str):
    """Plot the light curve of :func:`~skycut.pipeline.jobs.cube_cutouts.measure_light_curve`.

    The background-subtracted aperture flux with 1-sigma error bars (QUALITY = 0 cadences, flagged ones as red
    crosses) above the background that was subtracted.

    Parameters
    ----------
    lc : skycut.pipeline.jobs.cube_cutouts.LightCurve
        The measured light curve.
    tpf : str
        The TPF it came from (title: target, sector, camera, CCD).
    target : str
        The target's name.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import numpy as np

    plt = _pyplot()
    info = _tpf_header(tpf)
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(7, 4.2), dpi=100, sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    good = lc.quality == 0
    top.errorbar(
        lc.time[good],
        lc.flux[good],
        yerr=lc.flux_err[good],
        fmt=".-",
        lw=0.8,
        ms=4,
        capsize=0,
        label="QUALITY = 0",
    )
    if (~good).any():
        top.plot(lc.time[~good], lc.flux[~good], "x", color="tab:red", ms=5, label="flagged")
    finite = np.isfinite(lc.flux[good])
    if finite.any():
        median = float(np.median(lc.flux[good][finite]))
        top.axhline(median, color="0.6", lw=0.6, ls=":")
        scatter = float(np.std(lc.flux[good][finite]) / median) if median else float("nan")
        top.text(0.01, 0.04, f"rms {100 * scatter:.2f}% of the median", transform=top.transAxes, fontsize=7)
    top.set_ylabel("Flux [e$^-$/s]")
    top.set_title(
        f"{target}: {_observation(info)}\naperture {int(lc.aperture.sum())} px "
        f"(threshold {lc.threshold:g} sigma), sky from {int(lc.background_pixels.sum())} px",
        fontsize=8,
    )
    top.legend(fontsize=7, loc="upper right")
    bottom.plot(lc.time, lc.background, ".-", color="0.4", lw=0.8, ms=3)
    bottom.set_ylabel("Sky in\naperture", fontsize=8)
    bottom.set_xlabel("Time [BTJD]")
    fig.tight_layout()
    return fig


def aperture_outline(mask: Any) -> list[tuple[tuple[float, float], tuple[float, float]]]:
    """Return the outline of a pixel mask as line segments on pixel edges.

    Pixel centres are at integers, as matplotlib and WCSAxes place them; the outline is every edge between a
    masked pixel and an unmasked (or outside) one.
    """
    import numpy as np

    mask = np.asarray(mask, dtype=bool)
    padded = np.pad(mask, 1)
    segments = []
    for y, x in zip(*np.nonzero(mask), strict=True):
        py, px = y + 1, x + 1
        if not padded[py - 1, px]:
            segments.append(((x - 0.5, y - 0.5), (x + 0.5, y - 0.5)))
        if not padded[py + 1, px]:
            segments.append(((x - 0.5, y + 0.5), (x + 0.5, y + 0.5)))
        if not padded[py, px - 1]:
            segments.append(((x - 0.5, y - 0.5), (x - 0.5, y + 0.5)))
        if not padded[py, px + 1]:
            segments.append(((x + 0.5, y - 0.5), (x + 0.5, y + 0.5)))
    return segments


def mean_image_figure(lc: Any, tpf: str, target: str):
    """Plot a TPF's mean image on WCS axes (the TPF's linear WCS from its APERTURE extension), asinh-scaled.

    With a colour bar in e-/s, the light curve's aperture outlined in red and the target's position marked.

    Parameters
    ----------
    lc : skycut.pipeline.jobs.cube_cutouts.LightCurve
        The measured light curve (its ``mean_image`` and ``aperture``).
    tpf : str
        The TPF (its WCS, RA_OBJ/DEC_OBJ, sector).
    target : str
        The target's name.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import warnings

    import numpy as np
    from astropy.visualization import AsinhStretch, ImageNormalize, MinMaxInterval
    from astropy.wcs import WCS
    from matplotlib.collections import LineCollection

    plt = _pyplot()
    info = _tpf_header(tpf)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wcs = WCS(info["header"]).celestial
    image = np.asarray(lc.mean_image, dtype=float)
    finite = np.isfinite(image)
    norm = ImageNormalize(
        image[finite] if finite.any() else np.zeros(1), interval=MinMaxInterval(), stretch=AsinhStretch()
    )
    cmap = plt.get_cmap("viridis").with_extremes(bad="0.85")
    fig = plt.figure(figsize=(5.6, 4.8), dpi=100)
    ax = fig.add_subplot(projection=wcs)
    shown = ax.imshow(image, origin="lower", cmap=cmap, norm=norm, interpolation="nearest")
    ax.add_collection(
        LineCollection(
            aperture_outline(lc.aperture),
            colors="red",
            linewidths=1.5,
            label=f"aperture ({int(lc.aperture.sum())} px)",
        )
    )
    if info["ra"] is not None and info["dec"] is not None:
        ax.plot(
            info["ra"],
            info["dec"],
            "+",
            color="white",
            ms=12,
            mew=1.5,
            transform=ax.get_transform("icrs"),
            label="target",
        )
    ax.set_xlim(-0.5, image.shape[1] - 0.5)
    ax.set_ylim(-0.5, image.shape[0] - 0.5)
    ax.coords[0].set_axislabel("RA (ICRS)")
    ax.coords[1].set_axislabel("Dec (ICRS)")
    ax.coords[0].set_ticklabel(exclude_overlapping=True, size=7)
    ax.coords[1].set_ticklabel(size=7)
    ax.legend(loc="upper right", fontsize=7, framealpha=0.7)
    bar = fig.colorbar(shown, ax=ax, pad=0.12, fraction=0.046)
    bar.set_label("Mean flux [e$^-$/s] (asinh scale)")
    ax.set_title(f"{target}: mean of {len(lc.time)} cadences\n{_observation(info)}", fontsize=8)
    return fig


def path_frames(
    tpf: str, strip_path: str | Path, gif_path: str | Path, title: str | None = None
) -> list[Path]:
    """Draw the frames of a moving-target TPF (re-centred on the target every cadence), as a strip and a GIF.

    The strip is a PNG, rows of :data:`STRIP_COLUMNS` frames; the GIF is animated; both follow the target.

    Every frame shares one asinh scale (the 0.5-99.5 percentiles of all frames); each TPF pixel is a
    :data:`FRAME_SCALE`-pixel block; the target's pixel (the frame's centre) is outlined in red, and each
    frame carries its cadence number and time (BTJD); flagged cadences (QUALITY != 0) are marked with ``Q``.

    Parameters
    ----------
    tpf : str
        The moving-target TPF (PIXELS: FLUX per cadence, TIME, QUALITY).
    strip_path, gif_path : path-like
        The PNG strip and the GIF to write.
    title : str, optional
        A line above the strip (the target's name).

    Returns
    -------
    list of Path
        ``[strip_path, gif_path]``.
    """
    import numpy as np
    from astropy.io import fits
    from PIL import Image, ImageDraw

    from ..image.render import normalize_img

    with fits.open(tpf) as hdul:
        table = hdul["PIXELS"].data
        flux = np.asarray(table["FLUX"], dtype=float)
        time = np.asarray(table["TIME"], dtype=float)
        quality = np.asarray(table["QUALITY"])
    finite = flux[np.isfinite(flux)]
    limits = tuple(np.percentile(finite, [0.5, 99.5])) if finite.size else (0.0, 1.0)
    if limits[1] <= limits[0]:
        limits = (limits[0], limits[0] + 1.0)
    ny, nx = flux.shape[1:]
    label_h = 12
    frames = []
    for k, image in enumerate(flux):
        grey = normalize_img(image, stretch="asinh", minmax_value=limits)[::-1]  # north (row ny - 1) up
        big = Image.fromarray(np.ascontiguousarray(grey)).resize(
            (nx * FRAME_SCALE, ny * FRAME_SCALE), resample=Image.Resampling.NEAREST
        )
        frame = Image.new("RGB", (big.width, big.height + label_h), "black")
        frame.paste(big.convert("RGB"), (0, label_h))
        draw = ImageDraw.Draw(frame)
        cx, cy = (nx // 2) * FRAME_SCALE, label_h + (ny - 1 - ny // 2) * FRAME_SCALE
        draw.rectangle([cx, cy, cx + FRAME_SCALE - 1, cy + FRAME_SCALE - 1], outline=(255, 40, 40))
        flag = " Q" if quality[k] else ""
        draw.text((2, 0), f"{k} {time[k]:.3f}{flag}", fill=(255, 255, 255))
        frames.append(frame)
    gap, head = 4, 14 if title else 0
    columns = min(STRIP_COLUMNS, len(frames))
    rows = -(-len(frames) // columns)
    fw, fh = frames[0].size
    strip = Image.new(
        "RGB", (columns * fw + (columns - 1) * gap, head + rows * fh + (rows - 1) * gap), "white"
    )
    if title:
        ImageDraw.Draw(strip).text((2, 1), title, fill=(0, 0, 0))
    for k, frame in enumerate(frames):
        row, col = divmod(k, columns)
        strip.paste(frame, (col * (fw + gap), head + row * (fh + gap)))
    strip_path, gif_path = Path(strip_path), Path(gif_path)
    with atomic_output(strip_path) as tmp:
        strip.save(tmp, format="PNG")
    palette = [f.convert("P", palette=Image.Palette.ADAPTIVE, colors=255) for f in frames]
    with atomic_output(gif_path) as tmp:
        palette[0].save(
            tmp, format="GIF", save_all=True, append_images=palette[1:], duration=GIF_FRAME_MS, loop=0
        )
    log.info("moving target frames: %d cadences -> %s, %s", len(frames), strip_path, gif_path)
    return [strip_path, gif_path]
