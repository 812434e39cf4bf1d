"""The skycut manifest: the :class:`Manifest` model, its checks across sections, the validate/load entry points.

A manifest is a YAML file given to ``skycut run`` or ``snakemake --configfile``. It declares targets, image
inputs, TESS cubes to build and cut, footprint (cloud) cutouts, moving-target paths, combine groups, rendering
and the offline demo. Every model forbids unknown keys, so a typo is an error that names the field (and suggests
the nearest valid key). Cross-field checks (references that must resolve, mutually exclusive options, where
outputs may go) report the path of the offending field too, and run even when other fields failed, so one
validation reports every problem.

The models are pydantic models, the single source of truth for a workflow run: this module holds the whole
manifest; :mod:`skycut.pipeline.targets` the targets and target tables; :mod:`skycut.pipeline.sections` the
models of the other sections; :mod:`skycut.pipeline.checks` the shared field types, the limits, the value
checks and the problem reports.

Sizes and the demo's data volume are bounded by the manifest's ``limits`` section
(:class:`~skycut.pipeline.checks.Limits`), checked at validation. ``output_dir`` (and ``demo.directory``) must
lie inside the working directory unless the manifest sets ``allow_output_outside: true``.

``schemas/manifest.schema.json`` is generated from these models (``skycut schema``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, model_validator
from pydantic_core import InitErrorDetails

from ..core.coords import CutoutSize, parse_size
from ..exceptions import ManifestError
from .checks import (
    Limits,
    SafeName,
    StrictModel,
    as_init_details,
    as_mapping,
    custom_error,
    limits_in_force,
    limits_of,
    nearest,
    problems_from,
    raise_problems,
)
from .manifest_file import read_manifest_file
from .names import slug_collisions, slugify
from .sections import (
    CombineSpec,
    CubeCutoutSpec,
    CubeSpec,
    Demo,
    FootprintCutoutSpec,
    InputSet,
    PathSpec,
    RenderSpec,
)
from .targets import Target, TargetDefaults, read_targets_table


class Manifest(StrictModel):
    """A whole skycut run."""

    output_dir: str = Field(
        "results",
        description="Root of every output (results, logs, benchmarks beside it); inside the working "
        "directory unless allow_output_outside is true; '~' is not expanded, so it is refused",
    )
    allow_output_outside: bool = Field(
        False,
        description="Let output_dir and demo.directory lie outside the working directory (an absolute path "
        "elsewhere, '../x')",
    )
    fail_on_skip: bool = Field(
        False,
        description="Fail the run (non-zero exit status, after the summary) when any target was skipped "
        "(off every image, off the CCD, not covered); by default skips are reported in <output_dir>/summary.tsv",
    )
    limits: Limits = Field(default_factory=Limits)
    target_defaults: TargetDefaults = Field(default_factory=TargetDefaults)
    targets: list[Target] = Field(default_factory=list)
    targets_file: str | None = Field(
        None,
        description="CSV or ECSV table with columns name, ra, dec and optionally size; added to targets. "
        "ra/dec: degrees, or sexagesimal text (hours, degrees); size: what a target's size takes (11, "
        "'30 arcsec', '[200, 300]', '[1 arcmin, 40]'), empty for target_defaults.size",
    )
    inputs: dict[SafeName, InputSet] = Field(default_factory=dict)
    cubes: dict[SafeName, CubeSpec] = Field(default_factory=dict)
    cube_cutouts: dict[SafeName, CubeCutoutSpec] = Field(default_factory=dict)
    footprint_cutouts: dict[SafeName, FootprintCutoutSpec] = Field(default_factory=dict)
    paths: dict[SafeName, PathSpec] = Field(default_factory=dict)
    combine: dict[SafeName, CombineSpec] = Field(default_factory=dict)
    render: dict[SafeName, RenderSpec] = Field(default_factory=dict)
    demo: Demo | None = None

    @model_validator(mode="wrap")
    @classmethod
    def _whole(cls, data: Any, handler: Any) -> Manifest:
        """Validate the fields under the manifest's limits, then check across fields on the data as written.

        The checks across fields run whatever else failed: one validation reports every problem, and a target
        whose own fields are bad still counts as defined (no cascade of "unknown target" errors).
        """
        if not isinstance(data, dict):
            return handler(data)
        with limits_in_force(limits_of(data)):
            manifest, errors = None, []
            try:
                manifest = handler(data)
            except ValidationError as exc:
                errors = [as_init_details(e) for e in exc.errors()]
            file_targets: list[Target] = []
            file_names: list[tuple[str, str]] = []
            if isinstance(data.get("targets_file"), str):
                file_targets, file_names, file_problems = read_targets_table(data["targets_file"])
                errors += [
                    custom_error(("targets_file",), "file", msg, value) for msg, value in file_problems
                ]
            errors += _cross_field_problems(data, file_names)
            errors += _location_problems(data)
        raise_problems("Manifest", errors)
        manifest.targets = manifest.targets + file_targets
        default_size = parse_size(manifest.target_defaults.size)
        for target in manifest.targets:
            if target.size_given is None:
                target._size = default_size
        return manifest

    # convenience accessors used by the planner -------------------------------------------------------------
    def target_map(self) -> dict[str, Target]:
        """Return the targets by name."""
        return {t.name: t for t in self.targets}

    def size_of(self, target: Target) -> CutoutSize:
        """Return the target's resolved size (its own, else ``target_defaults.size``): ``target.size``."""
        return target.size if target.size is not None else parse_size(self.target_defaults.size)

    def demo_directory(self) -> str:
        """Return where the demo data go: ``demo.directory``, by default ``<output_dir>/demo``.

        Raises
        ------
        ValueError
            If the manifest has no demo section.
        """
        if self.demo is None:
            raise ValueError("the manifest has no demo section")
        return self.demo.directory or str(Path(self.output_dir) / "demo")


