"""Benchmark runner: discovers ``benchmarks/case_*.py`` modules and prints one table of figures and ratios.

Each case module defines ``run(quick: bool) -> list[dict]``; a row has ``case``, ``measure``, ``unit`` and any
of the columns ``skycut``, ``astrocut``, ``disk``. Ratios ``astrocut/skycut`` and ``skycut/disk`` are printed
where both figures exist. Figures are measured side by side in one run, never asserted in tests.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import pkgutil
import sys
from pathlib import Path

import benchmarks


def available_cases() -> list[str]:
    return sorted(
        m.name[len("case_") :]
        for m in pkgutil.iter_modules(benchmarks.__path__)
        if m.name.startswith("case_")
    )


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def format_table(rows: list[dict]) -> str:
    header = ["case", "measure", "unit", "skycut", "astrocut", "disk", "astrocut/skycut", "skycut/disk"]
    lines = []
    for r in rows:
        sk, ac, dk = r.get("skycut"), r.get("astrocut"), r.get("disk")
        ratio_a = ac / sk if isinstance(sk, (int, float)) and isinstance(ac, (int, float)) and sk else None
        ratio_d = sk / dk if isinstance(sk, (int, float)) and isinstance(dk, (int, float)) and dk else None
        lines.append(
            [
                r.get("case", ""),
                r.get("measure", ""),
                r.get("unit", ""),
                _fmt(sk),
                _fmt(ac),
                _fmt(dk),
                _fmt(ratio_a),
                _fmt(ratio_d),
            ]
        )
    widths = [
        max(len(h), *(len(line[i]) for line in lines)) if lines else len(h) for i, h in enumerate(header)
    ]
    out = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    out.append("  ".join("-" * w for w in widths))
    out += ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) for line in lines]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("cases", nargs="*", help=f"cases to run (default: all of {available_cases()})")
    parser.add_argument("--quick", action="store_true", help="small data, for checking that the cases run")
    parser.add_argument("--json", type=Path, help="also write the rows to this JSON file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    names = args.cases or available_cases()
    unknown = sorted(set(names) - set(available_cases()))
    if unknown:
        parser.error(f"unknown case(s) {unknown}; available: {available_cases()}")
    rows: list[dict] = []
    for name in names:
        module = importlib.import_module(f"benchmarks.case_{name}")
        rows += module.run(quick=args.quick)
    print(format_table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
