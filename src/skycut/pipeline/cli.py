"""The ``skycut`` command: validate manifests, print the schema, show the plan, make demo data.

Exit status: 0 on success, 2 for an invalid manifest or bad arguments, 1 for other errors.
The workflow itself runs with ``snakemake --configfile MANIFEST``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from .. import __version__
from ..core.logs import LOGGER, set_verbose

log = logging.getLogger(LOGGER)


def _cmd_validate(args: argparse.Namespace) -> int:
    from ..exceptions import ManifestError
    from .manifest import load_manifest

    status = 0
    for path in args.manifest:
        try:
            manifest = load_manifest(path)
        except ManifestError as exc:
            status = 2
            print(f"{path}: INVALID ({len(exc.problems)} problem{'s' if len(exc.problems) != 1 else ''})",
                  file=sys.stderr)
            for field, message, value in exc.problems:
                print(f"  {field}: {message} (got {value!r})", file=sys.stderr)
            continue
        print(f"{path}: OK ({len(manifest.targets)} targets, {len(manifest.inputs)} input sets, "
              f"{len(manifest.cubes)} cubes, {len(manifest.cube_cutouts)} cube-cutout sets)")
    return status


def _cmd_schema(args: argparse.Namespace) -> int:
    from .manifest import json_schema

    text = json.dumps(json_schema(), indent=2, sort_keys=False) + "\n"
    if args.output:
        Path(args.output).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


def _load_plan(path: str):
    """The plan of a manifest, or ``None`` after printing why it cannot be made (invalid manifest, a glob
    matching nothing, ...)."""
    from ..exceptions import ManifestError
    from .manifest import load_manifest
    from .plan import Plan

    try:
        return Plan(load_manifest(path))
    except ManifestError as exc:
        print(str(exc), file=sys.stderr)
    except ValueError as exc:
        print(f"{path}: {exc}", file=sys.stderr)
    return None


def _cmd_plan(args: argparse.Namespace) -> int:
    plan = _load_plan(args.manifest)
    if plan is None:
        return 2
    print(f"image cutout jobs: {len(plan.image_jobs())}")
    print(f"cube builds:       {len(plan.manifest.cubes)}")
    print(f"cube cutout jobs:  {len(plan.cube_cutout_jobs())}")
    print(f"footprint jobs:    {len(plan.footprint_jobs())}")
    print(f"moving targets:    {len(plan.manifest.paths)}")
    print(f"combine groups:    {len(plan.manifest.combine)}")
    print(f"render sets:       {len(plan.manifest.render)}")
    status = 0
    files = [(f"inputs.{n}.paths", plan.input_files, n) for n in plan.manifest.inputs]
    files += [(f"cubes.{n}.files", plan.cube_files, n) for n in plan.manifest.cubes]
    for field, resolve, name in files:  # each resolver names its field in its error
        try:
            print(f"{field}: {len(resolve(name))} file(s)")
        except ValueError as exc:
            print(str(exc), file=sys.stderr)
            status = 2
    if args.outputs:
        for out in plan.all_outputs():
            print(f"  {out}")
    return status


def _cmd_simulate(args: argparse.Namespace) -> int:
    from .jobs.demo import make_demo

    plan = _load_plan(args.manifest)
    if plan is None:
        return 2
    if plan.manifest.demo is None:
        print(f"{args.manifest}: no demo section", file=sys.stderr)
        return 2
    job = plan.demo_job()
    made = make_demo(job.spec, job.directory, path_table=job.path_table, footprints=job.footprints)
    for kind, files in made.items():
        print(f"{kind}: {len(files)} file(s) in {Path(files[0]).parent if files else plan.demo_dir}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="skycut", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"skycut {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="DEBUG log records from skycut")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("validate", help="check manifests; print every problem with its field path")
    p.add_argument("manifest", nargs="+", help="YAML manifest file(s)")
    p.set_defaults(func=_cmd_validate)

    p = sub.add_parser("schema", help="print the manifest JSON Schema")
    p.add_argument("-o", "--output", help="write to this file instead of stdout")
    p.set_defaults(func=_cmd_schema)

    p = sub.add_parser("plan", help="show the jobs a manifest makes")
    p.add_argument("manifest")
    p.add_argument("--outputs", action="store_true", help="also list every output the workflow will make")
    p.set_defaults(func=_cmd_plan)

    p = sub.add_parser("simulate", help="make the manifest's demo data without running the workflow")
    p.add_argument("manifest")
    p.set_defaults(func=_cmd_simulate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(format="%(levelname)s %(name)s: %(message)s")  # the application installs the handler
    log.setLevel(logging.INFO)
    set_verbose(args.verbose)  # DEBUG for the skycut logger, nothing else
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
