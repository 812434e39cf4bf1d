"""The end of a run: per stage, the products made, the targets skipped and why, and the jobs that failed.

The Snakefile's ``onsuccess``/``onerror`` handlers call :func:`finish_run`: it reads the index of every planned
job (:meth:`skycut.pipeline.plan.Plan.index_outputs`) and the declared products (cubes, moving targets), writes
the table ``<output_dir>/summary.tsv`` atomically (one row per item; not a declared output, so it never makes a
job rerun) and returns the lines to print and the run's exit status: non-zero when a job failed, or when
``fail_on_skip`` is set and a target was skipped.

``summary.tsv`` has the columns ``stage`` (the rule), ``job`` (its index or product, relative to ``output_dir``),
``item`` (a target, a cube, a moving target), ``status`` (``made``, ``skipped``, ``failed``) and ``detail``
(the number of files made, the reason of a skip, or why a job counts as failed), sorted by stage, job and item.
"""

from __future__ import annotations

import logging
import posixpath
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..core.atomic import atomic_output
from .jobs.index import read_index

if TYPE_CHECKING:  # pragma: no cover
    from .plan import Plan

log = logging.getLogger(__name__)

#: The summary table, relative to ``output_dir``.
SUMMARY_FILE = "summary.tsv"
COLUMNS = ("stage", "job", "item", "status", "detail")
NOT_MADE = "not made: its job failed or did not run (see its log under logs/)"


@dataclass(frozen=True)
class SummaryRow:
    """One item of one job: made (``detail``: how many files), skipped (the reason) or failed (why)."""

    stage: str
    job: str
    item: str
    status: str
    detail: str


def collect(plan: Plan) -> list[SummaryRow]:
    """Every item of every planned job, read from the indexes and declared products on disk.

    A job whose index (or declared product) is missing counts as one ``failed`` row (a job with failed items
    writes no index: :func:`skycut.pipeline.jobs.index.finish`).

    Parameters
    ----------
    plan : Plan
        The run's plan.

    Returns
    -------
    list of SummaryRow
        Sorted by stage (in the order of the workflow), job and item.
    """
    rows: list[SummaryRow] = []
    rel = _relative_to(plan.out)
    for stage, index in plan.index_outputs():
        if not posixpath.exists(index):
            rows.append(SummaryRow(stage, rel(index), "", "failed", NOT_MADE))
            continue
        data = read_index(index)
        rows += [
            SummaryRow(stage, rel(index), item, "made", f"{len(files)} file(s)")
            for item, files in data.get("products", {}).items()
        ]
        rows += [
            SummaryRow(stage, rel(index), item, "skipped", reason)
            for item, reason in data.get("skipped", {}).items()
        ]
    declared = [("cube", plan.cube_path(c), c) for c in plan.manifest.cubes]
    declared += [("moving_target", plan.path_output(p), p) for p in plan.manifest.paths]
    for stage, path, item in declared:
        made = posixpath.exists(path)
        rows.append(
            SummaryRow(
                stage, rel(path), item, "made" if made else "failed", "1 file(s)" if made else NOT_MADE
            )
        )
    order = {stage: k for k, stage in enumerate(dict.fromkeys(r.stage for r in rows))}
    return sorted(rows, key=lambda r: (order[r.stage], r.job, r.item))


def _relative_to(out: str):
    def rel(path: str) -> str:
        return path if out == "." else posixpath.relpath(path, out)

    return rel


def write_summary(rows: list[SummaryRow], path: str | Path) -> Path:
    """Write ``rows`` as a tab-separated table with a header line, atomically.

    Tabs and line breaks inside a value become spaces.
    """

    def clean(value: str) -> str:
        return " ".join(str(value).split())

    lines = ["\t".join(COLUMNS)] + ["\t".join(clean(getattr(r, c)) for c in COLUMNS) for r in rows]
    with atomic_output(path) as tmp:
        Path(tmp).write_text("\n".join(lines) + "\n")
    return Path(path)


def format_summary(rows: list[SummaryRow]) -> list[str]:
    """Format the summary's lines.

    Per stage, one line of counts (products made, targets skipped, jobs failed), then one line per skipped
    target with its reason and one per failed job.
    """
    lines = []
    for stage in dict.fromkeys(r.stage for r in rows):
        mine = [r for r in rows if r.stage == stage]
        count = {s: sum(r.status == s for r in mine) for s in ("made", "skipped", "failed")}
        lines.append(f"{stage}: {count['made']} made, {count['skipped']} skipped, {count['failed']} failed")
        lines += [f"  skipped {r.item} ({r.job}): {r.detail}" for r in mine if r.status == "skipped"]
        lines += [f"  failed {r.job}: {r.detail}" for r in mine if r.status == "failed"]
    return lines


def finish_run(plan: Plan, *, succeeded: bool) -> tuple[list[str], int]:
    """Summarise a finished run: write ``<output_dir>/summary.tsv`` and return what to print and the exit status.

    Parameters
    ----------
    plan : Plan
        The run's plan (its manifest's ``fail_on_skip`` decides whether skips fail the run).
    succeeded : bool
        Whether Snakemake finished every job (the ``onsuccess`` handler) or not (``onerror``).

    Returns
    -------
    lines : list of str
        The summary (:func:`format_summary`), the table's path and, when the run fails because of skips, why.
    status : int
        0, or 1 when ``fail_on_skip`` is set and a target was skipped (a failed run exits non-zero anyway).
    """
    rows = collect(plan)
    path = write_summary(rows, posixpath.join(plan.out, SUMMARY_FILE))
    lines = ["skycut summary:", *format_summary(rows), f"(table: {path})"]
    skipped = sum(r.status == "skipped" for r in rows)
    status = 0
    if plan.manifest.fail_on_skip and skipped:
        lines.append(f"skycut: {skipped} target(s) skipped and the manifest sets fail_on_skip: the run fails")
        status = 1
    log.info("run %s: %d rows in %s", "finished" if succeeded else "failed", len(rows), path)
    return lines, status
