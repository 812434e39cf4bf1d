"""Benchmark: FITS image cutouts, skycut vs astrocut 1.4.0, side by side.

Rows:

* in-process ``fits_cut`` of a 200 x 300 cutout from a 10000 x 10000 float32 image (median of repeats,
  both tools warmed up, each writing its output file) — what users run: skycut's astropy-free fast path
  (:mod:`skycut.image.fits_fast`) applies automatically to this plain TAN image; a second row forces skycut's
  astropy path (``fits_fast.ENABLED = False``) for reference;
* a fresh ``python -c "import ...; ....fits_cut(...)"`` process doing one cutout (median wall time), plus
  the floor set by ``import astropy.wcs`` alone (the astropy path's floor; the fast path imports no astropy);
* the workflow's image job: a batch of targets, one file each, by ``cut_fits_targets``
  (:mod:`skycut.image.fits_batch`) against the per-target astropy route it replaces, seconds per target;
* a 50 x 50 cutout over loopback S3 (moto) and HTTP (Range server): bytes sent and requests answered.

``--quick`` uses a 2000 x 2000 image (and a 1000 x 1000 remote one) and fewer repeats. Data go to
``bench-data/`` (gitignored); the remote test image is deleted afterwards.
"""

from __future__ import annotations

import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "bench-data"
CASE = "fits_cut"
log = logging.getLogger(__name__)


def _header(n: int):
    from astropy.io import fits
    from astropy.wcs import WCS

    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [150.0, 2.0]
    w.wcs.crpix = [n / 2 + 0.5, n / 2 + 0.5]
    w.wcs.cdelt = [-0.03 / 3600, 0.03 / 3600]
    h = fits.Header([("SIMPLE", True), ("BITPIX", -32), ("NAXIS", 2), ("NAXIS1", n), ("NAXIS2", n)])
    h.update(w.to_header())
    h["BUNIT"] = "ELECTRONS/S"
    return h, w


