"""Cube cutouts into target pixel files: skycut vs astrocut 1.4, side by side in one run.

Measures (full run, ``python -m benchmarks cube_cutout``):

* **batch** — 500 targets of 30 x 30 on the 40-FFI full-size cube (``bench-data/cube40/tess-s0011-1-1-cube.fits``,
  left by the cube benchmark; built here from simulated FFIs if absent): skycut's ``cut_cube_targets`` (one cube
  open, every TPF written) vs astrocut's ``TessCubeCutout(...).write_as_tpf()`` per target on the first 50 targets.
  Figures are milliseconds per target including the written file; ``disk`` is the time to write the same bytes
  with plain ``os.write`` + rename (the I/O floor).
* **deep cube** — 100 targets of 15 x 15 on a 1,500-cadence cube of a 100 x 120 window (the remote-cube
  benchmark's, ``bench-data/remote-cube-1500``), TPFs written: skycut's ``cut_cube_targets``, the I/O floor in the
  same run (``os.pread`` of every target's pixel rows + ``os.write`` and rename of every TPF's bytes) and astrocut
  (first 10 targets, scaled), after one warm-up run, repeated 9 times (skycut and the floor alternating in order,
  each one's files deleted at once, and each timed run started with 1.2x its output's bytes written and deleted
  and the cube read whole just before, see :mod:`benchmarks.page_cache`: the benchmark VM reclaims idle page cache
  within seconds); medians, and skycut/floor of every run. Nine runs because the VM's speed drifts between runs
  (the floor alone measured 2.6 to 5.5 ms per target within one session): the median ratio of five moved by 0.2.
* **fresh process** — one 30 x 30 cutout (``cube_cut``) in a new Python process, wall time from process start,
  median of 3 after one warm-up run, bytecode cached for both tools (``PYTHONPYCACHEPREFIX`` in bench-data).
* **S3** — one 30 x 30 cutout over moto's S3 server on loopback, skycut with 8 threads and with 1 thread, astrocut
  with ``threads=8`` (reaching moto through ``AWS_ENDPOINT_URL_S3``). moto answers every ranged GET by reading
  the whole object, so this uses a 40-FFI cube of a 256 x 256 window (``bench-data/cutout-s3``), which keeps the
  server's cost out of the figures; ``disk`` is the minimal byte count (pixels + headers + table).

``--quick``: a 6-FFI 200 x 220 cube, 20 targets (astrocut on 5), the same measures.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from benchmarks.page_cache import prime_page_cache, warm

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench-data"
CUBE40 = DATA / "cube40" / "tess-s0011-1-1-cube.fits"
CASE = "cube_cutout"
SIZE = 30


def _simulated_cube(directory: Path, n_ffi: int, shape: tuple[int, int] | None) -> Path:
    """A skycut cube of simulated FFIs in ``directory`` (made once, reused)."""
    cube = directory / "tess-s0011-1-1-cube.fits"
    if cube.exists():
        return cube
    from skycut.simulate import make_tess_ffis
    from skycut.tess.cube_factory import CubeFactory

    sim = make_tess_ffis(directory / "ffi", n_ffi=n_ffi, shape=shape, seed=11)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        CubeFactory().make_cube([str(f) for f in sim.files], str(cube), verbose=False)
    shutil.rmtree(directory / "ffi", ignore_errors=True)
    return cube


def _main_cube(quick: bool) -> Path:
    if quick:
        return _simulated_cube(DATA / "cutout-quick", 6, (200, 220))
    if CUBE40.exists():
        return CUBE40
    ffis = sorted((DATA / "ffi").glob("*-s_ffic.fits"))[:40]
    if len(ffis) == 40:
        from skycut.tess.cube_factory import CubeFactory

        CUBE40.parent.mkdir(parents=True, exist_ok=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            CubeFactory().make_cube([str(f) for f in ffis], str(CUBE40), verbose=False)
        return CUBE40
    return _simulated_cube(DATA / "cutout-cube40", 40, None)


def _targets(cube: Path, n: int, seed: int = 5) -> list[tuple[str, tuple[float, float]]]:
    """``n`` random (name, (ra, dec)) targets whose 30 x 30 boxes lie on the cube's image."""
    from skycut.tess.cube_reader import CubeReader
    from skycut.tess.cube_wcs import cube_wcs_from_row, cube_wcs_row

    with CubeReader(cube) as reader:
        wcs = cube_wcs_from_row(reader.table, cube_wcs_row(reader.table), reader.shape)
        nrows, ncols = reader.nrows, reader.ncols
    rng = np.random.default_rng(seed)
    x = rng.uniform(SIZE, ncols - SIZE, n)
    y = rng.uniform(SIZE, nrows - SIZE, n)
    ra, dec = wcs.all_pix2world(x, y, 0)
    return [(f"t{i:04d}", (float(ra[i]), float(dec[i]))) for i in range(n)]


