"""Planning the fetch of byte ranges: several groups of ranges as fewer, larger requests, each byte at most once.

:func:`merge_range_groups` joins the ranges of any groups that overlap or touch and fills the small gaps between
neighbours, within the bytes the groups ask for (plus an optional slack) and a size bound per request
(:data:`MAX_MERGED_BYTES`). Pure arithmetic on ``(start, end)`` pairs, no I/O, so a plan serves a local file and
a remote one alike: the FITS row reader (:class:`skycut.core.fits_open.RangeSection`) and the ASDF reader
(:mod:`skycut.image.asdf_io`) call it, and :meth:`skycut.core.remote_file.RemoteFile.iter_range_groups` with
``merge=True`` (the cube reader's batches, :mod:`skycut.tess.cube_reader`) fetches by its plan.
:mod:`skycut.core.byte_sources` re-exports both names.
"""

from __future__ import annotations

import bisect

#: Largest range :func:`merge_range_groups` makes by joining ranges (one request's transfer stays short).
MAX_MERGED_BYTES = 1024 * 1024


def merge_range_groups(
    groups: list[list[tuple[int, int]]], max_merged: int = MAX_MERGED_BYTES, slack: float = 0.0
) -> tuple[list[tuple[int, int]], list[list[tuple[int, int, int]]]]:
    """Plan the fetch of several groups of byte ranges as fewer, larger requests, each byte at most once.

    Ranges of any groups that overlap or touch become one range; then the gaps between neighbouring ranges are
    filled, smallest first, while the bytes fetched stay within those the groups ask for in all (counting a
    byte once per group that asks for it), times ``1 + slack``: with ``slack=0`` the plan never fetches more
    than the ranges one by one would. No range grows beyond ``max_merged`` bytes by joining (ranges asked for as
    they are are kept whole).

    Parameters
    ----------
    groups : list of list of (int, int)
        ``(start, end)`` byte ranges of each group.
    max_merged : int
        Largest size of a range made by joining.
    slack : float
        Fraction of extra bytes the filled gaps may add (``0.05``: at most 5 % more than asked for).

    Returns
    -------
    fetch : list of (int, int)
        The ranges to request, ordered by the first group that needs each (so early groups complete first).
    pieces : list of list of (int, int, int)
        For each group, for each of its ranges in order, ``(fetch index, offset in that range, length)``
        (``(-1, 0, 0)`` for an empty range).
    """
    flat = sorted({(int(a), int(b)) for g in groups for a, b in g if b > a})
    asked = sum(int(b) - int(a) for g in groups for a, b in g if b > a) * (1.0 + slack)
    spans: list[list[int]] = []
    for a, b in flat:  # union of overlapping ranges (and of touching ones, within the size bound)
        if spans and (a < spans[-1][1] or (a == spans[-1][1] and b - spans[-1][0] <= max_merged)):
            spans[-1][1] = max(spans[-1][1], b)
        else:
            spans.append([a, b])
    fetched = sum(b - a for a, b in spans)
    # fill the gaps between neighbours, smallest first, within the bytes asked for and the size bound
    parent = list(range(len(spans)))
    extent = [list(x) for x in spans]

    def root(k: int) -> int:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    gaps = sorted((spans[k + 1][0] - spans[k][1], k) for k in range(len(spans) - 1))
    for gap, k in gaps:
        if fetched + gap > asked:
            break
        left, right = root(k), root(k + 1)
        if extent[right][1] - extent[left][0] > max_merged:
            continue
        parent[right] = left
        extent[left][1] = extent[right][1]
        fetched += gap
    merged = sorted({tuple(extent[root(k)]) for k in range(len(spans))})
    starts = [a for a, _ in merged]
    where: list[list[tuple[int, int, int]]] = []
    for g in groups:
        out = []
        for a, b in g:
            if b <= a:  # an empty range needs no request
                out.append((-1, 0, 0))
                continue
            j = bisect.bisect_right(starts, int(a)) - 1  # the one merged range holding [a, b)
            out.append((j, int(a) - merged[j][0], int(b) - int(a)))
        where.append(out)
    # request order: by the first group that needs each range
    order: list[int] = []
    seen: set[int] = set()
    for out in where:
        for j, _, _ in out:
            if j >= 0 and j not in seen:
                seen.add(j)
                order.append(j)
    order += [j for j in range(len(merged)) if j not in seen]
    renumber = {j: n for n, j in enumerate(order)}
    fetch = [merged[j] for j in order]
    pieces = [[(renumber[j] if j >= 0 else -1, off, n) for j, off, n in out] for out in where]
    return fetch, pieces
