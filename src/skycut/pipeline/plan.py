"""Turn a validated :class:`~skycut.pipeline.manifest.Manifest` into jobs and output paths.

The Snakemake rules only wire what this module computes, so the whole plan is testable without Snakemake.
Output layout under ``output_dir`` (every job writes a JSON index of what it made):

===========================================  ====================================================================
``demo/{tess,hst,roman}/...``                simulated inputs (``demo.directory`` overrides)
``image_cutouts/{input}/batch-NNNN.json``    index of one (input set, target batch) job
``image_cutouts/{input}/{target}.fits``      the cutouts of one target (``.asdf`` for ASDF inputs)
``combine/{group}/index.json``, ``{target}.fits``  combined cutouts
``render/{render}/index.json``, ``.../{target}.png``  images
``cubes/{cube}-cube.fits``                   TESS FFI cubes
``cube_cutouts/{spec}/{cube}/batch-NNNN.json``, ``{target}.fits``  target pixel files
``footprint_cutouts/{spec}/batch-NNNN.json``, ``{target}/...``  TPFs from cloud cubes
``paths/{path}.fits``                        moving-target TPFs
``logs/...``, ``benchmarks/...``             Snakemake logs and benchmark tables, mirroring the jobs
===========================================  ====================================================================
"""

from __future__ import annotations

import fnmatch
import glob
import math
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from ..core.remote import is_remote
from .manifest import FsspecOptions, Manifest, Target

BATCH_FORMAT = "batch-{:04d}"
_GLOB_CHARS = re.compile(r"[*?\[]")


def fsspec_kwargs(options: FsspecOptions | None) -> dict[str, Any] | None:
    """Manifest fsspec options as keyword arguments for the library (``None`` when nothing is set)."""
    if options is None:
        return None
    out = {k: v for k, v in options.model_dump().items() if v is not None}
    return out or None


def batches(items: list[Any], size: int) -> list[list[Any]]:
    """Split ``items`` into consecutive batches of at most ``size`` (order kept)."""
    return [items[i:i + size] for i in range(0, len(items), size)]


def resolve_paths(patterns: list[str], known: set[str] | None = None) -> list[str]:
    """Expand local globs against the filesystem and against ``known`` (files another job will make).

    Remote URIs and plain paths are kept as given. The result is sorted per pattern and de-duplicated.
    A glob that matches nothing raises ``ValueError`` naming the pattern.
    """
    known = known or set()
    out: list[str] = []
    for pattern in patterns:
        if is_remote(pattern) or not _GLOB_CHARS.search(pattern):
            out.append(pattern)
            continue
        matches = set(glob.glob(pattern)) | {k for k in known if fnmatch.fnmatch(k, pattern)}
        if not matches:
            raise ValueError(f"no file matches {pattern!r}")
        out += sorted(matches)
    return list(dict.fromkeys(out))


@dataclass
class TargetJob:
    """One batch of targets for one product (an input set, a cube, ...)."""

    key: str  # the product key: input set, "spec/cube", ...
    batch: str  # "batch-0003"
    targets: list[dict[str, Any]] = field(default_factory=list)