# ------------------------------------------------------------------------------------------ batch


def _batch(cube: Path, n_sky: int, n_ac: int) -> list[dict]:
    from skycut.tess.cube_batch import cut_cube_targets

    targets = _targets(cube, n_sky)
    rows = []
    with tempfile.TemporaryDirectory(dir=DATA) as tmp:
        tmp = Path(tmp)
        # astrocut first (it then also warms the page cache for the first targets skycut cuts)
        ac_ms = None
        try:
            import astrocut

            (tmp / "ac").mkdir()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                t0 = time.perf_counter()
                for _, (ra, dec) in targets[:n_ac]:
                    astrocut.TessCubeCutout(str(cube), f"{ra} {dec}", SIZE).write_as_tpf(tmp / "ac")
                ac_ms = (time.perf_counter() - t0) / n_ac * 1e3
        except ImportError:
            log.warning("astrocut not installed: no astrocut figures")
        t0 = time.perf_counter()
        result = cut_cube_targets(cube, targets, SIZE, output_dir=tmp / "sk")
        written = {name: path for name, (path,) in result.written.items()}
        sk_ms = (time.perf_counter() - t0) / len(targets) * 1e3
        assert len(written) == len(targets)
        # I/O floor: the same bytes written with os.write + rename, one file per target
        blob = next(iter(written.values())).read_bytes()
        (tmp / "disk").mkdir()
        t0 = time.perf_counter()
        for i in range(len(targets)):
            part = tmp / "disk" / f".{i}.part"
            fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.write(fd, blob)
            os.close(fd)
            os.replace(part, tmp / "disk" / f"{i}.fits")
        disk_ms = (time.perf_counter() - t0) / len(targets) * 1e3
        log.info(
            "batch: skycut %.2f ms/target (%d), astrocut %s ms/target (%d), disk %.2f ms",
            sk_ms,
            n_sky,
            f"{ac_ms:.1f}" if ac_ms else "-",
            n_ac,
            disk_ms,
        )
        rows.append(
            {
                "case": CASE,
                "measure": f"{n_sky} targets {SIZE}x{SIZE}, per target incl. write (astrocut on {n_ac})",
                "unit": "ms",
                "skycut": sk_ms,
                "astrocut": ac_ms,
                "disk": disk_ms,
            }
        )
    return rows


# ------------------------------------------------------------------------------------------ deep cube

DEEP_SIZE, DEEP_TARGETS, DEEP_ASTROCUT, DEEP_REPEATS = 15, 100, 10, 9


def _deep_floor(cube: Path, lims: list, tpfs: list[bytes], out: Path) -> float:
    """Seconds to read every target's pixel rows (``os.pread`` of each row's byte run) and write every TPF's
    bytes (``os.write`` + rename, one file each): the I/O floor of a deep-cube batch."""
    from skycut.tess.cube_reader import CubeReader

    with CubeReader(cube) as reader:
        runs = [reader.runs(lim) for lim in lims]
    out.mkdir()
    t0 = time.perf_counter()
    fd = os.open(cube, os.O_RDONLY)
    try:
        for i, (target_runs, blob) in enumerate(zip(runs, tpfs, strict=True)):
            for a, b in target_runs:
                os.pread(fd, b - a, a)
            part = out / f".{i}.part"
            wfd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.write(wfd, blob)
            os.close(wfd)
            os.replace(part, out / f"{i}.fits")
    finally:
        os.close(fd)
    return time.perf_counter() - t0


