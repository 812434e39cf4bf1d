"""Offline TESS sector search: skycut's vectorised ``find_sectors`` vs tess-point's per-target function.

Measures (full run, ``python -m benchmarks sectors``), random targets uniform on the sky (seeded), every sector
of tess-point's pointing table:

* **find** — 10,000 targets, ``cutout_size`` 0 and 30 px: seconds for :func:`skycut.tess.sectors.find_sectors`
  with tess-point's geometry already loaded (best of 3). The ``astrocut`` column holds the *reference tool*,
  here tess-point's ``tess_stars2px_function_entry`` (which has no box, so only the point search), run on the
  first 200 targets and **scaled up linearly** to 10,000 (it loops per target and per sector); so the printed
  ratio is tess-point / skycut.
* **first call in a fresh process** — ``python -c`` that imports skycut, finds 10,000 targets and exits: the
  time of the call including tess-point's import and geometry load (most of it), measured inside the child.
* **plan** — :func:`skycut.tess.sectors.plan_cubes`: 10,000 targets x all sectors to ``{cube URI: targets}``.
* **agreement** — on the tess-point subset (``edge_margin=0.5``, tess-point's acceptance window): the number of
  (target, sector, camera, CCD) entries in one answer but not the other, and the largest column/row difference.

``--quick``: 1,000 targets, tess-point on 20, one repetition.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time

import numpy as np

log = logging.getLogger(__name__)

_CHILD = r"""
import json, sys, time
import numpy as np
n = int(sys.argv[1])
rng = np.random.default_rng(1)
ra, dec = rng.uniform(0, 360, n), np.degrees(np.arcsin(rng.uniform(-1, 1, n)))
from skycut.tess.sectors import find_sectors
t0 = time.perf_counter()
m = find_sectors(ra, dec, 30)
print(json.dumps({"seconds": time.perf_counter() - t0, "matches": int(m.size)}))
"""


def _targets(n: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.uniform(0.0, 360.0, n), np.degrees(np.arcsin(rng.uniform(-1.0, 1.0, n)))


def _best(fn, repeat: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def run(quick: bool) -> list[dict]:
    import tess_stars2px

    from skycut.tess.sectors import find_sectors, plan_cubes, tess_geometry

    n = 1000 if quick else 10_000
    n_ref = 20 if quick else 200
    repeat = 1 if quick else 3
    ra, dec = _targets(n)
    geometry = tess_geometry()
    n_sectors = len(geometry.sectors)
    label = f"{n:,} targets x {n_sectors} sectors"
    rows: list[dict] = []

    scinfo = tess_stars2px.TESS_Spacecraft_Pointing_Data()
    t0 = time.perf_counter()
    ref = tess_stars2px.tess_stars2px_function_entry(np.arange(n_ref), ra[:n_ref], dec[:n_ref], scInfo=scinfo)
    ref_seconds = (time.perf_counter() - t0) * n / n_ref
    log.info(
        "tess-point: %d targets in %.2f s (scaled to %d: %.1f s)",
        n_ref,
        ref_seconds * n_ref / n,
        n,
        ref_seconds,
    )

    for size in (0, 30):
        seconds, found = _best(lambda size=size: find_sectors(ra, dec, size), repeat)
        row = {
            "case": "sectors",
            "measure": f"find, {label}, size {size} px (ref: tess-point, {n_ref} scaled x{n // n_ref})"
            if size == 0
            else f"find, {label}, size {size} px",
            "unit": "s",
            "skycut": seconds,
            "matches": int(found.size),
        }
        if size == 0:
            row["astrocut"] = ref_seconds
        rows.append(row)

    out = subprocess.run([sys.executable, "-c", _CHILD, str(n)], capture_output=True, text=True, check=True)
    child = json.loads(out.stdout.strip().splitlines()[-1])
    rows.append(
        {
            "case": "sectors",
            "measure": f"first call in a fresh process (tess-point import), {label}",
            "unit": "s",
            "skycut": child["seconds"],
        }
    )

    seconds, plan = _best(lambda: plan_cubes(ra, dec, 30), repeat)
    rows.append(
        {
            "case": "sectors",
            "measure": f"plan cubes, {label}, size 30 px ({len(plan)} cubes)",
            "unit": "s",
            "skycut": seconds,
        }
    )

    ids, _, _, sec, cam, ccd, col, row_px, _ = ref
    theirs = {
        (int(i), int(s), int(c), int(d)): (x, y)
        for i, s, c, d, x, y in zip(ids, sec, cam, ccd, col, row_px, strict=True)
        if s >= 0
    }
    mine = {
        (int(r["target"]), int(r["sector"]), int(r["camera"]), int(r["ccd"])): (r["column"], r["row"])
        for r in find_sectors(ra[:n_ref], dec[:n_ref], edge_margin=0.5)
    }
    differ = len(set(theirs) ^ set(mine))
    worst = max(
        (max(abs(mine[k][0] - v[0]), abs(mine[k][1] - v[1])) for k, v in theirs.items() if k in mine),
        default=0.0,
    )
    rows.append(
        {
            "case": "sectors",
            "measure": f"entries differing from tess-point ({n_ref} targets, {len(theirs)} entries)",
            "unit": "count",
            "skycut": differ,
        }
    )
    rows.append(
        {
            "case": "sectors",
            "measure": "largest column/row difference from tess-point",
            "unit": "px",
            "skycut": float(worst),
        }
    )
    return rows