def make_image(n: int, *, sparse: bool = False) -> tuple[Path, object]:
    """An ``n x n`` float32 FITS image in bench-data (reused if present). ``sparse``: only a header and a
    hole (zeros) except a written patch at the centre, made instantly with ``truncate``."""
    DATA.mkdir(exist_ok=True)
    path = DATA / f"fits_cut_{n}{'_sparse' if sparse else ''}.fits"
    h, w = _header(n)
    head = h.tostring().encode()
    size = len(head) + -(-n * n * 4 // 2880) * 2880
    if path.exists() and path.stat().st_size == size:
        return path, w
    tmp = path.with_suffix(".part")
    with open(tmp, "wb") as f:
        f.write(head)
        f.truncate(size)
        rows = range(n // 2 - 200, n // 2 + 200) if sparse else range(0, n, 500)
        step = 1 if sparse else 500
        for y0 in rows:
            y1 = min(y0 + step, n)
            yy, xx = np.mgrid[y0:y1, 0:n]
            block = (np.sin(xx * 0.01) * np.cos(yy * 0.013) * 100 + 200).astype(">f4")
            f.seek(len(head) + y0 * n * 4)
            f.write(block.tobytes())
    os.replace(tmp, path)
    return path, w


def _time_in_process(fn, repeats: int) -> float:
    fn()  # warm up (imports, caches)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _time_fresh(code: str, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def local_rows(quick: bool) -> list[dict]:
    import astrocut

    import skycut
    from skycut.image import fits_fast

    n = 2000 if quick else 10000
    repeats = 3 if quick else 15
    path, w = make_image(n)
    ra, dec = (float(v) for v in w.pixel_to_world_values(n * 0.37, n * 0.61))
    coord = f"{ra} {dec}"
    rows = []
    with tempfile.TemporaryDirectory() as out:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fast_before = fits_fast.STATS["fast"]
            sk = _time_in_process(
                lambda: skycut.fits_cut(str(path), coord, [200, 300], output_dir=out), repeats
            )
            assert fits_fast.STATS["fast"] == fast_before + repeats + 1, "the fast path did not apply"
            ac = _time_in_process(
                lambda: astrocut.fits_cut(str(path), coord, [200, 300], output_dir=out), repeats
            )
            fits_fast.ENABLED = False
            try:
                slow = _time_in_process(
                    lambda: skycut.fits_cut(str(path), coord, [200, 300], output_dir=out), repeats
                )
            finally:
                fits_fast.ENABLED = True
        rows.append(
            {
                "case": CASE,
                "measure": f"in-process 200x300 from {n}x{n} float32 (median of {repeats})",
                "unit": "s",
                "skycut": sk,
                "astrocut": ac,
            }
        )
        rows.append(
            {
                "case": CASE,
                "measure": "in-process, same cut, skycut's astropy path forced (reference)",
                "unit": "s",
                "skycut": slow,
                "astrocut": ac,
            }
        )
        fresh = 1 if quick else 5
        call = f"fits_cut({str(path)!r}, {coord!r}, [200, 300], output_dir={out!r})"
        check = "; from skycut.image import fits_fast; assert fits_fast.STATS['fast'] == 1"
        sk = _time_fresh(f"import skycut; skycut.{call}{check}", fresh)
        ac = _time_fresh(f"import astrocut; astrocut.{call}", fresh)
        floor = _time_fresh("import astropy.wcs, astropy.io.fits", fresh)
    rows.append(
        {
            "case": CASE,
            "measure": f"fresh process: import + one cutout (median of {fresh})",
            "unit": "s",
            "skycut": sk,
            "astrocut": ac,
        }
    )
    rows.append(
        {
            "case": CASE,
            "measure": "fresh process: import astropy.wcs+fits only (floor)",
            "unit": "s",
            "skycut": floor,
        }
    )
    return rows


def remote_rows(quick: bool) -> list[dict]:
    sys.path.insert(0, str(ROOT / "tests"))
    import astrocut
    from astropy.utils.data import clear_download_cache, get_cached_urls
    from servers import RangeHTTPServer, S3Server  # loopback servers shared with the tests

    import skycut

    n = 1000 if quick else 7100  # 7100^2 * 4 B = 201.6 MB
    path, w = make_image(n, sparse=True)
    ra, dec = (float(v) for v in w.pixel_to_world_values(n / 2 + 3.3, n / 2 - 7.8))
    coord = f"{ra} {dec}"
    mb = path.stat().st_size / 1e6
    rows: list[dict] = []

    def measure(server, target, sk_kwargs, ac_kwargs, label):
        res = {}
        for name, mod, kwargs in (("skycut", skycut, sk_kwargs), ("astrocut", astrocut, ac_kwargs)):
            server.log.reset()
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    cut = mod.FITSCutout([target], coord, 50, **kwargs)
                shape = next(iter(cut.cutouts_by_file.values()))[0].data.shape
                assert shape == (50, 50), shape
                res[name] = (server.log.bytes_sent, server.log.n_requests)
            except Exception as exc:  # report, do not abort the whole benchmark
                log.warning("%s over %s failed: %s", name, label, exc)
                res[name] = (None, None)
        ac_bytes = res["astrocut"][0]
        note = ""
        if ac_bytes is None:
            note = " (astrocut failed on this server)"
        elif ac_bytes >= 0.5 * path.stat().st_size:
            note = f" (astrocut fetched {ac_bytes / path.stat().st_size:.0%} of the file)"
        rows.append(
            {
                "case": CASE,
                "measure": f"50x50 over loopback {label} of a {mb:.0f} MB image: bytes sent{note}",
                "unit": "B",
                "skycut": res["skycut"][0],
                "astrocut": ac_bytes,
            }
        )
        rows.append(
            {
                "case": CASE,
                "measure": f"50x50 over loopback {label}: requests",
                "unit": "n",
                "skycut": res["skycut"][1],
                "astrocut": res["astrocut"][1],
            }
        )

    with RangeHTTPServer(path.parent) as http:
        url = http.url(path.name)
        # astrocut hands https URLs to astropy's download_file: the whole file is downloaded (and cached)
        measure(http, url, {}, {}, "HTTP")
        for cached in [u for u in get_cached_urls() if u.startswith(http.base_url)]:
            clear_download_cache(cached)
    with S3Server() as s3:
        uri = s3.upload(path)
        measure(
            s3,
            uri,
            {"fsspec_kwargs": s3.fsspec_kwargs},
            {"fsspec_kwargs": dict(s3.fsspec_kwargs, anon=False)},
            "S3",
        )
        s3.delete(path.name)
    if not quick:
        path.unlink()
    return rows


def batch_rows(quick: bool) -> list[dict]:
    """The workflow's image job: many targets, one file each. ``cut_fits_targets`` (fast route) against the
    per-target astropy route it replaces (``FITSCutout`` + ``write_hdulist``), and astrocut's ``fits_cut`` per
    target; seconds per target."""
    import astrocut

    from skycut.core.atomic import write_hdulist
    from skycut.image import fits_batch
    from skycut.image.fits_cutout import FITSCutout

    n = 2000 if quick else 10000
    count = 20 if quick else 200
    path, w = make_image(n)
    rng = np.random.default_rng(0)
    xy = rng.uniform(0.2 * n, 0.8 * n, size=(count, 2))
    targets = [
        (f"t{i}", f"{ra} {dec}", [200, 300])
        for i, (ra, dec) in enumerate(zip(*w.pixel_to_world_values(xy[:, 0], xy[:, 1]), strict=True))
    ]
    with tempfile.TemporaryDirectory() as out, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        before = fits_batch.STATS["fast"]
        t0 = time.perf_counter()
        result = fits_batch.cut_fits_targets(
            [str(path)], targets, [Path(out) / f"{t[0]}.fits" for t in targets]
        )
        batch = (time.perf_counter() - t0) / count
        assert len(result.written) == count and fits_batch.STATS["fast"] > before, (
            "the fast route did not apply"
        )
        t0 = time.perf_counter()
        for name, coord, size in targets:
            cut = FITSCutout([str(path)], coord, size, single_outfile=True)
            write_hdulist(cut.fits_cutouts[0], Path(out) / f"{name}.ref.fits")
        slow = (time.perf_counter() - t0) / count
        t0 = time.perf_counter()
        for _name, coord, size in targets:
            astrocut.fits_cut(str(path), coord, size, output_dir=out)
        ac = (time.perf_counter() - t0) / count
    return [
        {
            "case": CASE,
            "measure": f"batch of {count} targets, 200x300 each, one file per target: per target",
            "unit": "s",
            "skycut": batch,
            "astrocut": ac,
        },
        {
            "case": CASE,
            "measure": "same batch, per-target astropy route (FITSCutout + write_hdulist, reference)",
            "unit": "s",
            "skycut": slow,
            "astrocut": ac,
        },
    ]


def run(quick: bool) -> list[dict]:
    return local_rows(quick) + batch_rows(quick) + remote_rows(quick)
