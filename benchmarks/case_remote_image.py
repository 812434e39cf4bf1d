"""Image cutouts from a remote FITS file with real round trips: skycut vs astrocut 1.4, time, bytes, requests.

The image (a 7100 x 7100 float32 FITS of 201.6 MB, :func:`benchmarks.case_fits_cut.make_image`, sparse: pixels
written near the centre only) is served by :class:`benchmarks.objstore.ObjectStore` on loopback as an anonymous
``s3://`` object, ``LATENCY`` = 30 ms before every response's first byte and 100 MB/s per connection.

For each cutout size in ``SIZES`` (50 x 50 and 300 x 300 at the image centre), each tool runs in a child
process: imports, one warm-up cutout of the same file under another key (the client and its connections), then
``REPEATS`` timed ``FITSCutout(uri, coord, size)`` calls (the cutout made in memory, ``.cutouts_by_file`` read);
the figure is the median, and the store counts the bytes and requests of the timed calls (per call).

``disk`` in the time rows is the bound: the header in one round trip, then every row of the cutout in one round of
concurrent requests (``2 * latency + (header + pixel bytes) / bandwidth``); in the bytes row it is the header block
plus the cutout's pixel bytes.

``--quick``: a 1000 x 1000 image, the 50 x 50 cutout only, 2 repeats.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
from pathlib import Path

from benchmarks.objstore import run_client

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench-data"
CASE = "remote_image"
LATENCY, BANDWIDTH = 0.030, 100e6
SIZES, REPEATS = (50, 300), 5
QUICK = {"n": 1000, "sizes": (50,), "repeats": 2}
CHILD_TIMEOUT = 600

_CHILD = r"""
import json, os, statistics, sys, time, warnings
warnings.simplefilter("ignore")
args = json.loads(sys.argv[1])
import s3fs  # noqa: F401
mod = __import__(args["tool"])
kwargs = {"fsspec_kwargs": {"anon": True, "endpoint_url": args["endpoint_url"]}}


def cut(uri):
    c = mod.FITSCutout([uri], args["coord"], args["size"], **kwargs)
    shape = next(iter(c.cutouts_by_file.values()))[0].data.shape
    assert shape == (args["size"], args["size"]), shape


cut(args["warmup_uri"])
print("ready", flush=True)
sys.stdin.readline()
times = []
for _ in range(args["repeats"]):
    t0 = time.perf_counter()
    cut(args["uri"])
    times.append(time.perf_counter() - t0)
print(json.dumps({"seconds": statistics.median(times), "all": times}), flush=True)
"""


def _run_child(
    tool: str, store, key: str, warmup_key: str, coord: str, size: int, repeats: int
) -> dict | None:
    """One tool's timed cutouts in a child process; its figures plus the store's counters per call."""
    args = {
        "tool": tool,
        "uri": store.uri(key),
        "warmup_uri": store.uri(warmup_key),
        "endpoint_url": store.endpoint_url,
        "coord": coord,
        "size": size,
        "repeats": repeats,
    }
    got = run_client(
        store,
        _CHILD,
        args,
        what=f"{tool} {size}x{size}",
        cwd=ROOT,
        pycache=DATA / "pycache",
        timeout=CHILD_TIMEOUT,
    )
    if got is None:
        return None
    out, stats = got
    out["bytes"] = stats["bytes_sent"] / repeats
    out["requests"] = stats["requests"] / repeats
    return out


def run(quick: bool) -> list[dict]:
    from benchmarks.case_fits_cut import make_image
    from benchmarks.objstore import ObjectStore

    n = QUICK["n"] if quick else 7100
    sizes = QUICK["sizes"] if quick else SIZES
    repeats = QUICK["repeats"] if quick else REPEATS
    path, wcs = make_image(n, sparse=True)
    ra, dec = (float(v) for v in wcs.pixel_to_world_values(n / 2 + 3.3, n / 2 - 7.8))
    coord = f"{ra} {dec}"
    header_bytes = 2880 * 2  # the test image's header: two blocks
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(dir=DATA) as tmp:
        served = Path(tmp)
        os.link(path, served / "image.fits")  # hard links: the store serves nothing outside its directory
        (served / "warmup").mkdir()
        os.link(path, served / "warmup" / "image.fits")
        with ObjectStore(served, latency=LATENCY, bandwidth=BANDWIDTH) as store:
            for size in sizes:
                res = {
                    tool: _run_child(tool, store, "image.fits", "warmup/image.fits", coord, size, repeats)
                    for tool in ("skycut", "astrocut")
                }
                pixel_bytes = size * size * 4
                bound = 2 * LATENCY + (header_bytes + pixel_bytes) / BANDWIDTH
                label = (
                    f"{size}x{size} of a {n}x{n} float32 image ({path.stat().st_size / 1e6:.0f} MB), s3 at "
                )
                label += f"{LATENCY * 1e3:.0f} ms, {BANDWIDTH / 1e6:.0f} MB/s/conn"

                def fig(tool: str, key: str, scale: float = 1.0, res=res):
                    return None if res[tool] is None else res[tool][key] * scale

                rows += [
                    {
                        "case": CASE,
                        "measure": f"{label}: per cutout, median of {repeats} (disk=bound)",
                        "unit": "ms",
                        "skycut": fig("skycut", "seconds", 1e3),
                        "astrocut": fig("astrocut", "seconds", 1e3),
                        "disk": bound * 1e3,
                    },
                    {
                        "case": CASE,
                        "measure": f"{size}x{size}: bytes fetched per cutout (disk=header + pixels)",
                        "unit": "B",
                        "skycut": fig("skycut", "bytes"),
                        "astrocut": fig("astrocut", "bytes"),
                        "disk": header_bytes + pixel_bytes,
                    },
                    {
                        "case": CASE,
                        "measure": f"{size}x{size}: requests per cutout",
                        "unit": "",
                        "skycut": fig("skycut", "requests"),
                        "astrocut": fig("astrocut", "requests"),
                    },
                ]
    return rows


if __name__ == "__main__":  # pragma: no cover
    logging.basicConfig(level=logging.INFO)
    print(json.dumps(run("--quick" in sys.argv), indent=1, default=str))
