"""Cube building: skycut ``CubeFactory.make_cube`` vs astrocut's vs the disk limit, with peak RSS.

Full run (``python -m benchmarks cube``): 40 full-size simulated FFIs (2078 x 2136, about 1.4 GB), side by side
in one run: skycut (default memory), astrocut 1.4 (default memory), the disk limit (every input copied into one
file of the cube's size, then ``fsync``), skycut and astrocut with ``max_memory=0.3``, skycut's two read
strategies with little memory (many blocks), and 200 FFIs with ``max_memory=1`` (skycut only). Every build
runs in a fresh subprocess; peak RSS is that process's ``VmHWM`` (``ru_maxrss`` would include the parent's RSS at fork time); wall time excludes imports, CPU time
(user + sys, a fairer figure on a shared machine) includes them. Inputs are read once before every build so
that all start from the page cache. Inputs are generated once into
``bench-data/`` (gitignored) and reused: 40 FFIs by ``skycut.simulate.make_tess_ffis``, the other 160 of the
200-FFI set are copies of those with the later cadences' times and names patched into their headers.
The 40-FFI skycut cube is left at ``bench-data/cube40/tess-s0011-1-1-cube.fits`` for the cutout benchmarks.

``--quick``: 4 small FFIs, same measurements, seconds in total.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

from benchmarks.page_cache import warm

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench-data"
CUBE40 = DATA / "cube40" / "tess-s0011-1-1-cube.fits"

_CHILD = r"""
import json, os, resource, sys, time, warnings
args = json.loads(sys.argv[1])
warnings.simplefilter("ignore")
if args["tool"] == "skycut":
    import astropy.io.fits  # noqa: F401  (astrocut imports it at import time too)
    import h5py  # noqa: F401
    from skycut.tess.cube_factory import CubeFactory
elif args["tool"] == "astrocut":
    from astrocut import CubeFactory
t0 = time.perf_counter()  # imports excluded
if args["tool"] == "skycut":
    CubeFactory(strategy=args.get("strategy", "auto")).make_cube(
        args["files"], args["out"], max_memory=args["max_memory"], verbose=False)
elif args["tool"] == "astrocut":
    CubeFactory().make_cube(args["files"], args["out"], max_memory=args["max_memory"], verbose=False)
