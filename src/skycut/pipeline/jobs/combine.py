"""Combined cutouts: each target's FITS cutouts from several input sets combined into one.

The combining is :class:`~skycut.image.combine.CutoutsCombiner`'s.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...core.batch import BatchResult
from ..names import slugify
from ..options import fill
from .index import finish, merge_products

if TYPE_CHECKING:  # pragma: no cover
    from ..sections import CombineSpec

log = logging.getLogger(__name__)


def combine_cutouts(inputs: dict[str, list[str]], spec: CombineSpec, index_path: str) -> dict[str, Any]:
    """Combine each target's cutouts from the input sets of ``inputs`` into ``{target}.fits`` beside the index.

    Parameters
    ----------
    inputs : dict
        Input set -> its image-cutout index files, in the manifest's order.
    spec : CombineSpec
        The manifest's combine group (targets, combiner, null value).
    index_path : str
        The job's JSON index.

    Returns
    -------
    dict
        The index; a target not cut from every input set is skipped ("not cut from every input").
    """
    from ...image.combine import CutoutsCombiner, resolve_combiner

    by_product = [merge_products(paths) for paths in inputs.values()]
    common = set.intersection(*(set(p) for p in by_product)) if by_product else set()
    if spec.targets:
        common &= set(spec.targets)
    result = BatchResult()
    builder = resolve_combiner(spec.combiner)
    for target in sorted(common):
        files = [p[target][0] for p in by_product]
        comb = CutoutsCombiner(files)
        comb.build_img_combiner(builder, builder_args=[comb.input_hdulists[0], fill(spec.null_value)])
        path = Path(index_path).parent / f"{slugify(target)}.fits"  # index keys are display names
        comb.combine(str(path))
        result.add(target, [path])
    for target in sorted({t for p in by_product for t in p} - common):
        result.skip(target, "not cut from every input")
    return finish(index_path, result)
