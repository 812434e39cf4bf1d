"""Cube cutouts from a remote (s3://) cube with real round trips: skycut vs astrocut 1.4 vs the bound.

The cube is served by :class:`benchmarks.objstore.ObjectStore` on loopback, which waits ``latency`` before each
response's first byte and sends at most ``BANDWIDTH`` bytes/s per connection (moto answers at once and reads the
whole object per request, which hides what a remote cutout pays for).

Data: a deep simulated cube, ``N_CADENCES`` = 1,500 SPOC-like FFIs of a 100 x 120 window (sector 11, camera 1,
CCD 1; ``skycut.simulate.make_tess_ffis`` + ``skycut.CubeFactory``), built once into
``bench-data/remote-cube-1500/``. In the cube a target's cutout row (one image row, ``SIZE`` columns, every
cadence, flux and error) is one contiguous byte range of ``SIZE * ncadences * 8`` bytes (180 KB here).

For each latency in ``LATENCIES`` (0, 10, 30, 100 ms) at ``BANDWIDTH`` = 100 MB/s per connection:

* **skycut** — one ``skycut.cut_cube_targets`` call for ``N_TARGETS`` = 40 targets of 15 x 15 (anonymous s3 with
  ``endpoint_url`` in ``fsspec_kwargs``, ``threads="auto"``), every TPF written; ms per target = wall time / 40.
* **astrocut** — ``astrocut.cube_cut(uri, coord, 15, threads="auto")`` per target (astrocut 1.4 opens s3://
  anonymously itself and takes no fsspec options: the endpoint reaches botocore through
  ``AWS_ENDPOINT_URL_S3``), on the first ``N_ASTROCUT`` targets; ms per target = wall time / targets cut.
* **bound** (the ``disk`` column, so the runner's ``skycut/disk`` is skycut/bound) — the time if the header and
  the table came in two round trips and then every row request of the batch were in flight at once, each on its
  own connection::

      bound = 2 * latency + overhead_bytes / bandwidth              # header, then table (one connection)
            + latency + pixel_bytes / (bandwidth * row_requests)    # every row of every target at once

  with ``row_requests = N_TARGETS * 15`` and ``pixel_bytes = N_TARGETS * 15 * 15 * ncadences * 2 * 4``; per
  target = bound / N_TARGETS. No CPU and no file writing are counted in it.

* **server floor** — what this Python server and machine deliver for exactly the batch's row ranges, with a C
  client: ``curl`` fetches the header, then the table, then every row range of the batch (unmerged) with
  ``FLOOR_PARALLEL`` = 100 transfers at once (curl's three process starts included). The server (one asyncio
  loop) costs roughly 0.7 ms of CPU per 180 KB response, and curl about as much again, so on 2 shared cores this
  reference lies well above the bound; skycut, which merges neighbouring rows into fewer requests, can come in
  under it. ``skycut/disk`` in that row is skycut against it. It includes no TPF writing; skycut's figure does.
* **bound + TPF writes** — the bound plus the time to write the batch's TPF bytes again, plainly, into a new
  directory (:func:`write_seconds`, measured in the same run after priming the page cache like the tools).

Each tool runs in a child process (the server's event loop stays out of the client's GIL): imports, then a one-target
warm-up cut of the same cube under another key (lazy imports, the s3 client and its connection pool; no per-cube
state carries over), then the timed batch; the store's counters cover the timed batch only. Before each timed
batch, 1.2x the bytes it will write are written and deleted (``benchmarks.page_cache.prime_page_cache``: on the
benchmark VM, memory not used lately costs ~1.4 ms/MB to touch again), so both tools write into warm memory. The warm-up call's
time is reported too (a cold client, one target).
Rows per latency: ms per target; bytes fetched per target (``disk`` = the batch minimum per target: the cutout's
pixel bytes plus the header and table bytes shared over the batch; astrocut reopens the cube for every target);
requests per target; most requests in flight at once (and connections used).

``--quick``: 150 cadences, 8 targets (astrocut on 3), latencies 0 and 30 ms.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from benchmarks.objstore import run_client
from benchmarks.page_cache import prime_page_cache, warm

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench-data"
CASE = "remote_cube"
CUBE_NAME = "tess-s0011-1-1-cube.fits"
WINDOW = (100, 120)  # rows, cols of the simulated FFIs
SIZE = 15
BANDWIDTH = 100e6  # bytes/s per connection
N_CADENCES, N_TARGETS, N_ASTROCUT, LATENCIES = 1500, 40, 20, (0.0, 0.010, 0.030, 0.100)
QUICK = {"n_cadences": 150, "n_targets": 8, "n_astrocut": 3, "latencies": (0.0, 0.030)}
FLOOR_PARALLEL = 100  # curl transfers at once for the server floor
CHILD_TIMEOUT = 900  # seconds, per tool and latency


def deep_cube(n_cadences: int) -> Path:
    """The simulated cube of ``n_cadences`` FFIs of a :data:`WINDOW` window (built once, then reused)."""
    directory = DATA / f"remote-cube-{n_cadences}"
    cube = directory / CUBE_NAME
    if cube.exists():
        return cube
    import shutil

    import skycut
    from skycut.simulate import make_tess_ffis

    log.info("building a %d-cadence %s cube in %s (once)", n_cadences, WINDOW, directory)
    sim = make_tess_ffis(directory / "ffi", n_ffi=n_cadences, shape=WINDOW, seed=11)
    partial = directory / f"building-{CUBE_NAME}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        skycut.CubeFactory().make_cube([str(f) for f in sim.files], str(partial), verbose=False)
    os.replace(partial, cube)
    shutil.rmtree(directory / "ffi", ignore_errors=True)
    return cube


def cube_layout(cube: Path) -> dict:
    """Byte layout of a cube: ``overhead`` (primary + image header + table header and data, i.e. what a reader
    needs besides pixels), image ``shape`` (rows, cols, cadences, 2), ``itemsize``, a WCS for placing targets."""
    from astropy.io import fits
    from astropy.wcs import WCS

    with fits.open(cube, memmap=True, lazy_load_hdus=True) as hdul:
        img, tab = hdul.fileinfo(1), hdul.fileinfo(2)
        shape = tuple(hdul[1].header[f"NAXIS{i}"] for i in (4, 3, 2, 1))
        itemsize = abs(hdul[1].header["BITPIX"]) // 8
        overhead = img["datLoc"] + (tab["datLoc"] + tab["datSpan"] - tab["hdrLoc"])
        table = hdul[2].data
        mid = table[len(table) // 2]
        header = fits.Header()
        for name in table.columns.names:  # the FFI WCS keywords are columns of the table
            value = mid[name]
            if isinstance(value, (str, bytes, np.str_, np.bytes_)):
                value = value.decode() if isinstance(value, bytes) else str(value)
            elif isinstance(value, (np.floating, np.integer)):
                value = value.item()
            else:
                continue
            if len(name) <= 8:
                header[name] = value
        header["NAXIS"], header["NAXIS1"], header["NAXIS2"] = 2, shape[1], shape[0]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            wcs = WCS(header, relax=True)
    return {
        "overhead": overhead,
        "shape": shape,
        "itemsize": itemsize,
        "wcs": wcs,
        "header_span": (0, img["datLoc"]),
        "table_span": (tab["hdrLoc"], tab["datLoc"] + tab["datSpan"]),
        "data_offset": img["datLoc"],
    }


def targets_on(layout: dict, n: int, seed: int = 7) -> list[tuple[str, tuple[float, float]]]:
    """``n`` (name, (ra, dec)) targets whose boxes lie wholly on the image, so each cutout is ``SIZE`` full rows."""
    rows, cols = layout["shape"][:2]
    rng = np.random.default_rng(seed)
    margin = SIZE / 2 + 2
    x = rng.uniform(margin, cols - 1 - margin, n)
    y = rng.uniform(margin, rows - 1 - margin, n)
    ra, dec = layout["wcs"].all_pix2world(x, y, 0)
    layout["target_xy"] = list(zip(x.tolist(), y.tolist(), strict=True))
    return [(f"t{i:03d}", (float(ra[i]), float(dec[i]))) for i in range(n)]


def row_ranges(layout: dict, xy: list[tuple[float, float]]) -> list[tuple[int, int]]:
    """Byte ranges ``(start, stop)`` of every cutout row of targets at pixel ``xy`` (astrocut's "round" rule)."""
    rows, cols, ntime, two = layout["shape"]
    pixel = ntime * two * layout["itemsize"]  # one spatial pixel: every cadence, flux and error
    out = []
    for x, y in xy:
        x0, y0 = int(np.round(x - SIZE / 2)), int(np.round(y - SIZE / 2))
        for r in range(y0, y0 + SIZE):
            start = layout["data_offset"] + (r * cols + x0) * pixel
            out.append((start, start + SIZE * pixel))
    return out


def curl_floor(
    store, key: str, layout: dict, ranges: list[tuple[int, int]], parallel: int, workdir: Path
) -> float | None:
    """What this server and machine deliver for the batch, with a C client: curl fetches the header, then the
    table, then every row range with up to ``parallel`` transfers at once; the summed wall time (seconds, curl's
    process starts included), or None without curl."""
    import shutil

    curl = shutil.which("curl")
    if curl is None:
        log.warning("no curl: no server floor")
        return None
    url = store.url(key)
    total = 0.0
    for i, spans in enumerate(([layout["header_span"]], [layout["table_span"]], ranges)):
        cfg = workdir / f"curl-{i}.cfg"
        cfg.write_text(
            "".join(f'url = "{url}"\nrange = {a}-{b - 1}\noutput = "/dev/null"\n' for a, b in spans)
        )
        t0 = time.perf_counter()
        res = subprocess.run(
            [curl, "-s", "-S", "--fail", "--parallel", "--parallel-max", str(parallel), "-K", str(cfg)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        total += time.perf_counter() - t0
        if res.returncode:
            log.warning("curl floor failed: %s", res.stderr[-500:])
            return None
    return total


def write_seconds(tpfs: list[Path], workdir: Path) -> float | None:
    """Seconds to write the bytes of ``tpfs`` again, plainly (``os.write``, no checksum, no rename), as new
    files in a new directory under ``workdir``: the cost of writing the batch's TPFs on this machine, measured
    in the same run (None without TPFs)."""
    if not tpfs:
        return None
    blobs = [p.read_bytes() for p in tpfs]
    out = Path(tempfile.mkdtemp(dir=workdir, prefix="write-floor-"))
    prime_page_cache(out, int(1.2 * sum(len(b) for b in blobs)))  # as before the tools' timed batches
    t0 = time.perf_counter()
    for i, blob in enumerate(blobs):
        fd = os.open(out / f"tpf-{i}.fits", os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        try:
            os.write(fd, blob)
        finally:
            os.close(fd)
    return time.perf_counter() - t0


def bound_seconds(
    latency: float, overhead: int, pixel_bytes: int, row_requests: int, bandwidth: float = BANDWIDTH
) -> float:
    """The batch's bound: header and table in two round trips, then every row request at once (module notes)."""
    return 3 * latency + overhead / bandwidth + pixel_bytes / (bandwidth * row_requests)


# ------------------------------------------------------------------------------------------ child processes

_CHILD = r"""
import json, os, sys, time, warnings
warnings.simplefilter("ignore")
args = json.loads(sys.argv[1])
import s3fs  # noqa: F401  (imports are not timed, for either tool)
if args["tool"] == "astrocut":
    os.environ["AWS_ENDPOINT_URL_S3"] = args["endpoint_url"]
    os.environ["AWS_ENDPOINT_URL"] = args["endpoint_url"]
    import astrocut
else:
    import skycut


def cut(uri, targets, out):
    coords = [f"{ra} {dec}" for _, (ra, dec) in targets]
    os.makedirs(out, exist_ok=True)
    if args["tool"] == "astrocut":
        return len([astrocut.cube_cut(uri, c, args["size"], output_path=out, threads="auto") for c in coords]), 0
    res = skycut.cut_cube_targets(uri, [(n, c) for (n, _), c in zip(targets, coords)], args["size"],
                                  output_dir=out, threads="auto",
                                  fsspec_kwargs={"anon": True, "endpoint_url": args["endpoint_url"]})
    if hasattr(res, "written"):  # BatchResult
        return len(res.written), len(getattr(res, "failed", ()) or ())
    return len(res), 0  # {name: path}


t0 = time.perf_counter()
cut(args["warmup_uri"], args["targets"][:1], os.path.join(args["out"], "warmup"))
warmup = time.perf_counter() - t0
print("ready", flush=True)
sys.stdin.readline()
t0 = time.perf_counter()
written, failed = cut(args["uri"], args["targets"], os.path.join(args["out"], "batch"))
seconds = time.perf_counter() - t0
print(json.dumps({"seconds": seconds, "warmup": warmup, "written": written, "failed": failed}), flush=True)
"""


def _run_child(tool: str, store, uri: str, warmup_uri: str, targets: list, out: Path) -> dict | None:
    """Run one tool in a child process: a one-target warm-up on ``warmup_uri`` (imports, lazy imports, the
    s3 client and its connections; a different key, so no per-cube state carries over), then the timed batch on
    ``uri``. Returns the child's figures and the store's counters for exactly the timed batch."""
    args = {
        "tool": tool,
        "uri": uri,
        "warmup_uri": warmup_uri,
        "endpoint_url": store.endpoint_url,
        "targets": targets,
        "size": SIZE,
        "out": str(out),
    }

    def prime() -> None:
        # the batch writes len(targets) TPFs like the warm-up's: both tools start on recently freed memory
        warm_bytes = sum(p.stat().st_size for p in (out / "warmup").rglob("*") if p.is_file())
        prime_page_cache(out, int(1.2 * warm_bytes * len(targets)))

    got = run_client(
        store,
        _CHILD,
        args,
        what=f"{tool} at latency {store.latency * 1e3:.0f} ms",
        cwd=ROOT,
        pycache=DATA / "pycache",
        before_go=prime,
        timeout=CHILD_TIMEOUT,
    )
    if got is None:
        return None
    out_json, stats = got
    out_json.update(stats)
    if out_json["written"] != len(targets):
        log.warning(
            "%s wrote %d of %d targets (%d failed)",
            tool,
            out_json["written"],
            len(targets),
            out_json["failed"],
        )
    return out_json


def _warmup_key(cube: Path) -> str:
    """A second key for the same cube (a symlink in a subdirectory), for the children's warm-up cuts."""
    link = cube.parent / "warmup" / cube.name
    if not link.exists():
        link.parent.mkdir(exist_ok=True)
        link.symlink_to(Path("..") / cube.name)
    return f"warmup/{cube.name}"


# ------------------------------------------------------------------------------------------ the case


def _ms(res: dict | None, key: str) -> float | None:
    return None if res is None else res[key] * 1e3


def _figure(per: dict, tool: str, key: str, scale: bool = True):
    """A counter of one tool's run, per target (``scale``) or as is; None if the run failed."""
    res, n = per[tool]
    if res is None:
        return None
    return res[key] / n if scale else res[key]


def run(quick: bool) -> list[dict]:
    from benchmarks.objstore import ObjectStore

    n_cad = QUICK["n_cadences"] if quick else N_CADENCES
    n_targets = QUICK["n_targets"] if quick else N_TARGETS
    n_ac = QUICK["n_astrocut"] if quick else N_ASTROCUT
    latencies = QUICK["latencies"] if quick else LATENCIES
    cube = deep_cube(n_cad)
    layout = cube_layout(cube)
    ntime, itemsize, overhead = layout["shape"][2], layout["itemsize"], layout["overhead"]
    targets = targets_on(layout, n_targets)
    ranges = row_ranges(layout, layout["target_xy"])
    warmup = _warmup_key(cube)
    row_bytes = SIZE * ntime * 2 * itemsize
    pixel_target = SIZE * row_bytes
    minimal_target = pixel_target + overhead / n_targets
    log.info(
        "cube %s: %s, %.0f MB; %d targets %dx%d, %d B of pixels each, header+table %d B",
        cube,
        layout["shape"],
        cube.stat().st_size / 1e6,
        n_targets,
        SIZE,
        SIZE,
        pixel_target,
        overhead,
    )
    warm(cube)  # the server's disk reads cost the same for both

    rows: list[dict] = []
    label = f"{n_targets} targets {SIZE}x{SIZE}, {ntime} cadences, {BANDWIDTH / 1e6:.0f} MB/s/conn"
    for latency in latencies:
        ms = latency * 1e3
        bound = bound_seconds(latency, overhead, n_targets * pixel_target, n_targets * SIZE) / n_targets
        with (
            tempfile.TemporaryDirectory(dir=DATA) as tmp,
            ObjectStore(
                cube.parent, latency=latency, bandwidth=BANDWIDTH, lifetime=4 * CHILD_TIMEOUT
            ) as store,
        ):
            uri, warmup_uri = store.uri(CUBE_NAME), store.uri(warmup)
            sk = _run_child("skycut", store, uri, warmup_uri, targets, Path(tmp) / "sk")
            written = write_seconds(sorted((Path(tmp) / "sk" / "batch").glob("*.fits")), Path(tmp))
            ac = _run_child("astrocut", store, uri, warmup_uri, targets[:n_ac], Path(tmp) / "ac")
            store.reset()
            floor = curl_floor(store, CUBE_NAME, layout, ranges, FLOOR_PARALLEL, Path(tmp))
            floor_bytes = store.stats()["bytes_sent"]
        per = {"skycut": (sk, n_targets), "astrocut": (ac, n_ac)}
        fig = functools.partial(_figure, per)
        sk_ms = fig("skycut", "seconds") * 1e3 if sk else None
        ac_ms = fig("astrocut", "seconds") * 1e3 if ac else None
        log.info(
            "latency %.0f ms: skycut %s ms/target, astrocut %s ms/target, bound %.2f ms/target",
            ms,
            f"{sk_ms:.1f}" if sk_ms else "-",
            f"{ac_ms:.1f}" if ac_ms else "-",
            bound * 1e3,
        )
        rows += [
            {
                "case": CASE,
                "measure": f"{ms:.0f} ms latency: per target ({label}; astrocut on {n_ac}; disk=bound)",
                "unit": "ms",
                "skycut": sk_ms,
                "astrocut": ac_ms,
                "disk": bound * 1e3,
                "latency_ms": ms,
                "bound_ms": bound * 1e3,
            },
            {
                "case": CASE,
                "measure": f"{ms:.0f} ms latency: per target vs server floor (disk=curl, header, table, "
                f"then all rows {FLOOR_PARALLEL} at once)",
                "unit": "ms",
                "skycut": sk_ms,
                "disk": None if floor is None else floor / n_targets * 1e3,
                "latency_ms": ms,
                "floor_bytes": floor_bytes,
            },
            {
                "case": CASE,
                "measure": f"{ms:.0f} ms latency: per target vs bound + TPF writes (disk=bound + plain writes "
                "of the same TPF bytes, measured now)",
                "unit": "ms",
                "skycut": sk_ms,
                "disk": None if written is None else bound * 1e3 + written / n_targets * 1e3,
                "latency_ms": ms,
                "write_ms": None if written is None else written / n_targets * 1e3,
            },
            {
                "case": CASE,
                "measure": f"{ms:.0f} ms latency: bytes fetched per target (disk=pixels+header+table/"
                f"{n_targets})",
                "unit": "B",
                "skycut": fig("skycut", "bytes_sent"),
                "astrocut": fig("astrocut", "bytes_sent"),
                "disk": minimal_target,
                "latency_ms": ms,
                "pixel_bytes_per_target": pixel_target,
                "overhead_bytes": overhead,
            },
            {
                "case": CASE,
                "measure": f"{ms:.0f} ms latency: requests per target",
                "unit": "",
                "skycut": fig("skycut", "requests"),
                "astrocut": fig("astrocut", "requests"),
                "latency_ms": ms,
            },
            {
                "case": CASE,
                "measure": f"{ms:.0f} ms latency: one-target warm-up call, cold client (not in the "
                "figures above)",
                "unit": "ms",
                "skycut": _ms(sk, "warmup"),
                "astrocut": _ms(ac, "warmup"),
                "latency_ms": ms,
            },
            {
                "case": CASE,
                "measure": f"{ms:.0f} ms latency: most requests in flight (connections used: "
                f"skycut {fig('skycut', 'connections_used', False)}, "
                f"astrocut {fig('astrocut', 'connections_used', False)})",
                "unit": "",
                "skycut": fig("skycut", "max_in_flight", False),
                "astrocut": fig("astrocut", "max_in_flight", False),
                "latency_ms": ms,
            },
        ]
    return rows


if __name__ == "__main__":  # pragma: no cover
    logging.basicConfig(level=logging.INFO)
    print(json.dumps(run("--quick" in sys.argv), indent=1, default=str))