else:  # disk limit: copy every input into one file of the cube's size, then fsync
    size, done = args["size"], 0
    buf = bytearray(16 << 20)
    fd = os.open(args["out"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    while done < size:
        for name in args["files"]:
            with open(name, "rb", buffering=0) as fh:
                while done < size:
                    n = fh.readinto(buf)
                    if not n:
                        break
                    n = min(n, size - done)
                    done += os.write(fd, memoryview(buf)[:n])
    os.fsync(fd)
    os.close(fd)
seconds = time.perf_counter() - t0
ru = resource.getrusage(resource.RUSAGE_SELF)
# VmHWM is this address space's peak; ru_maxrss would include the parent's RSS at fork time (kept across exec)
hwm_kb = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
print(json.dumps({"seconds": seconds, "maxrss_mb": hwm_kb / 1024, "cpu": ru.ru_utime + ru.ru_stime}))
"""


def _run(tool: str, files: list[Path], out: Path, max_memory: float = 50, **extra) -> dict:
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists():
        out.unlink()
    warm(*files)  # every tool starts with the inputs in the page cache (as the disk limit does)
    args = {
        "tool": tool,
        "files": [str(f) for f in files],
        "out": str(out),
        "max_memory": max_memory,
        **extra,
    }
    res = subprocess.run(
        [sys.executable, "-c", _CHILD, json.dumps(args)], capture_output=True, text=True, cwd=ROOT
    )
    if res.returncode:
        raise RuntimeError(f"{tool} build failed:\n{res.stderr[-3000:]}")
    figures = json.loads(res.stdout.strip().splitlines()[-1])
    log.info(
        "%s %s max_memory=%s: %.1f s, peak RSS %.0f MB",
        tool,
        out.name,
        max_memory,
        figures["seconds"],
        figures["maxrss_mb"],
    )
    return figures


def _ffis(n: int, shape: tuple[int, int] | None, directory: Path) -> list[Path]:
    """``n`` simulated FFIs in ``directory`` (made once: 40 simulated, the rest patched copies)."""
    from skycut.simulate import make_tess_ffis
    from skycut.simulate.tess import tess_ffi_names

    names = tess_ffi_names(11, 1, 1, n)
    files = [directory / name for name in names]
    if all(f.exists() for f in files):
        return files
    n_sim = min(n, 40)
    base = [directory / name for name in tess_ffi_names(11, 1, 1, n_sim)]
    if not all(f.exists() for f in base):
        make_tess_ffis(directory, n_ffi=n_sim, shape=shape, seed=0)
    if n > n_sim:
        _patched_copies(base, files, n)
    return files


def _patched_copies(base: list[Path], files: list[Path], n: int) -> None:
    from astropy.io import fits

    from skycut.simulate.tess import tess_sector_times

    times = tess_sector_times(11, 1, 1, n)
    for i in range(len(base), n):
        target = files[i]
        if target.exists():
            continue
        tmp = target.with_suffix(".tmp")
        shutil.copyfile(base[i % len(base)], tmp)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with fits.open(tmp, mode="update") as hdul:
                for ext in (0, 1, 2):
                    h = hdul[ext].header
                    for key, col in (
                        ("TSTART", "tstart"),
                        ("TSTOP", "tstop"),
                        ("DATE-OBS", "date_obs"),
                        ("DATE-END", "date_end"),
                    ):
                        if key in h:
                            h[key] = times[col][i]
        tmp.rename(target)
    log.info("made %d patched copies", n - len(base))


def _rows(label: str, sk: dict, ac: dict | None = None, disk: dict | None = None) -> list[dict]:
    rows = [
        {
            "case": "cube",
            "measure": f"{label} time",
            "unit": "s",
            "skycut": round(sk["seconds"], 2),
            "astrocut": round(ac["seconds"], 2) if ac else None,
            "disk": round(disk["seconds"], 2) if disk else None,
        },
        {
            "case": "cube",
            "measure": f"{label} CPU (user+sys, incl. imports)",
            "unit": "s",
            "skycut": round(sk["cpu"], 2),
            "astrocut": round(ac["cpu"], 2) if ac else None,
            "disk": round(disk["cpu"], 2) if disk else None,
        },
        {
            "case": "cube",
            "measure": f"{label} peak RSS",
            "unit": "MB",
            "skycut": round(sk["maxrss_mb"]),
            "astrocut": round(ac["maxrss_mb"]) if ac else None,
        },
    ]
    return rows


def run(quick: bool) -> list[dict]:
    if quick:
        work = DATA / "quick-cube"
        files = _ffis(4, (200, 220), work / "ffi")
        n40, n200, cube_dir, low = files, None, work, 0.002
    else:
        files200 = _ffis(200, None, DATA / "ffi")
        n40, n200, cube_dir, low = files200[:40], files200, DATA, 0.005
    label = f"{len(n40)} FFIs"
    cube_bytes = _cube_bytes(n40)
    ours = cube_dir / "cube40" / "tess-s0011-1-1-cube.fits" if not quick else cube_dir / "sk-cube.fits"
    theirs = cube_dir / "astrocut-cube.fits"
    disk_out = cube_dir / "disk-limit.bin"
    rows: list[dict] = []
    sk = _run("skycut", n40, ours)
    ac = _run("astrocut", n40, theirs)
    dk = _run("disk", n40, disk_out, size=cube_bytes)
    rows += _rows(label, sk, ac, dk)
    sk_lo = _run("skycut", n40, cube_dir / "sk-lowmem.fits", max_memory=0.3)
    ac_lo = _run("astrocut", n40, theirs, max_memory=0.3)
    rows += _rows(f"{label} max_memory=0.3", sk_lo, ac_lo, dk)
    rows.append(
        {"case": "cube", "measure": f"{label} cube size", "unit": "MB", "skycut": round(cube_bytes / 1e6)}
    )
    for strategy in ("direct", "scratch"):
        for mem in (0.3, low):
            r = _run("skycut", n40, cube_dir / f"sk-{strategy}.fits", max_memory=mem, strategy=strategy)
            rows += [
                {
                    "case": "cube",
                    "measure": f"{label} max_memory={mem} strategy={strategy} time",
                    "unit": "s",
                    "skycut": round(r["seconds"], 2),
                    "disk": round(dk["seconds"], 2),
                },
                {
                    "case": "cube",
                    "measure": f"{label} max_memory={mem} strategy={strategy} peak RSS",
                    "unit": "MB",
                    "skycut": round(r["maxrss_mb"]),
                },
            ]
            (cube_dir / f"sk-{strategy}.fits").unlink()
    for f in (theirs, disk_out, cube_dir / "sk-lowmem.fits"):
        f.unlink(missing_ok=True)
    if n200 is not None:
        out200 = DATA / "cube200.fits"
        big = _run("skycut", n200, out200, max_memory=1)
        dk200 = _run("disk", n200, DATA / "disk-limit.bin", size=_cube_bytes(n200))
        rows += _rows("200 FFIs max_memory=1", big, None, dk200)
        out200.unlink()
        (DATA / "disk-limit.bin").unlink()
    return rows


def _cube_bytes(files: list[Path]) -> int:
    from astropy.io import fits

    h = fits.getheader(files[0], 1)
    return int(h["NAXIS1"]) * int(h["NAXIS2"]) * len(files) * 8
