"""The building blocks of the manifest models: field types, limits, value checks and problem reports.

Every manifest model derives from :class:`StrictModel` (unknown keys are errors). The field types here
(:data:`SafeName`, :data:`TargetName`, :data:`CoordinateSpec`, :data:`SizeSpec`) are shared by the section
models (:mod:`skycut.pipeline.sections`), the targets (:mod:`skycut.pipeline.targets`) and the
:class:`~skycut.pipeline.manifest.Manifest` itself.

Sizes and the demo's data volume are bounded by the manifest's ``limits`` section (:class:`Limits`):
:func:`check_size` and the demo models read the limits in force (:func:`current_limits`), which the manifest's
validator sets around its fields (:func:`limits_in_force`).

:func:`problems_from` turns a pydantic ``ValidationError`` into ``(field path, message, bad value)`` tuples,
suggesting the nearest valid key for a misspelt one.
"""

from __future__ import annotations

import contextlib
import contextvars
import difflib
import re
import types
import typing
from collections.abc import Iterator
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from ..core.coords import parse_size, radec_arrays
from ..exceptions import SkycutError
from .names import MAX_NAME_LENGTH, check_target_name

SAFE_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,99}$"
SafeName = Annotated[
    str,
    StringConstraints(pattern=SAFE_NAME_PATTERN),
    Field(
        description="A name used in output paths: letters, digits, '_', '.', '+', '-'; no '/', no leading '.'"
    ),
]
TargetName = Annotated[
    str,
    AfterValidator(check_target_name),
    Field(
        min_length=1,
        max_length=MAX_NAME_LENGTH,
        description="A target's display name: any printable characters ('TIC 261136679', 'NGC 1300'), no "
        "leading or trailing space; output files are named by its slug (skycut.pipeline.names.slugify)",
    ),
]

CoordinateSpec = Annotated[
    str | list[float] | dict[str, Any],
    Field(
        description="'ra dec' in degrees, a sexagesimal string ('10:00:22.7 +02:23:12.5', hours and degrees), "
        "[ra, dec] in degrees, or {ra, dec, frame} (ra/dec numbers in degrees or strings with units)."
    ),
]
SizeSpec = Annotated[
    int | str | list[int | str],
    Field(
        description="Cutout size: an int (pixels, square), [nx, ny] in FITS axis order ([200, 300] gives "
        "FITS dimensions (200, 300)), or angular strings such as '30 arcsec', '2 arcmin'."
    ),
]


class StrictModel(BaseModel):
    """Base of every manifest model: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", validate_default=True)


def schema_description(text: str | None) -> ConfigDict:
    """Return the model config that gives a model's JSON schema ``text`` as its description.

    Pydantic takes a model's description from its docstring. A model whose docstring is written for Python
    readers sets its schema's description here instead (``None``: no description), so the docstring can change
    without changing ``schemas/manifest.schema.json``.

    Parameters
    ----------
    text : str or None
        The description, or ``None`` for none.

    Returns
    -------
    ConfigDict
        ``json_schema_extra`` to merge into the model's config.
    """

    def extra(schema: dict[str, Any]) -> None:
        if text is None:
            schema.pop("description", None)
        else:
            schema["description"] = text

    return ConfigDict(json_schema_extra=extra)


# ------------------------------------------------------------------------------------------------------------
# limits

DEFAULT_MAX_CUTOUT_PIXELS = 10_000
DEFAULT_MAX_CUTOUT_DEGREES = 1.0
DEFAULT_MAX_DEMO_FFIS = 500
DEFAULT_MAX_DEMO_IMAGE_SIDE = 8192


class Limits(StrictModel):
    """Bound cutout sizes and the demo's data volume at validation.

    Bounds checked at validation, so a typo such as ``size: 1000000000`` fails at once instead of making a
    job allocate exabytes. Raise them here for a manifest that really needs more.
    """

    model_config = schema_description(
        "Bounds checked at validation, so a typo such as ``size: 1000000000`` fails at once instead of making a\n"
        "job allocate exabytes. Raise them here for a manifest that really needs more."
    )

    max_cutout_pixels: int = Field(
        DEFAULT_MAX_CUTOUT_PIXELS,
        gt=0,
        description=f"Largest cutout side in pixels, per axis (default {DEFAULT_MAX_CUTOUT_PIXELS})",
    )
    max_cutout_degrees: float = Field(
        DEFAULT_MAX_CUTOUT_DEGREES,
        gt=0,
        allow_inf_nan=False,
        description=f"Largest angular cutout side in degrees, per axis (default {DEFAULT_MAX_CUTOUT_DEGREES:g}); "
        "an angular size becomes pixels only against an image's WCS, so validation bounds it in degrees",
    )
    max_demo_ffis: int = Field(
        DEFAULT_MAX_DEMO_FFIS, gt=0, description=f"Largest demo.tess.n_ffi (default {DEFAULT_MAX_DEMO_FFIS})"
    )
    max_demo_image_side: int = Field(
        DEFAULT_MAX_DEMO_IMAGE_SIDE,
        gt=0,
        description=f"Largest rows or cols of a demo image shape (default {DEFAULT_MAX_DEMO_IMAGE_SIDE})",
    )


_DEFAULT_LIMITS = Limits()
# The limits of the manifest being validated (set by Manifest's validator around its fields), else the defaults.
_LIMITS: contextvars.ContextVar[Limits | None] = contextvars.ContextVar(
    "skycut_manifest_limits", default=None
)


def current_limits() -> Limits:
    """Return the :class:`Limits` in force: the manifest's while a manifest validates, else the defaults."""
    return _LIMITS.get() or _DEFAULT_LIMITS


