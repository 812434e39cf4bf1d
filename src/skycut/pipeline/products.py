"""Batch operations behind the workflow's jobs: each takes plain paths and records, writes its products
through :mod:`skycut.core.atomic`, and writes a JSON index of what it made.

The Snakemake scripts in ``workflow/`` only unpack ``snakemake.input/params/output`` and call one function
here, so every job can be run and tested without Snakemake.

An index is ``{"products": {target: [files...]}, "skipped": {target: reason}}``. A target that misses
every image of an input set is *skipped* with the reason (a survey's target list routinely includes
targets outside some images); bad input (unreadable file, bad option) raises.
"""

from __future__ import annotations

import json
import logging
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ..core.atomic import atomic_output, write_hdulist
from ..exceptions import InvalidQueryError

log = logging.getLogger(__name__)


def configure_logging(log_file: str | None = None, level: int = logging.INFO) -> None:
    """Send skycut's log records (and warnings) to ``log_file`` (or stderr)."""
    handler: logging.Handler = logging.FileHandler(log_file) if log_file else logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(True)


def write_index(path: str | Path, products: dict[str, list[str]], skipped: dict[str, str] | None = None,
                **extra: Any) -> dict[str, Any]:
    """Write a job's JSON index atomically and return it."""
    index = {"products": products, "skipped": skipped or {}, **extra}
    with atomic_output(path) as tmp:
        Path(tmp).write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
    return index


