"""The report's gallery: the workflow's images copied into one directory per product kind.

``snakemake --report`` shows only files a rule declares as outputs; the image stages declare their JSON
indexes and list their images inside them. The ``gallery`` job reads those indexes and copies every image into
``gallery/{kind}/`` (``plan.GALLERY_KINDS``) under a path whose parts name what it shows, so that
``rules/report.smk`` can flag each directory for the report with file patterns, and each image gets its
category, labels and a caption (``report/{kind}.rst``) with the target, input set and sector:

=====================================================  ==================================================
``images/{render}/{input_set}/{target}/{image}.png``   greyscale images of an input set's cutouts
``combined/{render}/{group}/{target}/{image}.png``     greyscale images of combined cutouts
``colour/{render}/{target}.png``                       colour composites
``lightcurves/{spec}/{cube}/{target}.png``             TPF light curves
``mean_images/{spec}/{cube}/{target}.png``             TPF mean images
``moving_targets/{path}/frames.png``, ``frames.gif``   moving-target frames (strip, animation)
=====================================================  ==================================================

``{target}`` is the target's file-name slug, ``{image}`` the image's own stem (``{target}`` or ``{target}_{k}``
for files with several cutouts). Images are copied (they are small), so the report never depends on files
another job may rewrite.
"""

from __future__ import annotations

import logging
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...core.atomic import atomic_output
from ..names import slugify
from .index import read_index

if TYPE_CHECKING:  # pragma: no cover
    from ..plan import Plan

log = logging.getLogger(__name__)

_SECTOR_IN_NAME = re.compile(r"s(\d{4})-(\d)-(\d)")


@dataclass
class GallerySpec:
    """What the gallery job reads and what the report's captions and labels say (from the plan).

    ``renders``: render set -> its index, whether it is colour, its inputs (R, G, B order), stretch;
    ``combined``: the combine groups; ``plots``: ``(spec, cube key, plot index)`` of each TPF-plot job;
    ``cubes``: cube key -> sector, camera, CCD (``"?"`` when unknown); ``paths``: path name -> its frames
    strip and object name; ``inputs``: input set -> its files; ``names``: target slug -> display name.
    """

    renders: dict[str, dict[str, Any]] = field(default_factory=dict)
    combined: list[str] = field(default_factory=list)
    plots: list[tuple[str, str, str]] = field(default_factory=list)
    cubes: dict[str, dict[str, Any]] = field(default_factory=dict)
    paths: dict[str, dict[str, Any]] = field(default_factory=dict)
    inputs: dict[str, str] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)

    # The report's labels of one gallery image, from the wildcards of its pattern (rules/report.smk).
    def target_name(self, slug: str) -> str:
        """Return a target's display name from its slug (the slug itself when not a manifest target)."""
        return self.names.get(slug, slug)

    def image_labels(self, wildcards: Any) -> dict[str, str]:
        """Return the labels of a rendered image of an input set (wildcards ``target``, ``input_set``, ``image``)."""
        return {
            "target": self.target_name(wildcards.target),
            "input set": wildcards.input_set,
            "image": wildcards.image,
        }

    def combined_labels(self, wildcards: Any) -> dict[str, str]:
        """Return the labels of a rendered image of a combine group (wildcards ``target``, ``group``, ``image``)."""
        return {
            "target": self.target_name(wildcards.target),
            "combined from": wildcards.group,
            "image": wildcards.image,
        }

    def colour_labels(self, wildcards: Any) -> dict[str, str]:
        """Return the labels of a colour image (wildcards ``target``, ``render``): its R, G, B inputs."""
        return {
            "target": self.target_name(wildcards.target),
            "R, G, B": ", ".join(self.renders[wildcards.render]["inputs"]),
        }

    def tpf_labels(self, wildcards: Any) -> dict[str, str]:
        """Return the labels of a TPF plot (wildcards ``target``, ``cube``): the cube's sector, camera and CCD."""
        cube = self.cubes[wildcards.cube]
        return {
            "target": self.target_name(wildcards.target),
            "cube": wildcards.cube,
            "sector": str(cube["sector"]),
            "camera/CCD": f"{cube['camera']}/{cube['ccd']}",
        }

    def path_labels(self, wildcards: Any) -> dict[str, str]:
        """Return the labels of a moving target's frames (wildcards ``path``, ``file``): its object name."""
        return {
            "path": wildcards.path,
            "object": self.paths[wildcards.path]["object"],
            "file": wildcards.file,
        }

    def files(self) -> list[str]:
        """Return every file the gallery job reads (its Snakemake input)."""
        return (
            [r["index"] for r in self.renders.values()]
            + [index for _, _, index in self.plots]
            + [p["strip"] for p in self.paths.values()]
        )


