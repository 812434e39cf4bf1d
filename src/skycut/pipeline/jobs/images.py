"""Image cutouts of one (input set, target batch): FITS and Roman ASDF, one output file per target."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...core.atomic import atomic_output, write_hdulist
from ...core.batch import BatchResult
from ...exceptions import InvalidQueryError
from ..options import fill, fsspec_kwargs
from .index import finish

if TYPE_CHECKING:  # pragma: no cover
    from ..sections import InputSet
    from ..targets import Target

log = logging.getLogger(__name__)


def cut_images(files: list[str], targets: list[Target], spec: InputSet, index_path: str) -> dict[str, Any]:
    """Cut every target from an input set; one output file per target (several for ASDF sets), beside the index.

    Files are named by the target's slug (:func:`skycut.pipeline.names.slugify`), the index keyed by its name.
    FITS: ``{target}.fits`` holds one CUTOUT HDU per (file, extension) that contains the target.
    ASDF: ``{target}.asdf`` (``{target}_{k}.asdf`` when the set has several files; ``.fits`` with
    ``output_format: fits``).

    Parameters
    ----------
    files : list of str
        The input set's resolved files (local paths or URIs).
    targets : list of Target
        The batch's targets (resolved ICRS ``ra``/``dec`` in degrees and ``size``).
    spec : InputSet
        The manifest's input set (format, extensions, fill value, ASDF options, fsspec options).
    index_path : str
        The job's JSON index (:mod:`skycut.pipeline.jobs.index`).

    Returns
    -------
    dict
        The index. A target that misses every image is skipped with the reason. FITS sets go through
        :func:`skycut.image.fits_batch.cut_fits_targets` (each image read once per batch); a target whose cutout
        fails (an unreadable file, a bad option) fails the job (:class:`~.index.BatchFailedError`, no index)
        after the other targets are cut.
    """
    out = Path(index_path).parent
    options = fsspec_kwargs(spec.fsspec)
    if spec.format == "fits":
        from ...image.fits_batch import cut_fits_targets
        from ..names import object_name

        result = cut_fits_targets(
            files,
            [(t.name, (t.ra, t.dec), t.size) for t in targets],
            [out / f"{t.slug}.fits" for t in targets],
            extension=spec.extensions,
            fill_value=fill(spec.fill_value),
            fsspec_kwargs=options,
            object_names={t.name: object_name(t.name) for t in targets},
        )
    else:
        result = BatchResult()
        for target in targets:
            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    paths = _cut_asdf(
                        files, (target.ra, target.dec), target.size, out, target.slug, spec, options
                    )
                for w in caught:
                    log.warning("%s: %s", target.name, w.message)
            except InvalidQueryError as exc:
                result.skip(target.name, str(exc))
                continue
            result.add(target.name, paths)
    log.info(
        "cut %d targets (%d skipped, %d failed) from %d file(s)",
        len(result.written),
        len(result.skipped),
        len(result.failed),
        len(files),
    )
    return finish(index_path, result)


def _cut_asdf(files, coord, size, out: Path, stem: str, spec: InputSet, options) -> list[str]:
    from ...image.asdf_cutout import ASDFCutout

    output_format = spec.output_format or "asdf"
    cutout = ASDFCutout(
        files, coord, size, fill_value=fill(spec.fill_value), lite=spec.lite, fsspec_kwargs=options
    )
    pieces = list(cutout.iter_asdf_cutouts() if output_format == "asdf" else cutout.iter_fits_cutouts())
    written = []
    for k, (_file, _coord, obj) in enumerate(pieces):
        path = out / (f"{stem}.{output_format}" if len(pieces) == 1 else f"{stem}_{k}.{output_format}")
        if output_format == "asdf":
            meta = obj.tree.get("roman", {}).get("meta")
            if meta is not None and "filename" in meta:
                meta["filename"] = path.name  # roman_datamodels checks it against the file's name
            with atomic_output(path) as tmp:
                obj.write_to(tmp)
        else:
            write_hdulist(obj, path)
        written.append(str(path))
    return written
