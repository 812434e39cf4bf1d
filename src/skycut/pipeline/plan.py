"""Turn a validated :class:`~skycut.pipeline.manifest.Manifest` into jobs and output paths.

The Snakemake rules only wire what this module computes, so the whole plan is testable without Snakemake.
Every path the workflow writes is spelled once, in :data:`LAYOUT` (relative to ``output_dir``): the rules take
their ``output``/``log``/``benchmark`` patterns from :meth:`Plan.output_pattern` and friends, and concrete
paths (the targets of rule ``all``, the inputs one rule reads from another) come from formatting the same
patterns (:meth:`Plan.output`). A job writes its products beside its index file:

===========================================  ====================================================================
``demo/{tess,hst,roman}/...``                simulated inputs (``demo.directory`` overrides), plus
                                             ``tess/moving_target_path.ecsv`` and ``tess/tess_ffi_footprint_cache.json``
``image_cutouts/{input}/batch-NNNN.json``    index of one (input set, target batch) job
``image_cutouts/{input}/{target}.fits``      the cutouts of one target (``.asdf`` for ASDF inputs)
``combine/{group}/index.json``, ``{target}.fits``  combined cutouts
``render/{render}/index.json``, ``.../{target}.png``  images
``cubes/{cube}-cube.fits``                   TESS FFI cubes
``cube_cutouts/{spec}/{cube}/batch-NNNN.json``, ``{target}.fits``  target pixel files
``cube_cutouts/{spec}/{cube}/plots/batch-NNNN.json``, ``{target}_lightcurve.png``, ``{target}_mean.png``
``footprint_cutouts/{spec}/{cube}/batch-NNNN.json``  index of one (cube, target batch) job of an offline-planned
                                             footprint set; TPFs in ``footprint_cutouts/{spec}/{target}/``
``footprint_cutouts/{spec}/batch-NNNN.json``, ``{target}/...``  TPFs of a set matched to a footprint file
``paths/{path}.fits``                        moving-target TPFs
``paths/{path}_frames.png``, ``.gif``        their frames (a strip and an animated GIF)
``gallery/{kind}/...``                       copies of the images for ``snakemake --report``
``resolved-targets.json``                    positions of the targets given by name only, pinned when the plan is
                                             made (:mod:`skycut.pipeline.resolve`)
``logs/...``, ``benchmarks/...``             Snakemake logs and benchmark tables, mirroring the jobs
===========================================  ====================================================================

``output_dir`` is normalised (``.``, ``./results``, ``results/`` all work): paths are ``results/x``, or ``x`` for
``.``, never ``./x``, so what one rule writes and what another reads compare equal.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import glob
import math
import posixpath
import re
from dataclasses import dataclass
from functools import cache
from typing import Any

from ..core.provenance import entry_hash
from ..core.remote import is_remote
from .checks import SAFE_NAME_PATTERN
from .manifest import Manifest
from .options import fsspec_kwargs
from .resolve import resolve_targets
from .sections import CubeCutoutSpec, Demo, FootprintCutoutSpec, InputSet
from .targets import Target

BATCH_FORMAT = "batch-{:04d}"
_GLOB_CHARS = re.compile(r"[*?\[]")


@dataclass(frozen=True)
class RulePaths:
    """A rule's ``output``, ``log`` and ``benchmark`` patterns, relative to ``output_dir``, with ``{wildcards}``."""

    output: str | None
    log: str
    benchmark: str | None = None


