"""The manifest's targets: :class:`Target`, :class:`TargetDefaults` and target tables (CSV or ECSV).

A target is validated once, to its final typed values (ICRS degrees, a typed cutout size), which the jobs read.
``targets_file`` adds the rows of a CSV or ECSV table (:func:`read_targets_table`) to a manifest's targets.
"""

from __future__ import annotations

import csv
import os
from typing import Any

from pydantic import Field, PrivateAttr, ValidationError, field_validator, model_validator

from ..core.coords import CutoutSize, parse_size, radec_arrays
from ..exceptions import ManifestError
from .checks import (
    CoordinateSpec,
    SizeSpec,
    StrictModel,
    TargetName,
    check_coordinates,
    check_size,
    problems_from,
    schema_description,
)
from .names import slugify


class Target(StrictModel):
    """A position on the sky to cut around."""

    # Validation resolves the target once to its final typed values, which the jobs read:
    # * ``ra``, ``dec``: ICRS degrees (floats), whatever form ``coordinates`` was written in;
    # * ``size``: a skycut.core.coords.CutoutSize, with ``target_defaults.size`` applied when the target is part
    #   of a Manifest (``None`` for a target without a size outside a manifest).
    # ``coordinates`` and ``size_given`` (the ``size`` key) keep what the user wrote. (Comments, not the
    # docstring: the docstring is the JSON schema's description.)

    name: TargetName
    coordinates: CoordinateSpec | None = Field(
        None,
        description="Omit to resolve the name at plan time (TIC names through MAST, others through "
        "Sesame), pinned in <output_dir>/resolved-targets.json",
    )
    size_given: SizeSpec | None = Field(
        None, alias="size", title="Size", description="Overrides target_defaults.size"
    )

    _ra: float = PrivateAttr(float("nan"))
    _dec: float = PrivateAttr(float("nan"))
    _size: CutoutSize | None = PrivateAttr(None)

    @field_validator("coordinates", mode="before")
    @classmethod
    def _coordinates(cls, value: Any) -> Any:
        return None if value is None else check_coordinates(value)

    @field_validator("size_given", mode="before")
    @classmethod
    def _size_given(cls, value: Any) -> Any:
        return None if value is None else check_size(value)

    @model_validator(mode="after")
    def _resolve(self) -> Target:
        if self.coordinates is not None:  # else NaN until skycut.pipeline.resolve sets them
            ra, dec = radec_arrays(self.coordinates)  # already validated: cannot fail
            self._ra, self._dec = float(ra[0]), float(dec[0])
        self._size = None if self.size_given is None else parse_size(self.size_given)
        return self

    def set_resolved(self, ra: float, dec: float) -> None:
        """Set the ICRS position of a target given without coordinates, resolved from its name."""
        if self.coordinates is not None:
            raise ValueError(f"target {self.name!r} has coordinates; only a name-only target is resolved")
        self._ra, self._dec = float(ra), float(dec)

    @property
    def slug(self) -> str:
        """The target's file-name stem (:func:`skycut.pipeline.names.slugify` of ``name``)."""
        return slugify(self.name)

    @property
    def ra(self) -> float:
        """ICRS right ascension in degrees, ``0 <= ra < 360`` (NaN for a name-only target not yet resolved)."""
        return self._ra

    @property
    def dec(self) -> float:
        """ICRS declination in degrees."""
        return self._dec

    @property
    def size(self) -> CutoutSize | None:
        """The resolved cutout size (``target_defaults.size`` applied inside a manifest).

        ``None`` for a target without a size outside a :class:`~skycut.pipeline.manifest.Manifest`.
        """
        return self._size


class TargetDefaults(StrictModel):
    """Defaults for every target of a manifest: the cutout ``size`` of a target that gives none."""

    model_config = schema_description(None)  # the schema gives this model no description

    size: SizeSpec = 25

    _check_size = field_validator("size", mode="before")(check_size)


# ------------------------------------------------------------------------------------------------------------
# target tables

_TABLE_COLUMNS = {"name", "ra", "dec"}


def read_targets_file(path: str | os.PathLike) -> list[Target]:
    """Read targets from a CSV or ECSV table (see :func:`read_targets_table`).

    Parameters
    ----------
    path : str or os.PathLike
        The table file.

    Returns
    -------
    list of Target
        One per row.

    Raises
    ------
    ManifestError
        Listing every bad row, each naming the file and line.
    """
    targets, _, problems = read_targets_table(path)
    if problems:
        raise ManifestError([("targets_file", message, value) for message, value in problems])
    return targets