def _cube_info(plan: Plan, ref: str) -> dict[str, Any]:
    cubes = plan.manifest.cubes
    if ref in cubes:
        return {"sector": cubes[ref].sector, "camera": cubes[ref].camera, "ccd": cubes[ref].ccd}
    found = _SECTOR_IN_NAME.search(ref.rsplit("/", 1)[-1])
    if found:
        return {"sector": int(found[1]), "camera": int(found[2]), "ccd": int(found[3])}
    return {"sector": "?", "camera": "?", "ccd": "?"}


def gallery_spec(plan: Plan) -> GallerySpec:
    """Return the gallery job's spec, from the plan (see :class:`GallerySpec`)."""
    m = plan.manifest
    spec = GallerySpec(combined=list(m.combine), names={slugify(t.name): t.name for t in m.targets})
    for name, render in m.render.items():
        spec.renders[name] = {
            "index": plan.render_index(name),
            "colorize": bool(render.colorize),
            "inputs": list(render.inputs),
            "stretch": render.stretch,
        }
    for job in plan.cube_cutout_jobs():
        if not job.spec.plots:
            continue
        spec_name, cube_key = job.key.split("/")
        spec.plots.append((spec_name, cube_key, plan.tpf_plot_index(job.key, job.batch)))
        spec.cubes[cube_key] = _cube_info(plan, plan.cube_ref(spec_name, cube_key))
    for name, path in m.paths.items():
        spec.paths[name] = {"strip": plan.output("path_frames", name=name), "object": path.target or name}
    spec.inputs = {name: ", ".join(s.paths) for name, s in m.inputs.items()}
    return spec


def _copy(source: str | Path, destination: Path) -> Path:
    destination.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(destination) as tmp:
        shutil.copyfile(source, tmp)
    return destination


def build_gallery(spec: GallerySpec, directories: dict[str, str]) -> dict[str, list[Path]]:
    """Copy every image of the workflow into the gallery directories (layout in the module notes).

    Parameters
    ----------
    spec : GallerySpec
        What to read (:func:`gallery_spec`).
    directories : dict
        Product kind (``plan.GALLERY_KINDS``) -> its directory; each is created, empty when the kind has no image.

    Returns
    -------
    dict
        Kind -> the files copied.
    """
    out = {kind: Path(d) for kind, d in directories.items()}
    for d in out.values():
        d.mkdir(parents=True, exist_ok=True)
    copied: dict[str, list[Path]] = {kind: [] for kind in out}
    for render_name, render in spec.renders.items():
        products = read_index(render["index"])["products"]
        for target, files in sorted(products.items()):
            slug = slugify(target)
            for f in files:
                f = Path(f)
                if render["colorize"]:
                    dest = out["colour"] / render_name / f"{slug}{f.suffix}"
                    copied["colour"].append(_copy(f, dest))
                    continue
                product = f.parent.name  # render/{set}/{product}/{stem}.png
                kind = "combined" if product in spec.combined else "images"
                copied[kind].append(_copy(f, out[kind] / render_name / product / slug / f.name))
    for spec_name, cube_key, index in spec.plots:
        for target, files in sorted(read_index(index)["products"].items()):
            slug = slugify(target)
            for f in map(Path, files):
                kind = "lightcurves" if f.stem.endswith("_lightcurve") else "mean_images"
                copied[kind].append(_copy(f, out[kind] / spec_name / cube_key / f"{slug}.png"))
    for name, path in spec.paths.items():
        strip = Path(path["strip"])
        copied["moving_targets"].append(_copy(strip, out["moving_targets"] / name / "frames.png"))
        copied["moving_targets"].append(
            _copy(strip.with_suffix(".gif"), out["moving_targets"] / name / "frames.gif")
        )
    log.info("gallery: %s", ", ".join(f"{len(v)} {k}" for k, v in copied.items()))
    return copied
