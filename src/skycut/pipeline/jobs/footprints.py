"""TPFs from every cube whose FFI footprint overlaps each target (astrocut's TessFootprintCutout)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...core.batch import BatchResult
from ...exceptions import InvalidQueryError
from ..options import fill, fsspec_kwargs
from .index import finish

if TYPE_CHECKING:  # pragma: no cover
    from ..manifest import FootprintCutoutSpec, Target

log = logging.getLogger(__name__)


def footprint_cutouts(targets: list[Target], spec: FootprintCutoutSpec, index_path: str) -> dict[str, Any]:
    """TPFs for each target from every matching cube: ``{target}/<astrocut name>`` beside the index.

    The directory is named by the target's slug (:func:`skycut.pipeline.names.slugify`), the index keyed by its
    name.

    Parameters
    ----------
    targets : list of Target
        The batch's targets (resolved ICRS ``ra``/``dec`` and ``size``).
    spec : FootprintCutoutSpec
        The manifest's footprint-cutout set (sectors, footprint file, cube base URI, fill value, threads,
        fsspec options).
    index_path : str
        The job's JSON index.

    Returns
    -------
    dict
        The index; a target no cube covers is skipped with the reason.
    """
    from ...tess.footprint import TessFootprintCutout

    out = Path(index_path).parent
    options = fsspec_kwargs(spec.fsspec)
    result = BatchResult()
    for target in targets:
        try:
            cut = TessFootprintCutout((target.ra, target.dec), target.size, fill_value=fill(spec.fill_value),
                                      sequence=spec.sectors, footprint_uri=spec.footprint_uri,
                                      cube_base_uri=spec.cube_base_uri, fsspec_kwargs=options, threads=spec.threads)
        except InvalidQueryError as exc:
            result.skip(target.name, str(exc))
            continue
        result.add(target.name, cut.write_as_tpf(out / target.slug))
    return finish(index_path, result)