_TARGET_SECTIONS = ("inputs", "cube_cutouts", "footprint_cutouts", "combine", "render")


def _cross_field_problems(data: dict, file_names: list[tuple[str, str]]) -> list[InitErrorDetails]:
    """Check references between sections, duplicate target names and sections that need targets.

    The checks run on the data as written (``file_names``: ``(name, "file line N")`` of every targets-file row that
    has a name, good or bad).
    """
    problems: list[InitErrorDetails] = []
    yaml_targets = data.get("targets") if isinstance(data.get("targets"), list) else []
    names: dict[str, str] = {}
    for i, target in enumerate(yaml_targets):
        name = as_mapping(target).get("name")
        if not isinstance(name, str):
            continue
        if name in names:
            problems.append(
                custom_error(
                    ("targets", i, "name"), "duplicate", f"duplicate target name (also {names[name]})", name
                )
            )
        else:
            names[name] = f"targets[{i}]"
    for name, where in file_names:
        if name in names:
            problems.append(
                custom_error(
                    ("targets_file",),
                    "duplicate",
                    f"{where}: duplicate target name (also {names[name]})",
                    name,
                )
            )
        else:
            names[name] = where
    defined = list(names.items())  # distinct names in the order they are defined, with where
    for i, j in slug_collisions([name for name, _ in defined]):
        (first, first_where), (name, where) = defined[i], defined[j]
        problems.append(
            custom_error(
                _where_loc(where),
                "slug",
                f"{_where_prefix(where)}target names {first!r} ({first_where}) and {name!r} "
                f"({where}) give the same file name {slugify(name)!r}",
                name,
            )
        )
    for section in _TARGET_SECTIONS:
        for key, spec in as_mapping(data.get(section)).items():
            refs = as_mapping(spec).get("targets")
            for j, ref in enumerate(refs if isinstance(refs, list) else []):
                if isinstance(ref, str) and ref not in names:
                    problems.append(
                        custom_error(
                            (section, key, "targets", j),
                            "reference",
                            "unknown target" + nearest(ref, names),
                            ref,
                        )
                    )
    inputs, combine, cubes = (as_mapping(data.get(k)) for k in ("inputs", "combine", "cubes"))
    for key, spec in as_mapping(data.get("render")).items():
        refs = as_mapping(spec).get("inputs")
        for j, ref in enumerate(refs if isinstance(refs, list) else []):
            if isinstance(ref, str) and ref not in inputs and ref not in combine:
                problems.append(
                    custom_error(
                        ("render", key, "inputs", j),
                        "reference",
                        "unknown input set or combine group" + nearest(ref, [*inputs, *combine]),
                        ref,
                    )
                )
    for key, spec in combine.items():
        refs = as_mapping(spec).get("inputs")
        for j, ref in enumerate(refs if isinstance(refs, list) else []):
            if not isinstance(ref, str):
                continue
            if ref not in inputs:
                problems.append(
                    custom_error(
                        ("combine", key, "inputs", j),
                        "reference",
                        "unknown input set" + nearest(ref, inputs),
                        ref,
                    )
                )
            elif as_mapping(inputs[ref]).get("format", "fits") != "fits":
                problems.append(
                    custom_error(
                        ("combine", key, "inputs", j),
                        "reference",
                        "only FITS input sets can be combined",
                        ref,
                    )
                )
    for section in ("cube_cutouts", "paths"):
        for key, spec in as_mapping(data.get(section)).items():
            refs = as_mapping(spec).get("cubes")
            for j, ref in enumerate(refs if isinstance(refs, list) else []):
                if isinstance(ref, str) and ref not in cubes and not _looks_like_path(ref):
                    problems.append(
                        custom_error(
                            (section, key, "cubes", j),
                            "reference",
                            "unknown cube: not a name in `cubes` nor a path/URI" + nearest(ref, cubes),
                            ref,
                        )
                    )
    needs_targets = [s for s in _TARGET_SECTIONS[:3] if as_mapping(data.get(s))]
    if needs_targets and not yaml_targets and data.get("targets_file") is None:
        problems.append(
            custom_error(("targets",), "missing", f"{', '.join(needs_targets)} need at least one target", [])
        )
    return problems