#: Every path the workflow writes, per rule (the ``simulate`` rule's outputs are the demo files).
LAYOUT: dict[str, RulePaths] = {
    "simulate": RulePaths(None, "logs/simulate.log", "benchmarks/simulate.tsv"),
    "image_cutouts": RulePaths(
        "image_cutouts/{input_set}/{batch}.json",
        "logs/image_cutouts/{input_set}/{batch}.log",
        "benchmarks/image_cutouts/{input_set}/{batch}.tsv",
    ),
    "combine": RulePaths("combine/{name}/index.json", "logs/combine/{name}.log"),
    "render": RulePaths("render/{name}/index.json", "logs/render/{name}.log"),
    "cube": RulePaths("cubes/{cube}-cube.fits", "logs/cubes/{cube}.log", "benchmarks/cubes/{cube}.tsv"),
    "cube_cutouts": RulePaths(
        "cube_cutouts/{spec}/{cube}/{batch}.json",
        "logs/cube_cutouts/{spec}/{cube}/{batch}.log",
        "benchmarks/cube_cutouts/{spec}/{cube}/{batch}.tsv",
    ),
    "tpf_plots": RulePaths(
        "cube_cutouts/{spec}/{cube}/plots/{batch}.json", "logs/tpf_plots/{spec}/{cube}/{batch}.log"
    ),
    "footprint_cutouts": RulePaths(
        "footprint_cutouts/{spec}/{batch}.json",
        "logs/footprint_cutouts/{spec}/{batch}.log",
        "benchmarks/footprint_cutouts/{spec}/{batch}.tsv",
    ),
    "footprint_cube_cutouts": RulePaths(
        "footprint_cutouts/{spec}/{cube}/{batch}.json",
        "logs/footprint_cutouts/{spec}/{cube}/{batch}.log",
        "benchmarks/footprint_cutouts/{spec}/{cube}/{batch}.tsv",
    ),
    "moving_target": RulePaths("paths/{name}.fits", "logs/paths/{name}.log", "benchmarks/paths/{name}.tsv"),
    "path_frames": RulePaths("paths/{name}_frames.png", "logs/path_frames/{name}.log"),  # + {name}_frames.gif
    "gallery": RulePaths("gallery/{kind}", "logs/gallery.log"),  # the report's images (rules/report.smk)
}

#: The report gallery's directories, one per product kind (skycut.pipeline.jobs.gallery).
GALLERY_KINDS = ("images", "combined", "colour", "lightcurves", "mean_images", "moving_targets")

#: Files the demo writes beside its TESS FFIs for the footprint and moving-target stages.
DEMO_PATH_TABLE = "moving_target_path.ecsv"
DEMO_FOOTPRINTS = "tess_ffi_footprint_cache.json"
#: Positions of the targets given by name only (skycut.pipeline.resolve), pinned at plan time.
RESOLVED_TARGETS = "resolved-targets.json"

#: Wildcard regexes for the rules: every name wildcard obeys the manifest's one name pattern.
NAME_WILDCARD = SAFE_NAME_PATTERN.removeprefix("^").removesuffix("$")
BATCH_WILDCARD = r"batch-\d+"  # BATCH_FORMAT pads to 4 digits (5 from batch 10000 on)


def normalise_dir(path: str) -> str:
    """Return ``output_dir`` as the workflow spells it: no trailing slash, no ``./``.

    ``"."``, ``"./results"``, ``"results/"`` -> ``"."``, ``"results"``, ``"results"``.
    """
    return posixpath.normpath(path or ".")


def under(base: str, relative: str) -> str:
    """Return ``relative`` under the normalised directory ``base`` (just ``relative`` when ``base`` is ``"."``)."""
    return relative if base == "." else f"{base}/{relative}"


def batches(items: list[Any], size: int) -> list[list[Any]]:
    """Split ``items`` into consecutive batches of at most ``size`` (order kept)."""
    return [items[i : i + size] for i in range(0, len(items), size)]