def _deep(quick: bool) -> list[dict]:
    """The deep cube: 1,500 cadences (150 with ``--quick``) of a 100 x 120 window, ``DEEP_TARGETS`` targets of
    15 x 15, TPFs written; skycut, the I/O floor and astrocut (on ``DEEP_ASTROCUT`` targets) side by side, repeated
    ``DEEP_REPEATS`` times; medians and the per-run ratios skycut/floor are reported."""
    from benchmarks.case_remote_cube import deep_cube
    from skycut.tess.cube_batch import cut_cube_targets
    from skycut.tess.cube_session import _CubeSession

    cube = deep_cube(150 if quick else 1500)
    n_sky, n_ac = (20, 3) if quick else (DEEP_TARGETS, DEEP_ASTROCUT)
    session = _CubeSession(cube, fill_value=float("nan"), rounding="round", threads=1, fsspec_kwargs=None)
    try:
        nrows, ncols = session.reader.nrows, session.reader.ncols
        ntime = session.reader.ntime
        rng = np.random.default_rng(17)
        x = rng.uniform(DEEP_SIZE, ncols - DEEP_SIZE, n_sky)
        y = rng.uniform(DEEP_SIZE, nrows - DEEP_SIZE, n_sky)
        ra, dec = session.wcs.all_pix2world(x, y, 0)
        targets = [(f"t{i:04d}", (float(ra[i]), float(dec[i]))) for i in range(n_sky)]
        lims = session.locate(np.asarray(ra), np.asarray(dec), (DEEP_SIZE, DEEP_SIZE))
        clipped = [[[int(lim[0, 0]), int(lim[0, 1])], [int(lim[1, 0]), int(lim[1, 1])]] for lim in lims]
    finally:
        session.close()
    warm(cube)  # the page cache holds the cube for every tool alike
    with tempfile.TemporaryDirectory(dir=DATA) as tmp:  # a warm-up run, which also gives the TPF bytes
        result = cut_cube_targets(cube, targets, DEEP_SIZE, output_dir=tmp)
        assert len(result.written) == n_sky, result.failed
        tpfs = [result.written[name][0].read_bytes() for name, _ in targets]
    tpf_mb = sum(len(b) for b in tpfs) / 1e6
    sk, floor, ac, ratios = [], [], [], []
    for rep in range(DEEP_REPEATS):
        # skycut and the floor alternate in order, and each one's files are deleted at once (before writeback
        # throttles the next writer), so neither pays for the other's dirty pages
        for which in ("skycut", "floor") if rep % 2 == 0 else ("floor", "skycut"):
            with tempfile.TemporaryDirectory(dir=DATA) as tmp:
                tmp = Path(tmp)
                prime_page_cache(tmp, int(1.2 * tpf_mb * 1e6))
                warm(cube)  # the VM reclaims idle page cache within seconds: both start with the cube cached
                if which == "skycut":
                    t0 = time.perf_counter()
                    result = cut_cube_targets(cube, targets, DEEP_SIZE, output_dir=tmp / "sk")
                    sk.append(time.perf_counter() - t0)
                    assert len(result.written) == n_sky, result.failed
                else:
                    floor.append(_deep_floor(cube, clipped, tpfs, tmp / "floor"))
        ratios.append(sk[-1] / floor[-1])
        with tempfile.TemporaryDirectory(dir=DATA) as tmp:
            try:
                import astrocut

                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    t0 = time.perf_counter()
                    for _, (r, d) in targets[:n_ac]:
                        astrocut.TessCubeCutout(str(cube), f"{r} {d}", DEEP_SIZE).write_as_tpf(tmp)
                    ac.append((time.perf_counter() - t0) / n_ac * n_sky)
            except ImportError:
                log.warning("astrocut not installed: no astrocut figures")
        log.info(
            "deep run %d: skycut %.1f ms/target, floor %.1f ms/target, skycut/floor %.3f, astrocut %s",
            rep,
            sk[-1] / n_sky * 1e3,
            floor[-1] / n_sky * 1e3,
            ratios[-1],
            f"{ac[-1] / n_sky * 1e3:.1f} ms/target" if ac else "-",
        )
    med = statistics.median
    return [
        {
            "case": CASE,
            "measure": f"deep cube, {ntime} cadences: {n_sky} targets {DEEP_SIZE}x{DEEP_SIZE}, per "
            f"target incl. write ({tpf_mb:.0f} MB of TPFs; astrocut on {n_ac}; disk = read "
            f"pixels + write TPF bytes; median of {DEEP_REPEATS}; skycut/disk per run "
            f"{', '.join(f'{r:.3f}' for r in ratios)})",
            "unit": "ms",
            "skycut": med(sk) / n_sky * 1e3,
            "astrocut": med(ac) / n_sky * 1e3 if ac else None,
            "disk": med(floor) / n_sky * 1e3,
            "ratios": ratios,
        }
    ]