def read_index(path: str | Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


def _fill(value: float | None) -> float:
    return math.nan if value is None else value


def _coordinate(spec: Any):
    """A manifest coordinate spec (string, [ra, dec], {ra, dec, frame}) as a scalar ICRS SkyCoord."""
    from ..core.coords import parse_coordinates

    return parse_coordinates(spec)[0]


# ------------------------------------------------------------------------------------------------ demo
def make_demo(spec: dict[str, Any], out_dir: str) -> dict[str, list[str]]:
    """Make the simulated demo data a manifest's ``demo`` section asks for."""
    from ..simulate import simulate_demo, write_path_table

    made = simulate_demo(spec, out_dir)
    if made.get("tess"):
        tess_dir = Path(made["tess"][0]).parent
        truth = json.loads(next(tess_dir.glob("*_truth.json")).read_text())
        made["tess_extras"] = [write_path_table(truth, tess_dir / DEMO_PATH_TABLE),
                               write_footprint_json(made["tess"][:1], tess_dir / DEMO_FOOTPRINTS)]
    return {k: [str(p) for p in v] for k, v in made.items()}


DEMO_PATH_TABLE = "moving_target_path.ecsv"
DEMO_FOOTPRINTS = "tess_ffi_footprint_cache.json"


def write_footprint_json(ffi_files: list[str], path: str | Path) -> Path:
    """Write a footprint file in MAST's format (column lists ``s_region``, ``sequence_number``,
    ``target_name``, ``obs_id``) for the sector/camera/CCDs of ``ffi_files`` (one FFI each).

    Each polygon is the FFI's four image corners through its WCS; this is what lets the demo run footprint
    cutouts offline against locally built cubes.
    """
    from astropy.io import fits
    from astropy.wcs import WCS

    columns: dict[str, list[Any]] = {"s_region": [], "sequence_number": [], "target_name": [], "obs_id": []}
    for ffi in ffi_files:
        with fits.open(ffi) as hdul:
            header = hdul[1].header
            ny, nx = header["NAXIS2"], header["NAXIS1"]
            wcs = WCS(header)
            corners = wcs.all_pix2world([[-0.5, -0.5], [nx - 0.5, -0.5], [nx - 0.5, ny - 0.5], [-0.5, ny - 0.5]], 0)
            sector, camera, ccd = (hdul[0].header[k] for k in ("SECTOR", "CAMERA", "CCD"))
        columns["s_region"].append("POLYGON " + " ".join(f"{ra:.8f} {dec:.8f}" for ra, dec in corners))
        columns["sequence_number"].append(int(sector))
        columns["target_name"].append("TESS FFI")
        columns["obs_id"].append(f"tess-s{int(sector):04d}-{int(camera)}-{int(ccd)}")
    with atomic_output(path) as tmp:
        Path(tmp).write_text(json.dumps(columns, indent=1) + "\n")
    return Path(path)


# ------------------------------------------------------------------------------------------------ images
def cut_images(files: list[str], targets: list[dict[str, Any]], out_dir: str, index_path: str, *,
               file_format: str = "fits", extensions: Any = None, fill_value: float | None = None,
               lite: bool = False, output_format: str | None = None,
               fsspec_kwargs: dict[str, Any] | None = None) -> dict[str, Any]:
    """Cut every target from an input set; one output file per target (several for ASDF sets).

    FITS: ``{out_dir}/{target}.fits`` holds one CUTOUT HDU per (file, extension) that contains the target.
    ASDF: ``{out_dir}/{target}.asdf`` (``{target}_{k}.asdf`` when the set has several files).
    """
    products: dict[str, list[str]] = {}
    skipped: dict[str, str] = {}
    out = Path(out_dir)
    for target in targets:
        name, coord = target["name"], _coordinate(target["coordinates"])
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                if file_format == "asdf":
                    products[name] = _cut_asdf(files, coord, target["size"], out, name, fill_value, lite,
                                               output_format or "asdf", fsspec_kwargs)
                else:
                    products[name] = _cut_fits(files, coord, target["size"], out, name, extensions,
                                               fill_value, fsspec_kwargs)
            for w in caught:
                log.warning("%s: %s", name, w.message)
        except InvalidQueryError as exc:
            log.warning("target %s skipped: %s", name, exc)
            skipped[name] = str(exc)
    log.info("cut %d targets (%d skipped) from %d file(s)", len(products), len(skipped), len(files))
    return write_index(index_path, products, skipped)


def _cut_fits(files, coord, size, out: Path, name, extensions, fill_value, fsspec_kwargs) -> list[str]:
    from ..image.fits_cutout import FITSCutout

    cutout = FITSCutout(files, coord, size, fill_value=_fill(fill_value), extension=extensions,
                        single_outfile=True, fsspec_kwargs=fsspec_kwargs)
    path = out / f"{name}.fits"
    write_hdulist(cutout.fits_cutouts[0], path)
    return [str(path)]


def _cut_asdf(files, coord, size, out: Path, name, fill_value, lite, output_format, fsspec_kwargs) -> list[str]:
    from ..image.asdf_cutout import ASDFCutout

    cutout = ASDFCutout(files, coord, size, fill_value=_fill(fill_value), lite=lite, fsspec_kwargs=fsspec_kwargs)
    pieces = list(cutout.iter_asdf_cutouts() if output_format == "asdf" else cutout.iter_fits_cutouts())
    written = []
    for k, (_file, _coord, obj) in enumerate(pieces):
        path = out / (f"{name}.{output_format}" if len(pieces) == 1 else f"{name}_{k}.{output_format}")
        if output_format == "asdf":
            meta = obj.tree.get("roman", {}).get("meta")
            if meta is not None and "filename" in meta:
                meta["filename"] = path.name  # roman_datamodels checks it against the file's name
            with atomic_output(path) as tmp:
                obj.write_to(tmp)
        else:
            write_hdulist(obj, path)
        written.append(str(path))
    return written


# ------------------------------------------------------------------------------------------------ arrays
def cutout_arrays(path: str) -> list[tuple[Any, dict[str, Any]]]:
    """The image arrays of a cutout file with rendering metadata: FITS CUTOUT HDUs or an ASDF's data."""
    import numpy as np

    from .. import __version__

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
            meta.update(cutout_size_x_pix=hdu.data.shape[1], cutout_size_y_pix=hdu.data.shape[0],
                        center_ra_deg=primary.get("RA_OBJ"), center_dec_deg=primary.get("DEC_OBJ"))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                wcs = WCS(hdu.header)
            if wcs.has_celestial:
                meta["pixel_scale_arcsec_per_pix"] = float(np.mean(proj_plane_pixel_scales(wcs.celestial)) * 3600)
            arrays.append((np.array(hdu.data, dtype=float), meta))
    return arrays


# ------------------------------------------------------------------------------------------------ render
def render_images(inputs: dict[str, list[str]], out_dir: str, index_path: str, *, targets: list[str] | None = None,
                  stretch: str = "asinh", minmax_percent=None, minmax_value=None, invert: bool = False,
                  colorize: bool = False, image_format: str = "png") -> dict[str, Any]:
    """Render cutouts listed in the index files of ``inputs`` (product name -> index paths).

    Greyscale: ``{out_dir}/{product}/{target}.{fmt}`` (``_{k}`` added when a file holds several cutouts).
    Colour: ``{out_dir}/{target}.{fmt}`` from the first cutout of each of the three products (R, G, B).
    """
    from ..image.render import save_image, to_pil_images

    files_by_product = {name: _merge_indexes(paths) for name, paths in inputs.items()}
    wanted = set(targets) if targets else None
    options = dict(stretch=stretch, minmax_percent=minmax_percent, minmax_value=minmax_value, invert=invert)
    products: dict[str, list[str]] = {}
    skipped: dict[str, str] = {}
    out = Path(out_dir)
    if colorize:
        names = list(files_by_product)
        common = set.intersection(*(set(files_by_product[n]) for n in names))
        for target in sorted(common if wanted is None else common & wanted):
            channels = [cutout_arrays(files_by_product[n][target][0])[0] for n in names]
            arrays = [a for a, _ in channels]
            if len({a.shape for a in arrays}) != 1:
                skipped[target] = f"channel shapes differ: {[a.shape for a in arrays]}"
                continue
            meta = dict(channels[0][1], input_file=",".join(m["input_file"] for _, m in channels))
            img = to_pil_images(arrays, [meta] * 3, colorize=True, **options)[0]
            products[target] = [str(save_image(img, out / f"{target}.{image_format}", image_format))]
    else:
        for product, by_target in files_by_product.items():
            for target, files in sorted(by_target.items()):
                if wanted is not None and target not in wanted:
                    continue
                pairs = [p for f in files for p in cutout_arrays(f)]
                images = to_pil_images([a for a, _ in pairs], [m for _, m in pairs], colorize=False, **options)
                for k, img in enumerate(images):
                    stem = target if len(images) == 1 else f"{target}_{k}"
                    path = save_image(img, out / product / f"{stem}.{image_format}", image_format)
                    products.setdefault(target, []).append(str(path))
    return write_index(index_path, products, skipped)


def _merge_indexes(paths: list[str]) -> dict[str, list[str]]:
    merged: dict[str, list[str]] = {}
    for path in paths:
        merged.update(read_index(path)["products"])
    return merged


# ------------------------------------------------------------------------------------------------ combine
def combine_cutouts(inputs: dict[str, list[str]], out_dir: str, index_path: str, *,
                    targets: list[str] | None = None, combiner: str = "mean",
                    null_value: float | None = None) -> dict[str, Any]:
    """Combine each target's FITS cutouts from several input sets into ``{out_dir}/{target}.fits``."""
    from ..image.combine import CutoutsCombiner, resolve_combiner

    by_product = [_merge_indexes(paths) for paths in inputs.values()]
    common = set.intersection(*(set(p) for p in by_product)) if by_product else set()
    if targets:
        common &= set(targets)
    products: dict[str, list[str]] = {}
    builder = resolve_combiner(combiner)
    for target in sorted(common):
        files = [p[target][0] for p in by_product]
        comb = CutoutsCombiner(files)
        comb.build_img_combiner(builder, builder_args=[comb.input_hdulists[0], _fill(null_value)])
        path = Path(out_dir) / f"{target}.fits"
        comb.combine(str(path))
        products[target] = [str(path)]
    skipped = {t: "not cut from every input" for p in by_product for t in p if t not in common}
    return write_index(index_path, products, skipped)


# ------------------------------------------------------------------------------------------------ cubes
def build_cube(files: list[str], cube_file: str, *, sector: int, max_memory: float) -> str:
    """Build a TESS cube from FFIs (:class:`~skycut.tess.cube_factory.CubeFactory`)."""
    from ..tess.cube_factory import CubeFactory

    return str(CubeFactory().make_cube(files, cube_file=cube_file, sector=sector, max_memory=max_memory,
                                       verbose=True))


def cut_cube(cube: str, targets: list[dict[str, Any]], out_dir: str, index_path: str, *,
             fill_value: float | None = None, threads: int | str = 1,
             fsspec_kwargs: dict[str, Any] | None = None) -> dict[str, Any]:
    """Cut a batch of targets from one cube into ``{out_dir}/{target}.fits`` TPFs.

    The cube is opened, and its table and WCS read, once per distinct cutout size in the batch (usually once).
    A target entirely off the CCD is skipped with the reason in the index.
    """
    from ..tess.cube_cutout import cut_cube_targets

    by_size: dict[Any, list[dict[str, Any]]] = {}
    for target in targets:
        by_size.setdefault(target["size"], []).append(target)  # a hashable core.coords.CutoutSize
    products: dict[str, list[str]] = {}
    skipped: dict[str, str] = {}
    failed: dict[str, str] = {}
    for group in by_size.values():
        result = cut_cube_targets(
            cube, [(t["name"], t["coordinates"]) for t in group], group[0]["size"],
            output_paths={t["name"]: Path(out_dir) / f"{t['name']}.fits" for t in group},
            fill_value=_fill(fill_value), threads=threads, fsspec_kwargs=fsspec_kwargs)
        products.update({name: [str(p) for p in paths] for name, paths in result.written.items()})
        skipped.update(result.skipped)
        failed.update(result.failed)
    return write_index(index_path, products, skipped, cube=cube, **({"failed": failed} if failed else {}))


# ------------------------------------------------------------------------------------------------ TPF plots
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


def plot_tpfs(index_path: str, out_dir: str, plot_index: str) -> dict[str, Any]:
    """For every TPF of a cube-cutout index: a light-curve plot and a mean image (PNG).

    Writes ``{out_dir}/{target}_lightcurve.png`` and ``{out_dir}/{target}_mean.png``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from astropy.io import fits

    from ..image.render import save_image, to_pil_images

    products: dict[str, list[str]] = {}
    out = Path(out_dir)
    for target, files in sorted(read_index(index_path)["products"].items()):
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
        lc_path = out / f"{target}_lightcurve.png"
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
        mean_path = save_image(img, out / f"{target}_mean.png", "png")
        products[target] = [str(lc_path), str(mean_path)]
    return write_index(plot_index, products)


# ------------------------------------------------------------------------------------------------ footprints
def footprint_cutouts(targets: list[dict[str, Any]], out_dir: str, index_path: str, *,
                      sectors: list[int] | None = None, footprint_uri: str, cube_base_uri: str,
                      fill_value: float | None = None, threads: int | str = 8,
                      fsspec_kwargs: dict[str, Any] | None = None) -> dict[str, Any]:
    """TPFs from every cube whose FFI footprint overlaps each target: ``{out_dir}/{target}/<astrocut name>``."""
    from ..tess.footprint import TessFootprintCutout

    products: dict[str, list[str]] = {}
    skipped: dict[str, str] = {}
    for target in targets:
        name = target["name"]
        try:
            cut = TessFootprintCutout(_coordinate(target["coordinates"]), target["size"],
                                      fill_value=_fill(fill_value), sequence=sectors, footprint_uri=footprint_uri,
                                      cube_base_uri=cube_base_uri, fsspec_kwargs=fsspec_kwargs, threads=threads)
        except InvalidQueryError as exc:
            log.warning("target %s skipped: %s", name, exc)
            skipped[name] = str(exc)
            continue
        products[name] = [str(p) for p in cut.write_as_tpf(Path(out_dir) / name)]
    return write_index(index_path, products, skipped)


# ------------------------------------------------------------------------------------------------ moving targets
def read_path(table_file: str, time_format: str = "jd"):
    """A path table (columns ``time``, ``ra``, ``dec``) as astrocut's ``Table(time: Time, position: SkyCoord)``.

    ``time_format``: ``jd``/``iso`` (read as given), ``mjd``, or ``btjd`` (BJD - 2457000, TESS's TIME); TDB.
    """
    from ..tess.moving_target import read_path_table

    if time_format in ("jd", "iso"):
        return read_path_table(table_file)
    from astropy.coordinates import SkyCoord
    from astropy.table import Table
    from astropy.time import Time

    raw = Table.read(table_file, format="ascii.ecsv" if table_file.endswith(".ecsv") else "ascii.csv")
    missing = {"time", "ra", "dec"} - set(raw.colnames)
    if missing:
        raise ValueError(f"{table_file}: missing column(s) {sorted(missing)}")
    values = np.asarray(raw["time"], dtype=float)
    time = Time(values + 2457000.0, format="jd", scale="tdb") if time_format == "btjd" else Time(
        values, format="mjd", scale="tdb")
    return Table({"time": time, "position": SkyCoord(raw["ra"], raw["dec"], unit="deg")})


def cube_wcs(cube: str, fsspec_kwargs: dict[str, Any] | None = None):
    """The full (SIP) WCS a cube's cutouts use, with ``pixel_shape`` set to the FFI's ``(ncols, nrows)``."""
    from ..core.tansip import TanSip
    from ..tess.cube_reader import CubeReader
    from ..tess.cube_wcs import cube_wcs_from_row, cube_wcs_row

    reader = CubeReader(cube, fsspec_kwargs=fsspec_kwargs)
    try:
        wcs = cube_wcs_from_row(reader.table, cube_wcs_row(reader.table, str(cube)), reader.shape)
        wcs = wcs.to_astropy() if isinstance(wcs, TanSip) else wcs
        wcs.pixel_shape = (reader.ncols, reader.nrows)
        return wcs
    finally:
        reader.close()


def moving_target(table_file: str, size: Any, cubes: list[str], output: str, *, time_format: str = "jd",
                  target: str | None = None, fsspec_kwargs: dict[str, Any] | None = None) -> str:
    """Follow a moving target through cubes: cover its path with TPFs (``path_to_footprints``), cut them,
    and re-centre on the path (``center_on_path``); the result is written to ``output``."""
    import shutil
    import tempfile

    from ..tess.cube_cutout import cut_cube_targets
    from ..tess.moving_target import center_on_path, path_to_footprints

    path = read_path(table_file, time_format)
    with tempfile.TemporaryDirectory(prefix="skycut-path-") as scratch:
        tpfs: list[str] = []
        wcs = None
        for k, cube in enumerate(cubes):
            cube_w = cube_wcs(cube, fsspec_kwargs)
            boxes = path_to_footprints(path["position"], size, cube_w)
            if not boxes:
                log.info("%s: the path does not cross this cube", cube)
                continue
            wcs = wcs or cube_w
            for j, box in enumerate(boxes):
                ny, nx = box["size"]
                name = f"c{k}_b{j}"
                result = cut_cube_targets(cube, [(name, box["coordinates"])], [nx, ny],
                                          output_paths={name: Path(scratch) / f"{name}.fits"},
                                          fsspec_kwargs=fsspec_kwargs)
                if result.failed:
                    raise InvalidQueryError(f"{cube}: {result.failed[name]}")
                tpfs += [str(p) for paths in result.written.values() for p in paths]
        if not tpfs:
            raise InvalidQueryError(f"the path in {table_file} crosses none of the cubes {cubes}")
        made = center_on_path(path, size, tpfs, target=target, img_wcs=wcs, output_path=scratch, verbose=False)
        with atomic_output(output) as tmp:
            shutil.copyfile(made, tmp)
    log.info("moving target %s: %d TPF(s) -> %s", target or table_file, len(tpfs), output)
    return output