def read_targets_table(
    path: str | os.PathLike,
) -> tuple[list[Target], list[tuple[str, str]], list[tuple[str, Any]]]:
    """Read a targets table: CSV, or ECSV (astropy) when the file starts with ``# %ECSV``.

    Columns ``name``, ``ra``, ``dec`` and optionally ``size``. ``ra``/``dec`` are degrees, or text with units or
    sexagesimal (hours, degrees), as a ``{ra, dec}`` coordinate mapping takes them (an ECSV column with a unit is
    converted to degrees); both empty means a target given by name only, resolved when the plan is made.
    ``size`` takes what a target's ``size`` takes: pixels (``11``), an angle (``30 arcsec``), or a pair written
    ``[nx, ny]`` (``"[200, 300]"`` quoted in CSV; a two-element ECSV column works too); empty means
    ``target_defaults.size``.

    Parameters
    ----------
    path : str or os.PathLike
        The table file.

    Returns
    -------
    targets : list of Target
        The good rows.
    names : list of (str, str)
        ``(name, "FILE line N")`` of every row with a name, good or bad, so a bad row's target still counts as
        defined.
    problems : list of (str, object)
        ``(message naming the file and line, bad value)`` per bad row (or one for an unreadable file).
    """
    path = str(path)
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            text = fh.read()
    except OSError as exc:
        return [], [], [(f"{path}: cannot read the targets file: {exc.strerror}", path)]
    except UnicodeDecodeError:
        return [], [], [(f"{path}: the targets file is not UTF-8 text", path)]
    try:
        rows = _ecsv_rows(path, text) if text.startswith("# %ECSV") else _csv_rows(path, text)
    except ValueError as exc:
        return [], [], [(str(exc), path)]
    targets, names, problems = [], [], []
    for lineno, row in rows:
        where = f"{path} line {lineno}"
        name = row.get("name")
        name = str(name).strip() if name is not None else ""
        if name:
            names.append((name, where))
        name_only = _blank(row.get("ra")) and _blank(row.get("dec"))  # a name to resolve, as in the YAML
        missing = [c for c in ("name", "ra", "dec") if _blank(row.get(c)) and not (name_only and c != "name")]
        if missing:
            problems.append(
                (
                    f"{where}: {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} missing",
                    {k: v for k, v in row.items() if k is not None and v is not None and v is not _MASKED},
                )
            )
            continue
        if name_only:
            coordinates = None
        else:
            ra, dec = _cell_value(row["ra"]), _cell_value(row["dec"])
            coordinates = (
                [ra, dec] if all(isinstance(v, float) for v in (ra, dec)) else {"ra": ra, "dec": dec}
            )
        size = None if _blank(row.get("size")) else _size_cell(row["size"])
        try:
            targets.append(Target(name=name, coordinates=coordinates, size=size))
        except ValidationError as exc:
            for field, message, value in problems_from(exc, Target):
                column = {"coordinates": "ra/dec", "size_given": "size"}.get(field, field)
                problems.append((f"{where}: {column}: {message}", value))
    return targets, names, problems


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or value is _MASKED


_MASKED = object()


def _cell_value(value: Any) -> Any:
    """Return a coordinate cell: a float when it is a number, else its text (sexagesimal, or with units)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    text = str(value).strip()
    try:
        return float(text)
    except ValueError:
        return text


def _size_cell(value: Any) -> Any:
    """Return a size cell as the manifest's ``size`` takes it: a number, an angle string, or ``[nx, ny]``."""
    if isinstance(value, list):
        return [_size_scalar(v) for v in value]
    text = str(value).strip()
    if text.startswith("[") and text.endswith("]"):
        return [_size_scalar(part) for part in text[1:-1].split(",")]
    return _size_scalar(text)


def _size_scalar(value: Any) -> Any:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value) if float(value).is_integer() else value
    text = str(value).strip()
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _csv_rows(path: str, text: str) -> list[tuple[int, dict[str, Any]]]:
    reader = csv.DictReader(text.splitlines())
    fields = [f.strip() for f in reader.fieldnames or []]
    missing = _TABLE_COLUMNS - set(fields)
    if missing:
        raise ValueError(f"{path}: missing column(s) {sorted(missing)} (columns: name, ra, dec[, size])")
    reader.fieldnames = fields
    rows = []
    for row in reader:
        if not any(v and v.strip() for v in row.values() if isinstance(v, str)):
            continue  # a blank line
        rows.append((reader.line_num, row))
    return rows


def _ecsv_rows(path: str, text: str) -> list[tuple[int, dict[str, Any]]]:
    import numpy as np
    from astropy.table import Table

    try:
        table = Table.read(text, format="ascii.ecsv")
    except Exception as exc:  # astropy raises several types on a malformed table
        raise ValueError(f"{path}: not a readable ECSV table ({exc})") from None
    missing = _TABLE_COLUMNS - set(table.colnames)
    if missing:
        raise ValueError(f"{path}: missing column(s) {sorted(missing)} (columns: name, ra, dec[, size])")
    data_lines = [
        i
        for i, line in enumerate(text.splitlines(), start=1)
        if line.strip() and not line.lstrip().startswith("#")
    ][1:]  # the first is the column names
    columns = {}
    for name in ("name", "ra", "dec", "size"):
        if name not in table.colnames:
            continue
        col = table[name]
        if name in ("ra", "dec") and col.unit is not None:
            from astropy import units as u

            try:
                col = col.quantity.to(u.deg).value
            except Exception as exc:  # a unit that is not an angle
                raise ValueError(f"{path}: column {name} must be an angle, not {col.unit}") from exc
        columns[name] = (col, np.ma.getmaskarray(table[name]))
    rows = []
    for i in range(len(table)):
        row: dict[str, Any] = {}
        for name, (col, mask) in columns.items():
            if mask[i].any() if np.ndim(mask[i]) else mask[i]:
                row[name] = _MASKED
                continue
            value = col[i]
            row[name] = (
                np.asarray(value).tolist()
                if np.ndim(value)
                else (value.item() if hasattr(value, "item") else value)
            )
        rows.append((data_lines[i] if i < len(data_lines) else 0, row))
    return rows