# ------------------------------------------------------------------------------------------ fresh process

_ONE = {
    "skycut": "import sys, skycut; skycut.cube_cut(sys.argv[1], sys.argv[2], {size}, output_path=sys.argv[3])",
    "astrocut": (
        "import sys, warnings; warnings.simplefilter('ignore'); import astrocut; "
        "astrocut.cube_cut(sys.argv[1], sys.argv[2], {size}, output_path=sys.argv[3])"
    ),
}


def _fresh(cube: Path, repeats: int = 3) -> list[dict]:
    ((_, (ra, dec)),) = _targets(cube, 1, seed=9)
    env = dict(os.environ, PYTHONPYCACHEPREFIX=str(DATA / "pycache"))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    figures = {}
    with tempfile.TemporaryDirectory(dir=DATA) as tmp:
        for tool, code in _ONE.items():
            times = []
            for i in range(repeats + 1):
                t0 = time.perf_counter()
                res = subprocess.run(
                    [sys.executable, "-c", code.format(size=SIZE), str(cube), f"{ra} {dec}", tmp],
                    env=env,
                    capture_output=True,
                    text=True,
                )
                if res.returncode:
                    log.warning("%s one-cutout process failed: %s", tool, res.stderr[-2000:])
                    break
                if i:  # the first run warms the bytecode and page caches
                    times.append(time.perf_counter() - t0)
            figures[tool] = statistics.median(times) if times else None
    log.info("fresh process: %s", figures)
    return [
        {
            "case": CASE,
            "measure": f"one {SIZE}x{SIZE} cutout, fresh process (wall)",
            "unit": "s",
            "skycut": figures["skycut"],
            "astrocut": figures["astrocut"],
        }
    ]


# ------------------------------------------------------------------------------------------ S3

_S3_CHILD = r"""
import json, os, sys, time, warnings
warnings.simplefilter("ignore")
args = json.loads(sys.argv[1])
import s3fs  # noqa: F401  (imports are not timed, for either tool)
if args["tool"] == "skycut":
    from skycut.tess.cube_cutout import TessCubeCutout
else:
    os.environ["AWS_ENDPOINT_URL_S3"] = args["fsspec_kwargs"]["endpoint_url"]
    os.environ["AWS_ENDPOINT_URL"] = args["fsspec_kwargs"]["endpoint_url"]
    import astrocut
t0 = time.perf_counter()
if args["tool"] == "skycut":
    TessCubeCutout(args["uri"], args["coord"], args["size"], threads=args["threads"],
                   fsspec_kwargs=args["fsspec_kwargs"]).tpf_cutouts
else:
    astrocut.TessCubeCutout(args["uri"], args["coord"], args["size"], threads=args["threads"]).tpf_cutouts
print(json.dumps({"seconds": time.perf_counter() - t0}))
"""