@contextlib.contextmanager
def limits_in_force(limits: Limits) -> Iterator[None]:
    """Make ``limits`` the :class:`Limits` in force (:func:`current_limits`) inside the ``with`` block."""
    token = _LIMITS.set(limits)
    try:
        yield
    finally:
        _LIMITS.reset(token)


def limits_of(data: dict) -> Limits:
    """Return the limits a raw manifest mapping sets.

    The defaults where its ``limits`` section is invalid: the section's own errors are reported by the model.
    """
    try:
        return Limits.model_validate(data.get("limits") or {})
    except ValidationError:
        return _DEFAULT_LIMITS


# ------------------------------------------------------------------------------------------------------------
# value checks


def custom_error(loc: tuple, kind: str, message: str, value: Any) -> InitErrorDetails:
    """Return a pydantic error of type ``kind`` at ``loc`` with ``message``, about ``value``."""
    return InitErrorDetails(type=PydanticCustomError(kind, message), loc=loc, input=value)


def raise_problems(title: str, problems: list[InitErrorDetails]) -> None:
    """Raise one ``ValidationError`` (titled ``title``) listing ``problems``, if there are any."""
    if problems:
        raise ValidationError.from_exception_data(title, problems)


def _refuse_bool(value: Any, what: str) -> None:
    items = value if isinstance(value, list) else [value]
    if any(isinstance(v, bool) for v in items):
        raise ValueError(f"true/false is not {what}")


def check_coordinates(value: Any) -> Any:
    """Validate one target's coordinate spec by :mod:`skycut.core.coords`' rule; return it unchanged.

    Plain decimal degrees (``"ra dec"``, ``[ra, dec]``, ``{ra, dec}`` in ICRS) need no astropy, so a 10,000-target
    manifest validates fast. Runs on the value as written (before pydantic's conversions), so ``true`` is not
    taken as 1.

    Raises
    ------
    ValueError
        With a readable message.
    """
    _refuse_bool(value, "a coordinate")
    if isinstance(value, list) and len(value) != 2:
        raise ValueError("give [ra, dec] with exactly two numbers")
    try:
        ra, _ = radec_arrays(value)
    except SkycutError as exc:
        raise ValueError(str(exc)) from None
    if len(ra) != 1:
        raise ValueError("one coordinate per target")
    written = _written_ra_deg(value)
    if written is not None and not 0.0 <= written <= 360.0:
        raise ValueError(
            f"coordinates {value!r}: right ascension {written:g} degrees is outside [0, 360] (not wrapped)"
        )
    return value


def _written_ra_deg(value: Any) -> float | None:
    """Return the right ascension (or longitude) of a text coordinate as written, in degrees.

    The value before astropy wraps it into [0, 360); ``None`` for plain decimal input (already checked by
    core.coords) or text it cannot split.
    """
    if isinstance(value, dict):
        text = value.get("ra")
        if not isinstance(text, str):
            return None
    elif isinstance(value, str):
        tokens = value.replace(",", " ").split()
        try:
            float(tokens[0] if tokens else "")
            return None  # decimal degrees: core.coords checked the range
        except ValueError:
            pass
        if len(tokens) == 2:
            text = tokens[0]
        elif len(tokens) == 6:
            text = " ".join(tokens[:3])
        else:
            return None
    else:
        return None
    import warnings

    from astropy import units as u
    from astropy.coordinates import Angle

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return float(Angle(text, unit=u.hourangle).deg)
    except Exception:  # astropy raises several types; core.coords has parsed the value already
        return None


def check_size(value: Any) -> Any:
    """Validate a size spec by :func:`skycut.core.coords.parse_size` and the :class:`Limits` in force; return it.

    Runs on the value as written, so ``size: true`` is refused instead of taken as 1 pixel.
    """
    _refuse_bool(value, "a size: give pixels or an angle such as '30 arcsec'")
    if isinstance(value, list) and len(value) != 2:
        raise ValueError("a size list needs exactly two values [nx, ny]")
    limits = current_limits()
    try:
        size = parse_size(value)
    except SkycutError as exc:
        raise ValueError(str(exc)) from None
    for amount, unit in zip((size.x, size.y), size.units, strict=True):
        if unit == "pixel" and amount > limits.max_cutout_pixels:
            raise ValueError(
                f"cutout size {value!r} is {amount:g} pixels on a side, more than "
                f"limits.max_cutout_pixels ({limits.max_cutout_pixels}); raise the limit if you mean it"
            )
        if unit == "deg" and amount > limits.max_cutout_degrees:
            raise ValueError(
                f"cutout size {value!r} is {amount:g} degrees on a side, more than "
                f"limits.max_cutout_degrees ({limits.max_cutout_degrees:g}); raise the limit if you "
                "mean it"
            )
    return value