def resolve_paths(patterns: list[str], known: set[str] | None = None) -> list[str]:
    """Expand local globs against the filesystem and against ``known`` (files another job will make).

    Remote URIs are kept as given; local paths and globs are normalised (``./a/b`` -> ``a/b``) so they compare
    equal to the planned outputs of other rules. The result is sorted per pattern and de-duplicated.

    Raises
    ------
    ValueError
        Naming the pattern, for a glob that matches nothing.
    """
    known = known or set()
    out: list[str] = []
    for pattern in patterns:
        if is_remote(pattern):
            out.append(pattern)
            continue
        pattern = posixpath.normpath(pattern)
        if not _GLOB_CHARS.search(pattern):
            out.append(pattern)
            continue
        matches = {posixpath.normpath(m) for m in glob.glob(pattern)} | {
            k for k in known if fnmatch.fnmatch(k, pattern)
        }
        if not matches:
            raise ValueError(f"no file matches {pattern!r}")
        out += sorted(matches)
    return list(dict.fromkeys(out))


@dataclass
class TargetJob:
    """One batch of targets for one product (an input set, a cube, ...): what its job is handed.

    ``targets`` are the manifest's :class:`~skycut.pipeline.targets.Target` objects (resolved ``ra``, ``dec``,
    ``size``); ``spec`` is the manifest section the job belongs to; ``cube`` is the cube path/URI of a
    cube-cutout job.
    """

    key: str  # the product key: input set, "spec/cube", ...
    batch: str  # "batch-0003"
    targets: list[Target]
    spec: InputSet | CubeCutoutSpec | FootprintCutoutSpec
    cube: str | None = None
    max_pixels: int | None = None  # the manifest's limits.max_cutout_pixels


@dataclass
class DemoJob:
    """What the ``simulate`` job is handed: the demo section and where its files go."""

    spec: Demo
    directory: str
    path_table: str | None  # None without a TESS section
    footprints: str | None