def _s3(quick: bool) -> list[dict]:
    sys.path.insert(0, str(ROOT / "tests"))
    try:
        from servers import S3Server
    except ImportError as exc:
        log.warning("no loopback S3 server (%s): S3 figures skipped", exc)
        return []
    from skycut.core.fits_bytes import padded
    from skycut.tess.cube_reader import CubeReader

    cube = _main_cube(True) if quick else _simulated_cube(DATA / "cutout-s3", 40, (256, 256))
    ((_, (ra, dec)),) = _targets(cube, 1, seed=13)
    with CubeReader(cube) as r:
        overhead = (
            r.primary.nbytes
            + r.image_header.nbytes
            + r.table_header.nbytes
            + padded(r.table_header.data_nbytes())
        )
        minimal = SIZE * SIZE * r.ntime * 2 * r.dtype.itemsize + overhead
    rows = []
    with S3Server() as s3:
        uri = s3.upload(cube)
        # astrocut reads s3:// anonymously (unsigned requests): make the object public, as MAST's bucket is
        s3._client().put_object_acl(Bucket=s3.bucket, Key=cube.name, ACL="public-read")
        s3.log.reset()
        for tool, threads in (("skycut", 8), ("skycut", 1), ("astrocut", 8)):
            s3.log.reset()
            args = {
                "tool": tool,
                "uri": uri,
                "coord": f"{ra} {dec}",
                "size": SIZE,
                "threads": threads,
                "fsspec_kwargs": s3.fsspec_kwargs,
            }
            env = dict(
                os.environ,
                AWS_ACCESS_KEY_ID=s3.key,
                AWS_SECRET_ACCESS_KEY=s3.secret,
                AWS_DEFAULT_REGION="us-east-1",
            )
            res = subprocess.run(
                [sys.executable, "-c", _S3_CHILD, json.dumps(args)],
                capture_output=True,
                text=True,
                env=env,
                timeout=600,
            )
            if res.returncode:
                log.warning("%s over S3 failed: %s", tool, res.stderr[-1500:])
                continue
            seconds = json.loads(res.stdout.strip().splitlines()[-1])["seconds"]
            time.sleep(0.2)  # let the server log the last responses
            rows.append(
                {
                    "tool": tool,
                    "threads": threads,
                    "seconds": seconds,
                    "bytes": s3.log.bytes_sent,
                    "requests": s3.log.n_requests,
                }
            )
            log.info(
                "S3 %s threads=%d: %.2f s, %d bytes, %d requests",
                tool,
                threads,
                seconds,
                s3.log.bytes_sent,
                s3.log.n_requests,
            )
    by = {(r["tool"], r["threads"]): r for r in rows}
    sk8, sk1, ac8 = by.get(("skycut", 8)), by.get(("skycut", 1)), by.get(("astrocut", 8))
    out = []
    for label, key, unit, disk in (
        ("time", "seconds", "s", None),
        ("bytes read", "bytes", "B", minimal),
        ("requests", "requests", "", None),
    ):
        out.append(
            {
                "case": CASE,
                "measure": f"{SIZE}x{SIZE} over loopback S3, threads=8: {label}",
                "unit": unit,
                "skycut": sk8[key] if sk8 else None,
                "astrocut": ac8[key] if ac8 else None,
                "disk": disk,
            }
        )
    if sk1:
        out.append(
            {
                "case": CASE,
                "measure": f"{SIZE}x{SIZE} over loopback S3, threads=1: time",
                "unit": "s",
                "skycut": sk1["seconds"],
            }
        )
    return out


def run(quick: bool) -> list[dict]:
    cube = _main_cube(quick)
    log.info("cube %s (%.0f MB)", cube, cube.stat().st_size / 1e6)
    rows = _batch(cube, 20 if quick else 500, 5 if quick else 50)
    rows += _deep(quick)
    rows += _fresh(cube)
    rows += _s3(quick)
    return rows


if __name__ == "__main__":  # pragma: no cover
    logging.basicConfig(level=logging.INFO)
    print(json.dumps(run("--quick" in sys.argv), indent=1))