# ------------------------------------------------------------------------------------------------------------
# problem reports


def as_mapping(value: Any) -> dict:
    """Return ``value`` if it is a dict, else an empty one (for data as written, not yet validated)."""
    return value if isinstance(value, dict) else {}


def nearest(word: str, choices: Any) -> str:
    """Return ``"; did you mean 'x'?"`` for the closest of ``choices`` to ``word``, or ``""``."""
    close = difflib.get_close_matches(word, [c for c in choices if isinstance(c, str)], n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def as_init_details(err: dict) -> InitErrorDetails:
    """Return a pydantic error (from ``ValidationError.errors()``) as details to raise again with more problems."""
    detail: dict[str, Any] = {"type": err["type"], "loc": err["loc"], "input": err.get("input")}
    if "ctx" in err:
        detail["ctx"] = err["ctx"]
    try:
        ValidationError.from_exception_data("check", [detail])
    except (KeyError, TypeError, ValueError):  # a custom error kind: keep its message as written
        return custom_error(err["loc"], err["type"], err["msg"], err.get("input"))
    return detail  # type: ignore[return-value]


def format_loc(loc: tuple) -> str:
    """Format an error location as a field path: ``('targets', 2, 'coordinates') -> 'targets[2].coordinates'``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "<manifest>"


def problems_from(error: ValidationError, model: type[BaseModel]) -> list[tuple[str, str, Any]]:
    """Turn a pydantic ``ValidationError`` into ``(field path, message, bad value)`` tuples.

    Parameters
    ----------
    error : ValidationError
        What validating ``model`` raised.
    model : type of BaseModel
        The model validated, where the error locations start; an unknown key's message suggests the nearest key
        the models accept at its place.

    Returns
    -------
    list of (str, str, object)
        One per problem; a union field that failed every member gives one, not one per member.
    """
    problems = []
    for err in error.errors(include_url=False):
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and _is_union_tag(p)))
        msg = re.sub(r"^(Value error|Assertion failed), ", "", err["msg"])
        if (
            err["type"] == "string_pattern_mismatch"
            and err.get("ctx", {}).get("pattern") == SAFE_NAME_PATTERN
        ):
            msg = (
                "must be a safe name: letters, digits, '_', '.', '+', '-' (at most 100, no '/', "
                "not starting with '.'), so it cannot escape output_dir"
            )
        if err["type"] == "extra_forbidden" and loc:
            msg += _unknown_key_hint(model, loc)
        problems.append((format_loc(loc), msg, err.get("input")))
    # a union field that failed every member yields one error per member; keep the first per path+value
    unique, seen = [], set()
    for path, msg, value in problems:
        key = (path, repr(value))
        if key not in seen:
            seen.add(key)
            unique.append((path, msg, value))
    return unique


def _is_union_tag(part: str) -> bool:
    return part in {
        "[key]",
        "str",
        "int",
        "float",
        "list[float]",
        "list[int]",
        "list[str]",
        "dict[str,any]",
        "list[union[int,str]]",
        "literal['auto']",
        "literal['all']",
    } or part.startswith(
        ("list[", "dict[", "literal[", "function-after[", "function-before[", "function-wrap[")
    )


def _unknown_key_hint(model: type[BaseModel], loc: tuple) -> str:
    """Return what to say about the unknown key at ``loc``: the nearest valid key there, or why yte is not run."""
    key = loc[-1]
    if not isinstance(key, str):
        return ""
    if key == "__use_yte__" or key.startswith("?"):
        return (
            ": skycut reads a manifest as plain data and never evaluates yte templates (remove the yte "
            "markup; see 'Running manifests you did not write' in the README)"
        )
    return nearest(key, _keys_at(model, loc[:-1]))


def _keys_at(model: type[BaseModel], loc: tuple) -> list[str]:
    """List the keys the models accept at ``loc`` under ``model`` (aliases where a field has one); [] if unknown."""
    annotation: Any = model
    for part in loc:
        annotation = _step_into(annotation, part)
        if annotation is None:
            return []
    models = [m for m in _union_members(annotation) if isinstance(m, type) and issubclass(m, BaseModel)]
    return [field.alias or name for m in models for name, field in m.model_fields.items()]


def _union_members(annotation: Any) -> list[Any]:
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return _union_members(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return [m for arg in typing.get_args(annotation) for m in _union_members(arg)]
    return [annotation]


def _step_into(annotation: Any, part: Any) -> Any:
    for member in _union_members(annotation):
        origin = typing.get_origin(member)
        if isinstance(part, int) and origin is list:
            return typing.get_args(member)[0]
        if isinstance(part, str) and origin is dict:
            return typing.get_args(member)[1]
        if isinstance(part, str) and isinstance(member, type) and issubclass(member, BaseModel):
            for name, field in member.model_fields.items():
                if part in (name, field.alias):
                    return field.annotation
    return None