class Plan:
    """Everything the workflow will make, computed from a manifest.

    Parameters
    ----------
    manifest : Manifest
        A validated manifest. Its targets given by name only are resolved here, once, before any job is planned
        (:func:`skycut.pipeline.resolve.resolve_targets`: pinned positions, else the name services).

    Raises
    ------
    skycut.pipeline.resolve.TargetResolutionError
        Naming each target given by name only that is neither pinned nor resolvable.
    """

    def __init__(self, manifest: Manifest):
        self.manifest = manifest
        self.out = normalise_dir(manifest.output_dir)
        self.resolved = resolve_targets(manifest.targets, under(self.out, RESOLVED_TARGETS))  # before any job
        self._demo_files = self._demo_outputs()
        self.known_files = {f for files in self._demo_files.values() for f in files}

    # ---------------------------------------------------------------------------------------- paths
    def output_pattern(self, rule: str) -> str:
        """Return the ``output`` of ``rule`` with its ``{wildcards}`` (from :data:`LAYOUT`)."""
        pattern = LAYOUT[rule].output
        if pattern is None:
            raise KeyError(f"rule {rule!r} has no output pattern")
        return under(self.out, pattern)

    def log_pattern(self, rule: str) -> str:
        """Return the ``log`` of ``rule`` with its ``{wildcards}``."""
        return under(self.out, LAYOUT[rule].log)

    def benchmark_pattern(self, rule: str) -> str:
        """Return the ``benchmark`` of ``rule`` with its ``{wildcards}``."""
        pattern = LAYOUT[rule].benchmark
        if pattern is None:
            raise KeyError(f"rule {rule!r} has no benchmark pattern")
        return under(self.out, pattern)

    def output(self, rule: str, **wildcards: str) -> str:
        """Return the concrete output of one ``rule`` job: its pattern formatted with ``wildcards``."""
        return self.output_pattern(rule).format(**wildcards)

    def target_records(self, names: list[str] | None) -> list[Target]:
        """Return the manifest's targets named ``names`` (all targets when ``names`` is None), in that order."""
        tmap = self.manifest.target_map()
        return [tmap[n] for n in names] if names else list(self.manifest.targets)

    def _target_jobs(self, key: str, spec: Any, batch_size: int, cube: str | None = None) -> list[TargetJob]:
        return [
            TargetJob(key, BATCH_FORMAT.format(i), chunk, spec, cube, self.manifest.limits.max_cutout_pixels)
            for i, chunk in enumerate(batches(self.target_records(spec.targets), batch_size))
        ]

    # ---------------------------------------------------------------------------------------- demo
    def _demo_outputs(self) -> dict[str, list[str]]:
        demo = self.manifest.demo
        if demo is None:
            return {}
        from ..simulate import demo_file_names

        names = {
            k: [posixpath.normpath(str(p)) for p in v]
            for k, v in demo_file_names(self.demo_spec(), self.demo_dir).items()
        }
        if names.get("tess"):
            tess_dir = posixpath.dirname(names["tess"][0])
            names["tess_extras"] = [
                posixpath.join(tess_dir, DEMO_PATH_TABLE),
                posixpath.join(tess_dir, DEMO_FOOTPRINTS),
            ]
        return names

    @property
    def demo_dir(self) -> str:
        """The demo data's directory, normalised (:meth:`~skycut.pipeline.manifest.Manifest.demo_directory`)."""
        return normalise_dir(self.manifest.demo_directory())

    def demo_spec(self) -> dict[str, Any]:
        """Return the demo section as the simulator takes it (a mapping without ``directory``)."""
        return self.manifest.demo.model_dump(exclude={"directory"}) if self.manifest.demo else {}

    def demo_job(self) -> DemoJob:
        """Return what the ``simulate`` job is handed."""
        extras = self._demo_files.get("tess_extras", [None, None])
        return DemoJob(self.manifest.demo, self.demo_dir, extras[0], extras[1])

    def demo_outputs(self) -> list[str]:
        """Return every file the demo makes, sorted."""
        return sorted(self.known_files)

    # ---------------------------------------------------------------------------------------- images
    def input_files(self, name: str) -> list[str]:
        """Return the files of input set ``name``: its ``paths`` with globs expanded (:func:`resolve_paths`)."""
        return self._resolve(f"inputs.{name}.paths", self.manifest.inputs[name].paths)

    def _resolve(self, field_path: str, patterns: list[str]) -> list[str]:
        try:
            return resolve_paths(patterns, self.known_files)
        except ValueError as exc:
            raise ValueError(f"{field_path}: {exc}") from None

    def local_inputs(self, files: list[str]) -> list[str]:
        """Return the local ``files`` (remote URIs left out): what a rule can declare as input."""
        return [f for f in files if not is_remote(f)]

    @cache  # noqa: B019 - one Plan per workflow run; input functions call this per job
    def image_jobs(self) -> list[TargetJob]:
        """Return the image-cutout jobs: one per (input set, target batch)."""
        jobs = []
        for name, spec in self.manifest.inputs.items():
            jobs += self._target_jobs(name, spec, spec.batch_size)
        return jobs

    def image_job(self, input_set: str, batch: str) -> TargetJob:
        """Return the image-cutout job of ``input_set``, ``batch``."""
        return _find(self.image_jobs(), input_set, batch)

    def image_index(self, input_set: str, batch: str) -> str:
        """Return the JSON index of the image-cutout job of ``input_set``, ``batch``."""
        return self.output("image_cutouts", input_set=input_set, batch=batch)

    def image_indexes(self, input_set: str) -> list[str]:
        """Return the JSON indexes of every image-cutout job of ``input_set``."""
        return [self.image_index(j.key, j.batch) for j in self.image_jobs() if j.key == input_set]

    # ---------------------------------------------------------------------------------------- combine / render
    def combine_index(self, group: str) -> str:
        """Return the JSON index of combine group ``group``."""
        return self.output("combine", name=group)

    def combine_inputs(self, group: str) -> dict[str, list[str]]:
        """Return the index files of each input set a combine group reads (input set -> index paths, in order)."""
        return {ref: self.image_indexes(ref) for ref in self.manifest.combine[group].inputs}

    def render_index(self, name: str) -> str:
        """Return the JSON index of render set ``name``."""
        return self.output("render", name=name)

    def product_indexes(self, name: str) -> list[str]:
        """Return the index files of an input set or a combine group (what render reads)."""
        if name in self.manifest.combine:
            return [self.combine_index(name)]
        return self.image_indexes(name)

    def render_inputs(self, name: str) -> dict[str, list[str]]:
        """Return the index files of each product a render set reads.

        Returns
        -------
        dict
            Product -> index paths, in manifest order (R, G, B for a colour image).
        """
        return {ref: self.product_indexes(ref) for ref in self.manifest.render[name].inputs}

    # ---------------------------------------------------------------------------------------- cubes
    def cube_path(self, name: str) -> str:
        """Return the path of the cube ``name`` of ``cubes`` (built by the workflow)."""
        return self.output("cube", cube=name)

    def cube_files(self, name: str) -> list[str]:
        """Return the FFIs of cube ``name``: its ``files`` with globs expanded (:func:`resolve_paths`)."""
        return self._resolve(f"cubes.{name}.files", self.manifest.cubes[name].files)

    def cube_source(self, ref: str) -> str:
        """Return a cube reference (name in ``cubes`` or a path/URI) as a path/URI."""
        return self.cube_path(ref) if ref in self.manifest.cubes else ref

    @staticmethod
    def cube_key(ref: str) -> str:
        """Return a safe directory name for a cube reference."""
        stem = ref.rstrip("/").rsplit("/", 1)[-1]
        stem = re.sub(r"\.fits(\.gz)?$", "", stem)
        stem = re.sub(r"-cube$", "", stem)
        return re.sub(r"[^A-Za-z0-9_.+-]", "_", stem) or "cube"

    @cache  # noqa: B019 - one Plan per workflow run; input functions call this per job
    def cube_cutout_jobs(self) -> list[TargetJob]:
        """Return the cube-cutout jobs: one per (entry, cube, target batch), keyed ``"{spec}/{cube}"``."""
        jobs = []
        for spec_name, spec in self.manifest.cube_cutouts.items():
            for ref in spec.cubes:
                jobs += self._target_jobs(
                    f"{spec_name}/{self.cube_key(ref)}", spec, spec.batch_size, cube=self.cube_source(ref)
                )
        return jobs

    def cube_cutout_job(self, spec: str, cube: str, batch: str) -> TargetJob:
        """Return the cube-cutout job of entry ``spec``, cube key ``cube`` (:meth:`cube_key`), ``batch``."""
        return _find(self.cube_cutout_jobs(), f"{spec}/{cube}", batch)

    def cube_ref(self, spec: str, cube_key: str) -> str:
        """Return the cube reference, as the manifest writes it, of ``cube_key`` in ``cube_cutouts.<spec>``.

        Raises
        ------
        KeyError
            When no cube of the entry has that key.
        """
        for ref in self.manifest.cube_cutouts[spec].cubes:
            if self.cube_key(ref) == cube_key:
                return ref
        raise KeyError(f"cube_cutouts.{spec}: no cube {cube_key!r}")

    def cube_cutout_index(self, key: str, batch: str) -> str:
        """Return the JSON index of the cube-cutout job ``key`` (``"{spec}/{cube}"``), ``batch``."""
        spec, cube = key.split("/")
        return self.output("cube_cutouts", spec=spec, cube=cube, batch=batch)

    def tpf_plot_index(self, key: str, batch: str) -> str:
        """Return the JSON index of the TPF plots of cube-cutout job ``key`` (``"{spec}/{cube}"``), ``batch``."""
        spec, cube = key.split("/")
        return self.output("tpf_plots", spec=spec, cube=cube, batch=batch)

    # ---------------------------------------------------------------------------------------- footprints, paths
    @cache  # noqa: B019 - one Plan per workflow run; input functions call this per job
    def footprint_jobs(self) -> list[TargetJob]:
        """Return the footprint-cutout jobs.

        A set without ``footprint_uri`` is planned offline: its targets grouped per cube
        (:func:`skycut.pipeline.jobs.footprints.plan_footprint_cubes`), one job per (cube, batch) with the key
        ``"{spec}/{cube}"`` and the cube's URI; a set with a footprint file gets one job per target batch (key
        ``spec``), matched when the job runs.
        """
        from .jobs.footprints import plan_footprint_cubes

        jobs = []
        for name, spec in self.manifest.footprint_cutouts.items():
            if spec.footprint_uri is not None:
                jobs += self._target_jobs(name, spec, spec.batch_size)
                continue
            targets = self.target_records(spec.targets)
            try:
                per_cube = plan_footprint_cubes(targets, spec)
            except ValueError as exc:
                raise ValueError(f"footprint_cutouts.{name}: {exc}") from None
            for uri, group in per_cube.items():
                jobs += [
                    TargetJob(
                        f"{name}/{self.cube_key(uri)}",
                        BATCH_FORMAT.format(i),
                        chunk,
                        spec,
                        uri,
                        self.manifest.limits.max_cutout_pixels,
                    )
                    for i, chunk in enumerate(batches(group, spec.batch_size))
                ]
        return jobs

    @cache  # noqa: B019 - one Plan per workflow run; the rule's input and params functions ask per job
    def _footprint_job_map(self) -> dict[tuple[str, str], TargetJob]:
        return {(j.key, j.batch): j for j in self.footprint_jobs()}

    def footprint_job(self, key: str, batch: str) -> TargetJob:
        """Return the footprint job ``key`` (``spec`` or ``"spec/cube"``), ``batch``."""
        try:
            return self._footprint_job_map()[(key, batch)]
        except KeyError:
            raise KeyError(f"no job {key}/{batch}") from None

    def footprint_index(self, key: str, batch: str) -> str:
        """Return the JSON index of the footprint job ``key`` (``spec`` or ``"spec/cube"``), ``batch``."""
        if "/" in key:
            spec, cube = key.split("/")
            return self.output("footprint_cube_cutouts", spec=spec, cube=cube, batch=batch)
        return self.output("footprint_cutouts", spec=key, batch=batch)

    def footprint_cube_inputs(self, spec: str, cube: str, batch: str) -> list[str]:
        """Return the local cube an offline-planned footprint job reads, when it exists or the workflow builds it.

        A missing one is the job's to report: its targets are skipped, naming the cube.
        """
        uri = self.footprint_job(f"{spec}/{cube}", batch).cube
        if uri is None or is_remote(uri):
            return []
        path = posixpath.normpath(uri)
        built = {self.cube_path(c) for c in self.manifest.cubes}
        return [path] if path in built or posixpath.exists(path) else []

    def footprint_local_inputs(self, key: str) -> list[str]:
        """Return the local files a footprint job matched to a footprint file reads.

        They are a local footprint file and the manifest's own cubes under a local ``cube_base_uri`` (so the
        workflow builds them first).
        """
        spec = self.manifest.footprint_cutouts[key]
        if spec.footprint_uri is None:
            return []
        files = [] if is_remote(spec.footprint_uri) else [posixpath.normpath(spec.footprint_uri)]
        if not is_remote(spec.cube_base_uri):
            base = posixpath.normpath(spec.cube_base_uri)
            files += [
                self.cube_path(c) for c in self.manifest.cubes if posixpath.dirname(self.cube_path(c)) == base
            ]
        return files

    def path_output(self, name: str) -> str:
        """Return the moving-target TPF of path ``name``."""
        return self.output("moving_target", name=name)

    @cache  # noqa: B019 - a sectors lookup reads the footprint file; the rule asks for input and params
    def path_cubes(self, name: str) -> list[str]:
        """Return the cubes a moving target is cut from.

        They are its ``cubes``, or the cube URIs of its ``sectors`` (the sector/camera/CCDs whose footprints the
        path crosses, looked up when the job is planned: offline with tess-point's geometry, or in
        ``footprint_uri``'s file when given).
        """
        spec = self.manifest.paths[name]
        if spec.cubes is not None:
            return [self.cube_source(ref) for ref in spec.cubes]
        from ..tess.footprint import cube_uri, get_tess_sectors
        from .jobs.paths import read_path

        path = read_path(spec.table, spec.time_format)
        found = get_tess_sectors(
            path["position"],
            0,
            sequence=spec.sectors,
            footprint_uri=spec.footprint_uri,
            fsspec_kwargs=fsspec_kwargs(spec.fsspec),
        )
        return sorted({cube_uri(spec.cube_base_uri, str(n)) for n in found["sectorName"]})

    def path_inputs(self, name: str) -> dict[str, list[str]]:
        """Return the local files a moving-target job reads (the path table and local cubes)."""
        spec = self.manifest.paths[name]
        cubes = [c for c in self.path_cubes(name) if not is_remote(c)] if spec.cubes is not None else []
        return {"table": [posixpath.normpath(spec.table)], "cubes": cubes}

    # ---------------------------------------------------------------------------------------- provenance, tracking
    def provenance(self, section: str, name: str, targets: list[str] | None = None) -> dict[str, str]:
        """Return the manifest hashes of the products of one entry (:func:`skycut.core.provenance.entry_hash`).

        The entry is ``manifest.<section>[name]`` as validated (``model_dump(mode="json")``); each target is its
        entry as validated (``model_dump(mode="json", by_alias=True)``: ``name``, ``coordinates`` and ``size`` as
        written) plus ``"resolved": {"ra", "dec", "size": {"x", "y", "units", "label"}}``, the typed values the
        jobs use (so a position resolved from the name or a changed ``target_defaults.size`` changes the hash).

        Parameters
        ----------
        section, name : str
            The manifest section and the entry's name in it.
        targets : list of str, optional
            Target names; None for an entry whose product is of no single target (a cube, a moving target).

        Returns
        -------
        dict
            Target name -> hash, or ``{"": hash}`` without targets. A rule hands it to its job as a params value
            (plain strings, so Snakemake's params trigger reruns exactly the jobs whose hashes changed).
        """
        entry = getattr(self.manifest, section)[name].model_dump(mode="json")
        if targets is None:
            return {"": entry_hash(section, name, entry)}
        tmap = self.manifest.target_map()
        return {t: entry_hash(section, name, entry, target_entry(tmap[t])) for t in targets}

    def job_provenance(self, section: str, job: TargetJob) -> dict[str, str]:
        """Return the :meth:`provenance` of the targets of one batch job (the entry is ``job.key``'s first part)."""
        return self.provenance(section, job.key.split("/")[0], [t.name for t in job.targets])

    def product_targets(self, name: str) -> list[str]:
        """Return the targets whose cutouts an input set or a combine group can hold, in manifest order."""
        m = self.manifest
        if name in m.combine:
            spec = m.combine[name]
            if spec.targets:
                return list(spec.targets)
            sets = [set(self.product_targets(ref)) for ref in spec.inputs]
            return [t.name for t in m.targets if all(t.name in s for s in sets)]
        return [t.name for t in self.target_records(m.inputs[name].targets)]

    def combine_provenance(self, group: str) -> dict[str, str]:
        """Return the :meth:`provenance` of a combine group's products (its targets, or all of its inputs')."""
        return self.provenance("combine", group, self.product_targets(group))

    def render_provenance(self, name: str) -> dict[str, str]:
        """Return the :meth:`provenance` of a render set's images (its targets, or every target of its inputs)."""
        spec = self.manifest.render[name]
        names = (
            set(spec.targets)
            if spec.targets
            else {t for ref in spec.inputs for t in self.product_targets(ref)}
        )
        return self.provenance("render", name, [t.name for t in self.manifest.targets if t.name in names])

    def index_outputs(self) -> list[tuple[str, str]]:
        """Return ``(rule, index)`` of every job that writes a JSON index of its products (what a run tracks)."""
        m = self.manifest
        outs = [("image_cutouts", self.image_index(j.key, j.batch)) for j in self.image_jobs()]
        outs += [("combine", self.combine_index(g)) for g in m.combine]
        outs += [("render", self.render_index(r)) for r in m.render]
        outs += [("cube_cutouts", self.cube_cutout_index(j.key, j.batch)) for j in self.cube_cutout_jobs()]
        outs += [
            ("tpf_plots", self.tpf_plot_index(j.key, j.batch))
            for j in self.cube_cutout_jobs()
            if j.spec.plots
        ]
        outs += [
            (
                "footprint_cube_cutouts" if "/" in j.key else "footprint_cutouts",
                self.footprint_index(j.key, j.batch),
            )
            for j in self.footprint_jobs()
        ]
        return outs

    def damaged_indexes(self) -> dict[str, dict[str, str]]:
        """Find the existing indexes some of whose products are missing or changed since their job wrote them.

        Returns
        -------
        dict
            Index path -> {product: what is wrong} (:func:`skycut.pipeline.jobs.index.damaged_products`); an
            index that cannot be read maps to ``{index: "unreadable index"}``. The workflow forces these jobs
            to run again (``rules/common.smk``).
        """
        from .jobs.index import damaged_products

        damaged: dict[str, dict[str, str]] = {}
        for _rule, index in self.index_outputs():
            if not posixpath.exists(index):
                continue
            try:
                found = damaged_products(index)
            except (OSError, ValueError, KeyError, TypeError):
                found = {index: "unreadable index"}
            if found:
                damaged[index] = found
        return damaged

    # ---------------------------------------------------------------------------------------- everything
    def gallery_outputs(self) -> list[str]:
        """Return the report gallery's directories (:data:`GALLERY_KINDS`) when the manifest makes images to show."""
        m = self.manifest
        if not (m.render or m.paths or any(j.spec.plots for j in self.cube_cutout_jobs())):
            return []
        return [self.output("gallery", kind=k) for k in GALLERY_KINDS]

    def all_outputs(self) -> list[str]:
        """Return every final output of the run (rule ``all``'s input); the demo's files if there is nothing else."""
        m = self.manifest
        outs = [self.image_index(j.key, j.batch) for j in self.image_jobs()]
        outs += [self.combine_index(g) for g in m.combine]
        outs += [self.render_index(r) for r in m.render]
        outs += [self.cube_path(c) for c in m.cubes]
        outs += [self.cube_cutout_index(j.key, j.batch) for j in self.cube_cutout_jobs()]
        outs += [self.tpf_plot_index(j.key, j.batch) for j in self.cube_cutout_jobs() if j.spec.plots]
        outs += [self.footprint_index(j.key, j.batch) for j in self.footprint_jobs()]
        outs += [self.path_output(p) for p in m.paths]
        outs += [self.output("path_frames", name=p) for p in m.paths]
        outs += self.gallery_outputs()
        if not outs:
            outs = self.demo_outputs()
        return outs


def _find(jobs: list[TargetJob], key: str, batch: str) -> TargetJob:
    for job in jobs:
        if job.key == key and job.batch == batch:
            return job
    raise KeyError(f"no job {key}/{batch}")


def target_entry(target: Target) -> dict[str, Any]:
    """Return a target as :meth:`Plan.provenance` hashes it: its validated entry plus its resolved, typed values."""
    size = (
        None
        if target.size is None
        else {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(target.size).items()}
    )
    return {
        **target.model_dump(mode="json", by_alias=True),
        "resolved": {"ra": target.ra, "dec": target.dec, "size": size},
    }


def memory_mb(max_memory_gb: float) -> int:
    """Return Snakemake's ``mem_mb`` for a cube build: the budget plus the process overhead (300 MB)."""
    return int(math.ceil(max_memory_gb * 1000 + 300))
