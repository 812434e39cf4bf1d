"""The ``skycut`` command: ``validate``, ``run``, ``schema``, ``plan`` and ``simulate``.

It validates manifests, runs the workflow on one, prints the schema, shows the plan and makes demo data.

Exit status: 0 on success; 2 for an invalid manifest, bad arguments, or a run refused (custom combiners without
--allow-code); ``skycut run`` otherwise exits with Snakemake's status; 1 for other errors.

``skycut run MANIFEST [snakemake options]`` reads the manifest as plain data (no yte template is evaluated),
validates it, and hands Snakemake the validated config as JSON: use it for manifests you did not write.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .. import __version__
from ..core.logs import LOGGER, set_verbose

log = logging.getLogger(LOGGER)

Problem = tuple[str, str, Any]

#: Where ``skycut run`` writes the validated config, under ``output_dir``.
RUN_CONFIG_DIR = ".skycut"
#: Snakemake options ``skycut run`` refuses: the manifest is its one source of configuration.
_CONFIG_OPTIONS = ("--configfile", "--configfiles", "--config", "-C")
_SNAKEFILE_OPTIONS = ("-s", "--snakefile")
ALLOW_CODE = "--allow-code"


# ------------------------------------------------------------------------------------------------------------
# checking a manifest: what `skycut validate`, `plan`, `run` and the Snakefile report


def check_config(data: Any, *, globs: bool = True) -> tuple[Any, list[Problem], list[str]]:
    """Every problem of a manifest mapping in one pass, and its warnings.

    Parameters
    ----------
    data : object
        The manifest as read (:func:`skycut.pipeline.manifest_file.read_manifest_file`, or Snakemake's config).
    globs : bool
        Also report local globs of ``inputs.*.paths`` and ``cubes.*.files`` that match no file (files the demo
        will make count as matches), even when other fields are invalid.

    Returns
    -------
    manifest : Manifest or None
        The validated manifest, or None when there is any problem.
    problems : list of (field path, message, bad value)
        Field errors, cross-references, globs matching nothing.
    warnings : list of str
        Custom combiners (``module:function``): code the workflow will import and run.
    """
    from ..exceptions import ManifestError
    from .manifest import code_combiners, validate_manifest

    manifest, problems = None, []
    try:
        manifest = validate_manifest(data)
    except ManifestError as exc:
        problems = list(exc.problems)
    if globs and isinstance(data, dict):
        problems += glob_problems(data)
    warnings = [
        f"{field}: {value!r} is code: the workflow imports and runs it (`skycut run` refuses it without "
        f"{ALLOW_CODE})"
        for field, value in code_combiners(data)
    ]
    return (None if problems else manifest), problems, warnings


def glob_problems(data: dict) -> list[Problem]:
    """``(field, "no file matches ...", pattern)`` for each local glob of a manifest mapping that matches nothing.

    Files the demo section will make count as matches. Only ``output_dir`` and ``demo`` are needed (and used) to
    know those, so the check runs whatever else is wrong, and no target is resolved.
    """
    from ..exceptions import ManifestError
    from .manifest import validate_manifest
    from .plan import Plan, resolve_paths

    keys = ("output_dir", "allow_output_outside", "limits", "demo")
    known: set[str] = set()
    for subset in ({k: data[k] for k in keys if k in data}, {}):
        try:
            known = Plan(validate_manifest(subset)).known_files
            break
        except (ManifestError, ValueError):
            continue
    problems = []
    for section, key in (("inputs", "paths"), ("cubes", "files")):
        specs = data.get(section)
        for name, spec in specs.items() if isinstance(specs, dict) else []:
            patterns = spec.get(key) if isinstance(spec, dict) else None
            for pattern in patterns if isinstance(patterns, list) else []:
                if not isinstance(pattern, str):
                    continue
                try:
                    resolve_paths([pattern], known)
                except ValueError as exc:
                    problems.append((f"{section}.{name}.{key}", str(exc), pattern))
    return problems


def report_lines(problems: list[Problem], warnings: Sequence[str] = ()) -> list[str]:
    """Return the lines describing ``problems`` and ``warnings``, alike in ``skycut validate`` and the Snakefile."""
    lines = [f"  {field}: {message} (got {value!r})" for field, message, value in problems]
    return lines + [f"  warning: {text}" for text in warnings]


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


def _read_and_check(path: str, *, globs: bool = True) -> tuple[Any, Any, list[Problem], list[str]]:
    """Read and check a manifest file; return ``(data, manifest, problems, warnings)``.

    A file that cannot be read as a safe manifest is one problem (and ``data`` None).
    """
    from ..exceptions import ManifestError
    from .manifest_file import read_manifest_file

    try:
        data = read_manifest_file(path)
    except ManifestError as exc:
        return None, None, list(exc.problems), []
    manifest, problems, warnings = check_config(data, globs=globs)
    return data, manifest, problems, warnings


def _print_invalid(path: str, problems: list[Problem], warnings: Sequence[str]) -> None:
    print(f"{path}: INVALID ({_count(len(problems), 'problem')})", file=sys.stderr)
    for line in report_lines(problems, warnings):
        print(line, file=sys.stderr)


# ------------------------------------------------------------------------------------------------------------
# commands


def _cmd_validate(args: argparse.Namespace) -> int:
    status = 0
    for path in args.manifest:
        _, manifest, problems, warnings = _read_and_check(path)
        if problems:
            status = 2
            _print_invalid(path, problems, warnings)
            continue
        print(
            f"{path}: OK ({len(manifest.targets)} targets, {len(manifest.inputs)} input sets, "
            f"{len(manifest.cubes)} cubes, {len(manifest.cube_cutouts)} cube-cutout sets)"
        )
        for line in report_lines([], warnings):
            print(line, file=sys.stderr)
    return status


def _cmd_schema(args: argparse.Namespace) -> int:
    from .manifest import json_schema

    text = json.dumps(json_schema(), indent=2, sort_keys=False) + "\n"
    if args.output:
        Path(args.output).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


def _load_plan(path: str, *, globs: bool = True):
    """Return the plan of a manifest, or ``None`` after printing why it cannot be made.

    It cannot be made for an invalid manifest, a glob matching nothing, a target that cannot be resolved, ...
    """
    from .plan import Plan

    _, manifest, problems, warnings = _read_and_check(path, globs=globs)
    if problems:
        _print_invalid(path, problems, warnings)
        return None
    for line in report_lines([], warnings):
        print(line, file=sys.stderr)
    try:
        return Plan(manifest)
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

    plan = _load_plan(args.manifest, globs=False)  # the inputs may be files the workflow makes later
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


def find_snakefile(snakemake_args: Sequence[str]) -> str | None:
    """Find the Snakefile ``skycut run`` hands Snakemake.

    ``None`` when the arguments name one (``-s``/``--snakefile``, which wins); else ``./Snakefile`` when the
    working directory has one; else the skycut repository's ``Snakefile`` beside the installed package source
    (``src/skycut`` -> the repository root).

    Returns
    -------
    str or None
        The Snakefile's path, or ``None`` when the arguments name one.

    Raises
    ------
    FileNotFoundError
        When there is none of these.
    """
    if any(a in _SNAKEFILE_OPTIONS or a.startswith("--snakefile=") for a in snakemake_args):
        return None
    if Path("Snakefile").is_file():
        return "Snakefile"
    repository = Path(__file__).resolve().parents[3] / "Snakefile"
    if repository.is_file():
        return str(repository)
    raise FileNotFoundError(
        "no Snakefile: run from a directory with the skycut workflow's Snakefile, or pass "
        "-s PATH/TO/Snakefile"
    )


def write_run_config(data: dict, output_dir: str) -> Path:
    """Write the validated manifest mapping as JSON to ``<output_dir>/.skycut/manifest-<sha256>.json``.

    Snakemake reads a ``--configfile`` as JSON before trying YAML, so this file reaches it without yte. The
    name follows the content, so concurrent runs of different manifests do not collide; the file stays as the
    record of what ran (and for cluster jobs, which read it again).
    """
    from ..core.atomic import write_bytes
    from .plan import normalise_dir

    text = json.dumps(data, indent=1, sort_keys=False, default=str) + "\n"
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
    path = (Path(normalise_dir(output_dir)) / RUN_CONFIG_DIR / f"manifest-{digest}.json").resolve()
    write_bytes(text.encode("utf-8"), path)
    return path


def _cmd_run(args: argparse.Namespace) -> int:
    extra = list(args.snakemake_args)
    allow_code = args.allow_code or ALLOW_CODE in extra
    extra = [a for a in extra if a != ALLOW_CODE]
    refused = [
        a for a in extra if a in _CONFIG_OPTIONS or a.startswith(tuple(f"{o}=" for o in _CONFIG_OPTIONS))
    ]
    if refused:
        print(
            f"skycut run: {refused[0]} is not passed on: the manifest {args.manifest} is the run's whole "
            "configuration (edit it, then run again)",
            file=sys.stderr,
        )
        return 2
    data, manifest, problems, warnings = _read_and_check(args.manifest)
    if problems:
        _print_invalid(args.manifest, problems, warnings)
        return 2
    from .manifest import code_combiners

    code = code_combiners(data)
    if code and not allow_code:
        print(
            f"skycut run: {args.manifest} refused: it names custom combiners, code that the workflow would "
            f"import and run; read that code, then pass {ALLOW_CODE} to run it",
            file=sys.stderr,
        )
        for field, value in code:
            print(f"  {field}: {value!r}", file=sys.stderr)
        return 2
    for line in report_lines([], warnings):
        print(line, file=sys.stderr)
    try:
        snakefile = find_snakefile(extra)
    except FileNotFoundError as exc:
        print(f"skycut run: {exc}", file=sys.stderr)
        return 2
    config = write_run_config(data, manifest.output_dir)
    command = [
        sys.executable,
        "-m",
        "snakemake",
        *(["--snakefile", snakefile] if snakefile else []),
        "--configfile",
        str(config),
        *extra,
    ]
    log.info("validated %s; running %s", args.manifest, " ".join(command))
    return subprocess.run(command, check=False).returncode


def build_parser() -> argparse.ArgumentParser:
    """Build the ``skycut`` command's argument parser: one subcommand per task, each with its handler (``func``)."""
    parser = argparse.ArgumentParser(
        prog="skycut", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"skycut {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="DEBUG log records from skycut")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("validate", help="check manifests; print every problem with its field path")
    p.add_argument("manifest", nargs="+", help="YAML manifest file(s)")
    p.set_defaults(func=_cmd_validate)

    p = sub.add_parser(
        "run",
        help="read a manifest safely, validate it, and run the workflow on it (options after the "
        "manifest go to Snakemake)",
        description="Read MANIFEST as plain YAML (nothing in it is evaluated), validate it, write it as JSON "
        "under output_dir/.skycut/ and run Snakemake with --configfile on that file. Options after MANIFEST go "
        "to Snakemake (e.g. --cores 2, -n). Snakefile: -s/--snakefile if given, else ./Snakefile, else the "
        "skycut repository's. Custom combiners (module:function) are refused unless --allow-code is given.",
    )
    p.add_argument(
        ALLOW_CODE,
        action="store_true",
        help="run custom combiners (module:function): code named by the manifest",
    )
    p.add_argument("manifest")
    p.add_argument("snakemake_args", nargs=argparse.REMAINDER, help="passed to Snakemake")
    p.set_defaults(func=_cmd_run)

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
    """Run the ``skycut`` command.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        The exit status (see the module docstring).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(format="%(levelname)s %(name)s: %(message)s")  # the application installs the handler
    log.setLevel(logging.INFO)
    set_verbose(args.verbose)  # DEBUG for the skycut logger, nothing else
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