class Plan:
    """Everything the workflow will make, computed from a manifest.

    Parameters
    ----------
    manifest : Manifest
        A validated manifest.
    """

    def __init__(self, manifest: Manifest):
        self.manifest = manifest
        self.out = manifest.output_dir.rstrip("/") or "."
        self._demo_files = self._demo_outputs()
        self.known_files = {f for files in self._demo_files.values() for f in files}

    # ---------------------------------------------------------------------------------------- helpers
    def path(self, *parts: str) -> str:
        return str(Path(self.out, *parts))

    def log(self, *parts: str) -> str:
        return self.path("logs", *parts)

    def bench(self, *parts: str) -> str:
        return self.path("benchmarks", *parts)

    def target_records(self, names: list[str] | None) -> list[dict[str, Any]]:
        """Targets as plain dicts ``{name, coordinates, size}`` (all targets when ``names`` is None)."""
        tmap = self.manifest.target_map()
        chosen: list[Target] = [tmap[n] for n in names] if names else list(self.manifest.targets)
        return [{"name": t.name, "coordinates": t.coordinates, "size": self.manifest.size_of(t)} for t in chosen]

    def _target_jobs(self, key: str, names: list[str] | None, batch_size: int) -> list[TargetJob]:
        return [TargetJob(key, BATCH_FORMAT.format(i), chunk)
                for i, chunk in enumerate(batches(self.target_records(names), batch_size))]

    # ---------------------------------------------------------------------------------------- demo
    def _demo_outputs(self) -> dict[str, list[str]]:
        demo = self.manifest.demo
        if demo is None:
            return {}
        from ..simulate import demo_file_names
        from .products import DEMO_FOOTPRINTS, DEMO_PATH_TABLE

        names = {k: [str(p) for p in v] for k, v in demo_file_names(self.demo_spec(), self.demo_dir).items()}
        if names.get("tess"):
            tess_dir = Path(names["tess"][0]).parent
            names["tess_extras"] = [str(tess_dir / DEMO_PATH_TABLE), str(tess_dir / DEMO_FOOTPRINTS)]
        return names

    @property
    def demo_dir(self) -> str:
        return self.manifest.demo_directory()

    def demo_spec(self) -> dict[str, Any]:
        return self.manifest.demo.model_dump(exclude={"directory"}) if self.manifest.demo else {}

    def demo_outputs(self) -> list[str]:
        return sorted(self.known_files)

    # ---------------------------------------------------------------------------------------- images
    def input_files(self, name: str) -> list[str]:
        return self._resolve(f"inputs.{name}.paths", self.manifest.inputs[name].paths)

    def _resolve(self, field_path: str, patterns: list[str]) -> list[str]:
        try:
            return resolve_paths(patterns, self.known_files)
        except ValueError as exc:
            raise ValueError(f"{field_path}: {exc}") from None

    def local_inputs(self, files: list[str]) -> list[str]:
        return [f for f in files if not is_remote(f)]

    @cache  # noqa: B019 - one Plan per workflow run; input functions call this per job
    def image_jobs(self) -> list[TargetJob]:
        jobs = []
        for name, spec in self.manifest.inputs.items():
            jobs += self._target_jobs(name, spec.targets, spec.batch_size)
        return jobs

    def image_job(self, input_set: str, batch: str) -> TargetJob:
        return _find(self.image_jobs(), input_set, batch)

    def image_index(self, input_set: str, batch: str) -> str:
        return self.path("image_cutouts", input_set, f"{batch}.json")

    def image_suffix(self, input_set: str) -> str:
        spec = self.manifest.inputs[input_set]
        if spec.format == "asdf":
            return spec.output_format or "asdf"
        return "fits"

    def image_indexes(self, input_set: str) -> list[str]:
        return [self.image_index(j.key, j.batch) for j in self.image_jobs() if j.key == input_set]

    # ---------------------------------------------------------------------------------------- combine / render
    def combine_index(self, group: str) -> str:
        return self.path("combine", group, "index.json")

    def render_index(self, name: str) -> str:
        return self.path("render", name, "index.json")

    def product_indexes(self, name: str) -> list[str]:
        """Index files of an input set or a combine group (what render reads)."""
        if name in self.manifest.combine:
            return [self.combine_index(name)]
        return self.image_indexes(name)

    def render_inputs(self, name: str) -> dict[str, list[str]]:
        return {ref: self.product_indexes(ref) for ref in self.manifest.render[name].inputs}

    # ---------------------------------------------------------------------------------------- cubes
    def cube_path(self, name: str) -> str:
        return self.path("cubes", f"{name}-cube.fits")

    def cube_files(self, name: str) -> list[str]:
        return self._resolve(f"cubes.{name}.files", self.manifest.cubes[name].files)

    def cube_source(self, ref: str) -> str:
        """A cube reference (name in ``cubes`` or a path/URI) as a path/URI."""
        return self.cube_path(ref) if ref in self.manifest.cubes else ref

    @staticmethod
    def cube_key(ref: str) -> str:
        """A safe directory name for a cube reference."""
        stem = ref.rstrip("/").rsplit("/", 1)[-1]
        stem = re.sub(r"\.fits(\.gz)?$", "", stem)
        stem = re.sub(r"-cube$", "", stem)
        return re.sub(r"[^A-Za-z0-9_.+-]", "_", stem) or "cube"

    @cache  # noqa: B019 - one Plan per workflow run; input functions call this per job
    def cube_cutout_jobs(self) -> list[TargetJob]:
        jobs = []
        for spec_name, spec in self.manifest.cube_cutouts.items():
            for ref in spec.cubes:
                jobs += self._target_jobs(f"{spec_name}/{self.cube_key(ref)}", spec.targets, spec.batch_size)
        return jobs

    def cube_cutout_job(self, spec: str, cube: str, batch: str) -> TargetJob:
        return _find(self.cube_cutout_jobs(), f"{spec}/{cube}", batch)

    def cube_ref(self, spec: str, cube_key: str) -> str:
        for ref in self.manifest.cube_cutouts[spec].cubes:
            if self.cube_key(ref) == cube_key:
                return ref
        raise KeyError(f"cube_cutouts.{spec}: no cube {cube_key!r}")

    def cube_cutout_index(self, key: str, batch: str) -> str:
        return self.path("cube_cutouts", key, f"{batch}.json")

    def tpf_plot_index(self, key: str, batch: str) -> str:
        return self.path("cube_cutouts", key, "plots", f"{batch}.json")

    # ---------------------------------------------------------------------------------------- footprints, paths
    @cache  # noqa: B019 - one Plan per workflow run; input functions call this per job
    def footprint_jobs(self) -> list[TargetJob]:
        jobs = []
        for name, spec in self.manifest.footprint_cutouts.items():
            jobs += self._target_jobs(name, spec.targets, spec.batch_size)
        return jobs

    def footprint_job(self, key: str, batch: str) -> TargetJob:
        return _find(self.footprint_jobs(), key, batch)

    def footprint_index(self, key: str, batch: str) -> str:
        return self.path("footprint_cutouts", key, f"{batch}.json")

    def footprint_local_inputs(self, key: str) -> list[str]:
        """Local files a footprint job reads: a local footprint file and the manifest's own cubes under a
        local ``cube_base_uri`` (so the workflow builds them first)."""
        spec = self.manifest.footprint_cutouts[key]
        files = [] if is_remote(spec.footprint_uri) else [spec.footprint_uri]
        if not is_remote(spec.cube_base_uri):
            base = str(Path(spec.cube_base_uri))
            files += [self.cube_path(c) for c in self.manifest.cubes
                      if str(Path(self.cube_path(c)).parent) == base]
        return files

    def path_output(self, name: str) -> str:
        return self.path("paths", f"{name}.fits")

    @cache  # noqa: B019 - a sectors lookup reads the footprint file; the rule asks for input and params
    def path_cubes(self, name: str) -> list[str]:
        """Cubes a moving target is cut from: its ``cubes``, or the cube URIs of its ``sectors`` (the
        sector/camera/CCDs whose footprints the path crosses, looked up when the job is planned)."""
        spec = self.manifest.paths[name]
        if spec.cubes is not None:
            return [self.cube_source(ref) for ref in spec.cubes]
        from ..tess.footprint import cube_uri, get_tess_sectors
        from .products import read_path

        path = read_path(spec.table, spec.time_format)
        found = get_tess_sectors(path["position"], 0, sequence=spec.sectors, footprint_uri=spec.footprint_uri,
                                 fsspec_kwargs=fsspec_kwargs(spec.fsspec))
        return sorted({cube_uri(spec.cube_base_uri, str(n)) for n in found["sectorName"]})

    def path_inputs(self, name: str) -> dict[str, list[str]]:
        """Local files a moving-target job reads (the path table and local cubes)."""
        spec = self.manifest.paths[name]
        cubes = [c for c in self.path_cubes(name) if not is_remote(c)] if spec.cubes is not None else []
        return {"table": [spec.table], "cubes": cubes}

    # ---------------------------------------------------------------------------------------- everything
    def all_outputs(self) -> list[str]:
        m = self.manifest
        outs = [self.image_index(j.key, j.batch) for j in self.image_jobs()]
        outs += [self.combine_index(g) for g in m.combine]
        outs += [self.render_index(r) for r in m.render]
        outs += [self.cube_path(c) for c in m.cubes]
        outs += [self.cube_cutout_index(j.key, j.batch) for j in self.cube_cutout_jobs()]
        outs += [self.tpf_plot_index(j.key, j.batch) for j in self.cube_cutout_jobs()
                 if m.cube_cutouts[j.key.split("/")[0]].plots]
        outs += [self.footprint_index(j.key, j.batch) for j in self.footprint_jobs()]
        outs += [self.path_output(p) for p in m.paths]
        if not outs:
            outs = self.demo_outputs()
        return outs


def _find(jobs: list[TargetJob], key: str, batch: str) -> TargetJob:
    for job in jobs:
        if job.key == key and job.batch == batch:
            return job
    raise KeyError(f"no job {key}/{batch}")


def memory_mb(max_memory_gb: float) -> int:
    """Snakemake ``mem_mb`` for a cube build: the budget plus the process overhead (300 MB)."""
    return int(math.ceil(max_memory_gb * 1000 + 300))