def _where_loc(where: str) -> tuple:
    """Return the error location of a target defined at ``where`` ("targets[3]" or "FILE line N")."""
    match = re.fullmatch(r"targets\[(\d+)\]", where)
    return ("targets", int(match[1]), "name") if match else ("targets_file",)


def _where_prefix(where: str) -> str:
    return "" if where.startswith("targets[") else f"{where}: "


def _location_problems(data: dict) -> list[InitErrorDetails]:
    """Check ``output_dir`` and ``demo.directory``.

    Each must lie inside the working directory unless ``allow_output_outside``, have no ``~``, and not be an
    existing file.
    """
    allow = data.get("allow_output_outside") is True
    places = [
        (("output_dir",), data.get("output_dir", "results")),
        (("demo", "directory"), as_mapping(data.get("demo")).get("directory")),
    ]
    problems = []
    for loc, value in places:
        if isinstance(value, str):
            message = output_location_problem(value, allow)
            if message:
                problems.append(custom_error(loc, "location", message, value))
    return problems


def output_location_problem(path: str, allow_outside: bool = False) -> str | None:
    """Why ``path`` cannot be an output directory, or ``None`` when it can.

    Refused: a path starting with ``~`` (not expanded: it would become a folder named ``~``); a path outside the
    working directory (``../x``, an absolute path elsewhere) unless ``allow_outside``; a path that is, or lies
    under, an existing file.
    """
    if path.startswith("~"):
        return (
            "'~' is not expanded (it would make a folder named '~'): write the full path, and set "
            "allow_output_outside: true if it lies outside the working directory"
        )
    cwd = os.getcwd()
    full = os.path.abspath(path)
    if not allow_outside and os.path.commonpath([full, cwd]) != cwd:
        return (
            f"{path!r} is outside the working directory ({cwd}); set allow_output_outside: true to write "
            "there"
        )
    for place in (Path(full), *Path(full).parents):
        if place.exists():
            if not place.is_dir():
                return f"{str(place)!r} is an existing file, not a directory"
            break
    return None


def code_combiners(data: Any) -> list[tuple[str, str]]:
    """Find the custom combiners of a manifest: code that the workflow imports and runs.

    Parameters
    ----------
    data : dict or Manifest
        The manifest, as a mapping or validated.

    Returns
    -------
    list of (str, str)
        ``(field path, combiner)`` of every custom ``module:function`` combiner.
    """
    if isinstance(data, Manifest):
        groups = {k: {"combiner": v.combiner} for k, v in data.combine.items()}
    else:
        groups = as_mapping(as_mapping(data).get("combine"))
    found = []
    for key, spec in groups.items():
        combiner = as_mapping(spec).get("combiner")
        if isinstance(combiner, str) and ":" in combiner:
            found.append((f"combine.{key}.combiner", combiner))
    return found


def _looks_like_path(ref: str) -> bool:
    return "://" in ref or "/" in ref or ref.endswith((".fits", ".fits.gz"))


def validate_manifest(data: Any) -> Manifest:
    """Validate a manifest mapping.

    Raises
    ------
    ManifestError
        Listing every problem (:class:`~skycut.exceptions.ManifestError`).
    """
    if not isinstance(data, dict):
        raise ManifestError([("<manifest>", "the manifest must be a mapping of sections", data)])
    try:
        return Manifest.model_validate(data)
    except ValidationError as exc:
        raise ManifestError(problems_from(exc, Manifest)) from None


def load_manifest(path: str | os.PathLike) -> Manifest:
    """Read a manifest file safely and validate it.

    The file is read by :func:`skycut.pipeline.manifest_file.read_manifest_file`: plain YAML, bounded size and
    alias expansion, no duplicate keys, not empty.
    """
    return validate_manifest(read_manifest_file(path))


def json_schema() -> dict:
    """Return the JSON Schema of the manifest (what ``schemas/manifest.schema.json`` holds)."""
    schema = Manifest.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://skycut.invalid/schemas/manifest.schema.json"
    schema["title"] = "skycut manifest"
    return schema
