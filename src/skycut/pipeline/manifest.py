"""The skycut manifest: pydantic models that are the single source of truth for a workflow run.

A manifest is a YAML file given to ``skycut run`` or ``snakemake --configfile``. It declares targets, image
inputs, TESS cubes to build and cut, footprint (cloud) cutouts, moving-target paths, combine groups, rendering
and the offline demo. Every model forbids unknown keys, so a typo is an error that names the field (and suggests
the nearest valid key). Cross-field checks (references that must resolve, mutually exclusive options, where
outputs may go) report the path of the offending field too, and run even when other fields failed, so one
validation reports every problem.

Sizes and the demo's data volume are bounded by the manifest's ``limits`` section (:class:`Limits`), checked at
validation. ``output_dir`` (and ``demo.directory``) must lie inside the working directory unless the manifest sets
``allow_output_outside: true``.

``schemas/manifest.schema.json`` is generated from these models (``skycut schema``).
"""

from __future__ import annotations

import contextvars
import csv
import difflib
import os
import re
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from ..core.coords import CutoutSize, parse_size, radec_arrays
from ..exceptions import ManifestError, SkycutError
from .manifest_file import read_manifest_file
from .names import MAX_NAME_LENGTH, check_target_name, slug_collisions, slugify

SAFE_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,99}$"
SafeName = Annotated[
    str,
    StringConstraints(pattern=SAFE_NAME_PATTERN),
    Field(description="A name used in output paths: letters, digits, '_', '.', '+', '-'; no '/', no leading '.'"),
]
TargetName = Annotated[
    str,
    AfterValidator(check_target_name),
    Field(min_length=1, max_length=MAX_NAME_LENGTH,
          description="A target's display name: any printable characters ('TIC 261136679', 'NGC 1300'), no "
          "leading or trailing space; output files are named by its slug (skycut.pipeline.names.slugify)"),
]
COMBINER_PATTERN = r"^(mean|median|[A-Za-z_][\w.]*:[A-Za-z_]\w*)$"
MAST_CUBE_BASE = "s3://stpubdata/tess/public/mast/"
MAST_FOOTPRINTS = "s3://stpubdata/tess/public/footprints/tess_ffi_footprint_cache.json"

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


DEFAULT_MAX_CUTOUT_PIXELS = 10_000
DEFAULT_MAX_CUTOUT_DEGREES = 1.0
DEFAULT_MAX_DEMO_FFIS = 500
DEFAULT_MAX_DEMO_IMAGE_SIDE = 8192


class Limits(StrictModel):
    """Bounds checked at validation, so a typo such as ``size: 1000000000`` fails at once instead of making a
    job allocate exabytes. Raise them here for a manifest that really needs more."""

    max_cutout_pixels: int = Field(
        DEFAULT_MAX_CUTOUT_PIXELS, gt=0,
        description=f"Largest cutout side in pixels, per axis (default {DEFAULT_MAX_CUTOUT_PIXELS})")
    max_cutout_degrees: float = Field(
        DEFAULT_MAX_CUTOUT_DEGREES, gt=0, allow_inf_nan=False,
        description=f"Largest angular cutout side in degrees, per axis (default {DEFAULT_MAX_CUTOUT_DEGREES:g}); "
        "an angular size becomes pixels only against an image's WCS, so validation bounds it in degrees")
    max_demo_ffis: int = Field(
        DEFAULT_MAX_DEMO_FFIS, gt=0,
        description=f"Largest demo.tess.n_ffi (default {DEFAULT_MAX_DEMO_FFIS})")
    max_demo_image_side: int = Field(
        DEFAULT_MAX_DEMO_IMAGE_SIDE, gt=0,
        description=f"Largest rows or cols of a demo image shape (default {DEFAULT_MAX_DEMO_IMAGE_SIDE})")


_DEFAULT_LIMITS = Limits()
# The limits of the manifest being validated (set by Manifest's validator around its fields), else the defaults.
_LIMITS: contextvars.ContextVar[Limits | None] = contextvars.ContextVar("skycut_manifest_limits", default=None)


def current_limits() -> Limits:
    """The :class:`Limits` in force: the manifest's while a :class:`Manifest` validates, else the defaults."""
    return _LIMITS.get() or _DEFAULT_LIMITS


def _limits_of(data: dict) -> Limits:
    """The limits a raw manifest mapping sets (the defaults where its ``limits`` section is invalid: the
    section's own errors are reported by the model)."""
    try:
        return Limits.model_validate(data.get("limits") or {})
    except ValidationError:
        return _DEFAULT_LIMITS


def _custom_error(loc: tuple, kind: str, message: str, value: Any) -> InitErrorDetails:
    return InitErrorDetails(type=PydanticCustomError(kind, message), loc=loc, input=value)


def _raise_problems(title: str, problems: list[InitErrorDetails]) -> None:
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
    taken as 1. Raises ``ValueError`` with a readable message.
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
        raise ValueError(f"coordinates {value!r}: right ascension {written:g} degrees is outside [0, 360] "
                         "(not wrapped)")
    return value


def _written_ra_deg(value: Any) -> float | None:
    """The right ascension (or longitude) of a text coordinate as written, in degrees, before astropy wraps it
    into [0, 360); ``None`` for plain decimal input (already checked by core.coords) or text it cannot split."""
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
            raise ValueError(f"cutout size {value!r} is {amount:g} pixels on a side, more than "
                             f"limits.max_cutout_pixels ({limits.max_cutout_pixels}); raise the limit if you mean it")
        if unit == "deg" and amount > limits.max_cutout_degrees:
            raise ValueError(f"cutout size {value!r} is {amount:g} degrees on a side, more than "
                             f"limits.max_cutout_degrees ({limits.max_cutout_degrees:g}); raise the limit if you "
                             "mean it")
    return value


class FsspecOptions(StrictModel):
    """Options for remote (https://, s3://) inputs, passed to fsspec/s3fs."""

    anon: bool | None = Field(None, description="Anonymous S3 access; default: true unless key/secret are given")
    endpoint_url: str | None = Field(None, description="S3 endpoint, e.g. http://127.0.0.1:5000 for a local server")
    key: str | None = None
    secret: str | None = None
    token: str | None = None
    block_size: int | None = Field(None, gt=0, description="fsspec read block size in bytes")
    requester_pays: bool | None = None
    timeout: float | None = Field(None, gt=0, description="Seconds a remote request may wait to connect and for "
                                  "each answer before it fails naming the URI (default 60)")


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
        None, description="Omit to resolve the name at plan time (TIC names through MAST, others through "
        "Sesame), pinned in <output_dir>/resolved-targets.json")
    size_given: SizeSpec | None = Field(None, alias="size", title="Size", description="Overrides target_defaults.size")

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
        """The resolved cutout size (``target_defaults.size`` applied inside a :class:`Manifest`)."""
        return self._size


class TargetDefaults(StrictModel):
    size: SizeSpec = 25

    _check_size = field_validator("size", mode="before")(check_size)


class InputSet(StrictModel):
    """A named set of images (FITS or Roman ASDF) cut at the targets."""

    paths: list[str] = Field(min_length=1, description="Local paths or globs, https:// URLs or s3:// URIs")
    format: Literal["fits", "asdf"] = "fits"
    extensions: int | str | list[int | str] | None = Field(
        None, description="FITS extensions to cut: index, name, list, or 'all'; default every image HDU with a "
        "celestial WCS"
    )
    fill_value: float | None = Field(None, description="Value for pixels outside the image; default (null) NaN")
    targets: list[TargetName] | None = Field(None, description="Targets to cut (default: all)")
    batch_size: int = Field(50, gt=0, description="Targets per job")
    lite: bool = Field(False, description="ASDF only: keep just the science array and the sliced gwcs")
    output_format: Literal["fits", "asdf"] | None = Field(
        None, description="ASDF inputs: write cutouts as asdf (default) or fits"
    )
    fsspec: FsspecOptions | None = None

    @model_validator(mode="after")
    def _format_options(self) -> InputSet:
        problems = []
        if self.format == "fits" and self.lite:
            problems.append(_custom_error(("lite",), "option", "lite applies to asdf inputs only", self.lite))
        if self.format == "fits" and self.output_format == "asdf":
            problems.append(_custom_error(("output_format",), "option", "FITS inputs cannot be written as asdf",
                                          self.output_format))
        if self.format == "asdf" and self.extensions is not None:
            problems.append(_custom_error(("extensions",), "option", "extensions apply to FITS inputs only",
                                          self.extensions))
        _raise_problems("InputSet", problems)
        return self


class CubeSpec(StrictModel):
    """A TESS FFI cube to build from one sector/camera/CCD's calibrated FFIs."""

    files: list[str] = Field(min_length=1, description="FFI paths or globs (SPOC *ffic.fits)")
    sector: int = Field(gt=0)
    camera: int = Field(ge=1, le=4)
    ccd: int = Field(ge=1, le=4)
    max_memory: float = Field(2.0, gt=0, allow_inf_nan=False, description="Memory budget for the build, GB (finite)")


class CubeCutoutSpec(StrictModel):
    """Target pixel files cut from cubes (built here, or existing local/remote cube files)."""

    cubes: list[str] = Field(min_length=1, description="Names from `cubes`, or cube paths/URIs")
    targets: list[TargetName] | None = None
    fill_value: float | None = Field(None, description="Padding value; default (null) NaN")
    threads: int | Literal["auto"] = Field(1, description="Threads for remote cubes")
    batch_size: int = Field(100, gt=0, description="Targets per job (a job opens its cube once)")
    plots: bool = Field(False, description="Also a light-curve plot and a mean image (PNG) per target")
    fsspec: FsspecOptions | None = None

    @field_validator("threads")
    @classmethod
    def _threads(cls, value: Any) -> Any:
        if isinstance(value, int) and value < 1:
            raise ValueError("threads must be >= 1 or 'auto'")
        return value


class FootprintCutoutSpec(StrictModel):
    """TESS cutouts from cloud cubes matched to each target's footprint (astrocut's TessFootprintCutout)."""

    targets: list[TargetName] | None = None
    sectors: list[int] | None = Field(
        None, description="TESS sectors (astrocut's `sequence`); with the offline search, give these or last_sector")
    last_sector: int | None = Field(
        None, gt=0, description="Instead of `sectors`: every sector from 1 to this one (the last sector whose cubes "
        "MAST has released; tess-point's pointing table also holds planned sectors, whose cubes do not exist yet)")
    cube_base_uri: str = MAST_CUBE_BASE
    footprint_uri: str | None = Field(
        None, description="Default (null): the sectors, cameras and CCDs of each target are found offline from "
        "tess-point's pointings and camera geometry when the workflow is planned, and each job cuts one cube. A "
        f"footprint file (e.g. MAST's {MAST_FOOTPRINTS}) is instead matched when the job runs, one job per target "
        "batch")
    fill_value: float | None = Field(None, description="Padding value; default (null) NaN")
    threads: int | Literal["auto"] = 8
    batch_size: int = Field(25, gt=0, description="Targets per job (offline search: per job of one cube)")
    fsspec: FsspecOptions | None = None

    @field_validator("sectors")
    @classmethod
    def _sectors(cls, value: list[int] | None) -> list[int] | None:
        if value is not None and any(s <= 0 for s in value):
            raise ValueError("sectors are positive integers")
        return value

    @model_validator(mode="after")
    def _sector_bound(self) -> FootprintCutoutSpec:
        problems = []
        if self.sectors is not None and self.last_sector is not None:
            problems.append(_custom_error(("last_sector",), "exclusive", "give only one of sectors and last_sector",
                                          self.last_sector))
        elif self.footprint_uri is None and self.sectors is None and self.last_sector is None:
            problems.append(_custom_error(
                ("sectors",), "unbounded", "the offline sector search needs `sectors` or `last_sector`: tess-point's "
                "pointing table includes planned sectors whose cubes MAST has not released", None))
        _raise_problems("FootprintCutoutSpec", problems)
        return self

    def sector_list(self) -> list[int] | None:
        """The sectors to search: ``sectors``, or ``1..last_sector``, or None (every sector of the footprint file)."""
        if self.last_sector is not None:
            return list(range(1, self.last_sector + 1))
        return self.sectors


class PathSpec(StrictModel):
    """A moving target: a path table (time, ra, dec) cut from cubes or cloud sectors."""

    table: str = Field(description="CSV/ECSV file with columns time, ra, dec (degrees)")
    time_format: Literal["jd", "mjd", "btjd", "iso"] = "jd"
    size: SizeSpec = Field(description="Size of the moving cutout")
    target: str | None = Field(None, description="Object name written to the output (OBJECT)")
    cubes: list[str] | None = Field(None, description="Names from `cubes`, or cube paths/URIs")
    sectors: list[int] | None = Field(None, description="Sectors for a cloud footprint lookup")
    cube_base_uri: str = MAST_CUBE_BASE
    footprint_uri: str | None = Field(
        None, description="Default (null): the sectors' cameras and CCDs the path crosses are found offline "
        "(tess-point); or a footprint file to match against (e.g. MAST's, read when the workflow is planned)")
    fsspec: FsspecOptions | None = None

    _check_size = field_validator("size", mode="before")(check_size)

    @model_validator(mode="after")
    def _source(self) -> PathSpec:
        if (self.cubes is None) == (self.sectors is None):
            _raise_problems("PathSpec", [_custom_error(
                ("cubes",), "exclusive", "give exactly one of cubes or sectors", self.cubes)])
        return self


class CombineSpec(StrictModel):
    """Cutouts of the same targets from several input sets combined into one (astrocut's CutoutsCombiner)."""

    inputs: list[SafeName] = Field(min_length=2, description="Input sets whose cutouts are combined")
    targets: list[TargetName] | None = None
    combiner: Annotated[str, StringConstraints(pattern=COMBINER_PATTERN)] = Field(
        "mean", description="'mean', 'median', or an importable function builder 'package.module:function': "
        "that is code, run with the workflow (`skycut run` refuses it without --allow-code)"
    )
    null_value: float | None = Field(None, description="Value marking pixels without data; default (null) NaN")


class RenderSpec(StrictModel):
    """PNG/JPG images of cutouts."""

    inputs: list[SafeName] = Field(min_length=1, description="Input sets or combine groups to render")
    targets: list[TargetName] | None = None
    stretch: Literal["asinh", "sinh", "sqrt", "log", "linear"] = "asinh"
    minmax_percent: list[float] | None = Field(None, description="[low, high] percentiles; excludes minmax_value")
    minmax_value: list[float] | None = Field(None, description="[low, high] values; excludes minmax_percent")
    invert: bool = False
    colorize: bool = Field(False, description="One RGB image from exactly three inputs (R, G, B)")
    format: Literal["png", "jpg"] = "png"

    @model_validator(mode="after")
    def _options(self) -> RenderSpec:
        problems = []
        if self.minmax_percent is not None and self.minmax_value is not None:
            problems.append(_custom_error(("minmax_value",), "exclusive",
                                          "give only one of minmax_percent and minmax_value", self.minmax_value))
        for name in ("minmax_percent", "minmax_value"):
            pair = getattr(self, name)
            if pair is None:
                continue
            if len(pair) != 2 or not pair[0] < pair[1]:
                problems.append(_custom_error((name,), "interval", "needs [low, high] with low < high", pair))
            elif name == "minmax_percent" and not (0 <= pair[0] and pair[1] <= 100):
                problems.append(_custom_error((name,), "interval", "percentiles lie in [0, 100]", pair))
        if self.colorize and len(self.inputs) != 3:
            problems.append(_custom_error(("inputs",), "colorize",
                                          "colorize needs exactly three inputs (R, G, B)", self.inputs))
        _raise_problems("RenderSpec", problems)
        return self


class DemoTess(StrictModel):
    sector: int = Field(11, gt=0)
    camera: int = Field(1, ge=1, le=4)
    ccd: int = Field(1, ge=1, le=4)
    n_ffi: int = Field(8, ge=1, description="Number of FFIs, at most limits.max_demo_ffis")
    shape: list[int] | None = Field(None, description="[rows, cols]; null = full SPOC size 2078 x 2136")

    @field_validator("n_ffi")
    @classmethod
    def _n_ffi(cls, value: int) -> int:
        limit = current_limits().max_demo_ffis
        if value > limit:
            raise ValueError(f"{value} FFIs is more than limits.max_demo_ffis ({limit}); raise the limit if you "
                             "mean it")
        return value


class DemoHst(StrictModel):
    bands: list[str] = Field(default_factory=lambda: ["f435w", "f606w", "f814w"], min_length=1)
    shape: list[int] = Field(default_factory=lambda: [1000, 1000], description="[rows, cols] per skycell")


class DemoRoman(StrictModel):
    shape: list[int] = Field(default_factory=lambda: [1024, 1024], description="[rows, cols]")


class Demo(StrictModel):
    """Synthetic data made by skycut's simulator for offline runs."""

    seed: int = 0
    directory: str | None = Field(None, description="Where the data go; default <output_dir>/demo")
    tess: DemoTess | None = None
    hst: DemoHst | None = None
    roman: DemoRoman | None = None

    @field_validator("tess", "hst", "roman", mode="after")
    @classmethod
    def _shape(cls, value: Any) -> Any:
        shape = getattr(value, "shape", None)
        if shape is not None and (len(shape) != 2 or min(shape) < 16):
            raise ValueError("shape is [rows, cols], each at least 16")
        limit = current_limits().max_demo_image_side
        if shape is not None and max(shape) > limit:
            raise ValueError(f"shape {shape} has a side over limits.max_demo_image_side ({limit}); raise the limit "
                             "if you mean it")
        return value


class Manifest(StrictModel):
    """A whole skycut run."""

    output_dir: str = Field(
        "results", description="Root of every output (results, logs, benchmarks beside it); inside the working "
        "directory unless allow_output_outside is true; '~' is not expanded, so it is refused")
    allow_output_outside: bool = Field(
        False, description="Let output_dir and demo.directory lie outside the working directory (an absolute path "
        "elsewhere, '../x')")
    fail_on_skip: bool = Field(
        False, description="Fail the run (non-zero exit status, after the summary) when any target was skipped "
        "(off every image, off the CCD, not covered); by default skips are reported in <output_dir>/summary.tsv")
    limits: Limits = Field(default_factory=Limits)
    target_defaults: TargetDefaults = Field(default_factory=TargetDefaults)
    targets: list[Target] = Field(default_factory=list)
    targets_file: str | None = Field(
        None, description="CSV or ECSV table with columns name, ra, dec and optionally size; added to targets. "
        "ra/dec: degrees, or sexagesimal text (hours, degrees); size: what a target's size takes (11, "
        "'30 arcsec', '[200, 300]', '[1 arcmin, 40]'), empty for target_defaults.size")
    inputs: dict[SafeName, InputSet] = Field(default_factory=dict)
    cubes: dict[SafeName, CubeSpec] = Field(default_factory=dict)
    cube_cutouts: dict[SafeName, CubeCutoutSpec] = Field(default_factory=dict)
    footprint_cutouts: dict[SafeName, FootprintCutoutSpec] = Field(default_factory=dict)
    paths: dict[SafeName, PathSpec] = Field(default_factory=dict)
    combine: dict[SafeName, CombineSpec] = Field(default_factory=dict)
    render: dict[SafeName, RenderSpec] = Field(default_factory=dict)
    demo: Demo | None = None

    @model_validator(mode="wrap")
    @classmethod
    def _whole(cls, data: Any, handler: Any) -> Manifest:
        """Validate the fields under the manifest's limits, then the checks across fields on the data as written,
        whatever else failed: one validation reports every problem, and a target whose own fields are bad still
        counts as defined (no cascade of "unknown target" errors)."""
        if not isinstance(data, dict):
            return handler(data)
        token = _LIMITS.set(_limits_of(data))
        try:
            manifest, errors = None, []
            try:
                manifest = handler(data)
            except ValidationError as exc:
                errors = [_as_init_details(e) for e in exc.errors()]
            file_targets: list[Target] = []
            file_names: list[tuple[str, str]] = []
            if isinstance(data.get("targets_file"), str):
                file_targets, file_names, file_problems = read_targets_table(data["targets_file"])
                errors += [_custom_error(("targets_file",), "file", msg, value) for msg, value in file_problems]
            errors += _cross_field_problems(data, file_names)
            errors += _location_problems(data)
        finally:
            _LIMITS.reset(token)
        _raise_problems("Manifest", errors)
        manifest.targets = manifest.targets + file_targets
        default_size = parse_size(manifest.target_defaults.size)
        for target in manifest.targets:
            if target.size_given is None:
                target._size = default_size
        return manifest

    # convenience accessors used by the planner -------------------------------------------------------------
    def target_map(self) -> dict[str, Target]:
        return {t.name: t for t in self.targets}

    def size_of(self, target: Target) -> CutoutSize:
        """The target's resolved size (its own, else ``target_defaults.size``); the same as ``target.size``."""
        return target.size if target.size is not None else parse_size(self.target_defaults.size)

    def demo_directory(self) -> str:
        if self.demo is None:
            raise ValueError("the manifest has no demo section")
        return self.demo.directory or str(Path(self.output_dir) / "demo")


def _as_init_details(err: dict) -> InitErrorDetails:
    """A pydantic error (from ``ValidationError.errors()``) as details to raise again with more problems."""
    detail: dict[str, Any] = {"type": err["type"], "loc": err["loc"], "input": err.get("input")}
    if "ctx" in err:
        detail["ctx"] = err["ctx"]
    try:
        ValidationError.from_exception_data("check", [detail])
    except (KeyError, TypeError, ValueError):  # a custom error kind: keep its message as written
        return _custom_error(err["loc"], err["type"], err["msg"], err.get("input"))
    return detail  # type: ignore[return-value]


def _mapping(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _nearest(word: str, choices: Any) -> str:
    """``"; did you mean 'x'?"`` for the closest of ``choices`` to ``word``, or ``""``."""
    close = difflib.get_close_matches(word, [c for c in choices if isinstance(c, str)], n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


_TARGET_SECTIONS = ("inputs", "cube_cutouts", "footprint_cutouts", "combine", "render")


def _cross_field_problems(data: dict, file_names: list[tuple[str, str]]) -> list[InitErrorDetails]:
    """References between sections, duplicate target names and sections that need targets, checked on the data
    as written (``file_names``: ``(name, "file line N")`` of every targets-file row that has a name, good or bad)."""
    problems: list[InitErrorDetails] = []
    yaml_targets = data.get("targets") if isinstance(data.get("targets"), list) else []
    names: dict[str, str] = {}
    for i, target in enumerate(yaml_targets):
        name = _mapping(target).get("name")
        if not isinstance(name, str):
            continue
        if name in names:
            problems.append(_custom_error(("targets", i, "name"), "duplicate",
                                          f"duplicate target name (also {names[name]})", name))
        else:
            names[name] = f"targets[{i}]"
    for name, where in file_names:
        if name in names:
            problems.append(_custom_error(("targets_file",), "duplicate",
                                          f"{where}: duplicate target name (also {names[name]})", name))
        else:
            names[name] = where
    defined = list(names.items())  # distinct names in the order they are defined, with where
    for i, j in slug_collisions([name for name, _ in defined]):
        (first, first_where), (name, where) = defined[i], defined[j]
        problems.append(_custom_error(_where_loc(where), "slug",
                                      f"{_where_prefix(where)}target names {first!r} ({first_where}) and {name!r} "
                                      f"({where}) give the same file name {slugify(name)!r}", name))
    for section in _TARGET_SECTIONS:
        for key, spec in _mapping(data.get(section)).items():
            refs = _mapping(spec).get("targets")
            for j, ref in enumerate(refs if isinstance(refs, list) else []):
                if isinstance(ref, str) and ref not in names:
                    problems.append(_custom_error((section, key, "targets", j), "reference",
                                                  "unknown target" + _nearest(ref, names), ref))
    inputs, combine, cubes = (_mapping(data.get(k)) for k in ("inputs", "combine", "cubes"))
    for key, spec in _mapping(data.get("render")).items():
        refs = _mapping(spec).get("inputs")
        for j, ref in enumerate(refs if isinstance(refs, list) else []):
            if isinstance(ref, str) and ref not in inputs and ref not in combine:
                problems.append(_custom_error(("render", key, "inputs", j), "reference",
                                              "unknown input set or combine group" + _nearest(ref, [*inputs, *combine]),
                                              ref))
    for key, spec in combine.items():
        refs = _mapping(spec).get("inputs")
        for j, ref in enumerate(refs if isinstance(refs, list) else []):
            if not isinstance(ref, str):
                continue
            if ref not in inputs:
                problems.append(_custom_error(("combine", key, "inputs", j), "reference",
                                              "unknown input set" + _nearest(ref, inputs), ref))
            elif _mapping(inputs[ref]).get("format", "fits") != "fits":
                problems.append(_custom_error(("combine", key, "inputs", j), "reference",
                                              "only FITS input sets can be combined", ref))
    for section in ("cube_cutouts", "paths"):
        for key, spec in _mapping(data.get(section)).items():
            refs = _mapping(spec).get("cubes")
            for j, ref in enumerate(refs if isinstance(refs, list) else []):
                if isinstance(ref, str) and ref not in cubes and not _looks_like_path(ref):
                    problems.append(_custom_error((section, key, "cubes", j), "reference",
                                                  "unknown cube: not a name in `cubes` nor a path/URI"
                                                  + _nearest(ref, cubes), ref))
    needs_targets = [s for s in _TARGET_SECTIONS[:3] if _mapping(data.get(s))]
    if needs_targets and not yaml_targets and data.get("targets_file") is None:
        problems.append(_custom_error(("targets",), "missing",
                                      f"{', '.join(needs_targets)} need at least one target", []))
    return problems


def _where_loc(where: str) -> tuple:
    """The error location of a target defined at ``where`` ("targets[3]" or "FILE line N")."""
    match = re.fullmatch(r"targets\[(\d+)\]", where)
    return ("targets", int(match[1]), "name") if match else ("targets_file",)


def _where_prefix(where: str) -> str:
    return "" if where.startswith("targets[") else f"{where}: "


def _location_problems(data: dict) -> list[InitErrorDetails]:
    """``output_dir`` and ``demo.directory``: inside the working directory unless ``allow_output_outside``, no
    ``~``, not an existing file."""
    allow = data.get("allow_output_outside") is True
    places = [(("output_dir",), data.get("output_dir", "results")),
              (("demo", "directory"), _mapping(data.get("demo")).get("directory"))]
    problems = []
    for loc, value in places:
        if isinstance(value, str):
            message = output_location_problem(value, allow)
            if message:
                problems.append(_custom_error(loc, "location", message, value))
    return problems


def output_location_problem(path: str, allow_outside: bool = False) -> str | None:
    """Why ``path`` cannot be an output directory, or ``None`` when it can.

    Refused: a path starting with ``~`` (not expanded: it would become a folder named ``~``); a path outside the
    working directory (``../x``, an absolute path elsewhere) unless ``allow_outside``; a path that is, or lies
    under, an existing file.
    """
    if path.startswith("~"):
        return ("'~' is not expanded (it would make a folder named '~'): write the full path, and set "
                "allow_output_outside: true if it lies outside the working directory")
    cwd = os.getcwd()
    full = os.path.abspath(path)
    if not allow_outside and os.path.commonpath([full, cwd]) != cwd:
        return (f"{path!r} is outside the working directory ({cwd}); set allow_output_outside: true to write "
                "there")
    for place in (Path(full), *Path(full).parents):
        if place.exists():
            if not place.is_dir():
                return f"{str(place)!r} is an existing file, not a directory"
            break
    return None


def code_combiners(data: Any) -> list[tuple[str, str]]:
    """``(field path, combiner)`` of every custom ``module:function`` combiner of a manifest (mapping or
    :class:`Manifest`): code that the workflow imports and runs."""
    if isinstance(data, Manifest):
        groups = {k: {"combiner": v.combiner} for k, v in data.combine.items()}
    else:
        groups = _mapping(_mapping(data).get("combine"))
    found = []
    for key, spec in groups.items():
        combiner = _mapping(spec).get("combiner")
        if isinstance(combiner, str) and ":" in combiner:
            found.append((f"combine.{key}.combiner", combiner))
    return found


def _looks_like_path(ref: str) -> bool:
    return "://" in ref or "/" in ref or ref.endswith((".fits", ".fits.gz"))


# ------------------------------------------------------------------------------------------------------------
# target tables

_TABLE_COLUMNS = {"name", "ra", "dec"}


def read_targets_file(path: str | os.PathLike) -> list[Target]:
    """Read targets from a CSV or ECSV table (see :func:`read_targets_table`).

    Raises
    ------
    ManifestError
        Listing every bad row, each naming the file and line.
    """
    targets, _, problems = read_targets_table(path)
    if problems:
        raise ManifestError([("targets_file", message, value) for message, value in problems])
    return targets


def read_targets_table(path: str | os.PathLike) -> tuple[list[Target], list[tuple[str, str]], list[tuple[str, Any]]]:
    """Read a targets table: CSV, or ECSV (astropy) when the file starts with ``# %ECSV``.

    Columns ``name``, ``ra``, ``dec`` and optionally ``size``. ``ra``/``dec`` are degrees, or text with units or
    sexagesimal (hours, degrees), as a ``{ra, dec}`` coordinate mapping takes them (an ECSV column with a unit is
    converted to degrees); both empty means a target given by name only, resolved when the plan is made. ``size`` takes what a target's ``size`` takes: pixels (``11``), an angle
    (``30 arcsec``), or a pair written ``[nx, ny]`` (``"[200, 300]"`` quoted in CSV; a two-element ECSV column
    works too); empty means ``target_defaults.size``.

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
            problems.append((f"{where}: {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} missing",
                             {k: v for k, v in row.items() if k is not None and v is not None and v is not _MASKED}))
            continue
        if name_only:
            coordinates = None
        else:
            ra, dec = _cell_value(row["ra"]), _cell_value(row["dec"])
            coordinates = [ra, dec] if all(isinstance(v, float) for v in (ra, dec)) else {"ra": ra, "dec": dec}
        size = None if _blank(row.get("size")) else _size_cell(row["size"])
        try:
            targets.append(Target(name=name, coordinates=coordinates, size=size))
        except ValidationError as exc:
            for field, message, value in problems_from(exc):
                column = {"coordinates": "ra/dec", "size_given": "size"}.get(field, field)
                problems.append((f"{where}: {column}: {message}", value))
    return targets, names, problems


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or value is _MASKED


_MASKED = object()


def _cell_value(value: Any) -> Any:
    """A coordinate cell: a float when it is a number, else its text (sexagesimal, or with units)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    text = str(value).strip()
    try:
        return float(text)
    except ValueError:
        return text


def _size_cell(value: Any) -> Any:
    """A size cell as the manifest's ``size`` takes it: a number, an angle string, or ``[nx, ny]``."""
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
    data_lines = [i for i, line in enumerate(text.splitlines(), start=1)
                  if line.strip() and not line.lstrip().startswith("#")][1:]  # the first is the column names
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
            row[name] = np.asarray(value).tolist() if np.ndim(value) else (
                value.item() if hasattr(value, "item") else value)
        rows.append((data_lines[i] if i < len(data_lines) else 0, row))
    return rows


# ------------------------------------------------------------------------------------------------------------
# loading and error reporting


def format_loc(loc: tuple) -> str:
    """``('targets', 2, 'coordinates') -> 'targets[2].coordinates'``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "<manifest>"


def problems_from(error: ValidationError) -> list[tuple[str, str, Any]]:
    """Turn a pydantic ``ValidationError`` into ``(field path, message, bad value)`` tuples."""
    problems = []
    for err in error.errors(include_url=False):
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and _is_union_tag(p)))
        msg = re.sub(r"^(Value error|Assertion failed), ", "", err["msg"])
        if err["type"] == "string_pattern_mismatch" and err.get("ctx", {}).get("pattern") == SAFE_NAME_PATTERN:
            msg = ("must be a safe name: letters, digits, '_', '.', '+', '-' (at most 100, no '/', "
                   "not starting with '.'), so it cannot escape output_dir")
        if err["type"] == "extra_forbidden" and loc:
            msg += _unknown_key_hint(loc)
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
    return part in {"[key]", "str", "int", "float", "list[float]", "list[int]", "list[str]", "dict[str,any]",
                    "list[union[int,str]]", "literal['auto']", "literal['all']"} or part.startswith(
        ("list[", "dict[", "literal[", "function-after[", "function-before[", "function-wrap["))


def _unknown_key_hint(loc: tuple) -> str:
    """What to say about the unknown key at ``loc``: the nearest valid key there, or why yte is not run."""
    key = loc[-1]
    if not isinstance(key, str):
        return ""
    if key == "__use_yte__" or key.startswith("?"):
        return (": skycut reads a manifest as plain data and never evaluates yte templates (remove the yte "
                "markup; see 'Running manifests you did not write' in the README)")
    return _nearest(key, _keys_at(loc[:-1]))


def _keys_at(loc: tuple) -> list[str]:
    """The keys the manifest models accept at ``loc`` (aliases where a field has one); [] if none is known."""
    annotation: Any = Manifest
    for part in loc:
        annotation = _step_into(annotation, part)
        if annotation is None:
            return []
    models = [m for m in _union_members(annotation) if isinstance(m, type) and issubclass(m, BaseModel)]
    return [field.alias or name for model in models for name, field in model.model_fields.items()]


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


def validate_manifest(data: Any) -> Manifest:
    """Validate a manifest mapping; raise :class:`~skycut.exceptions.ManifestError` listing every problem."""
    if not isinstance(data, dict):
        raise ManifestError([("<manifest>", "the manifest must be a mapping of sections", data)])
    try:
        return Manifest.model_validate(data)
    except ValidationError as exc:
        raise ManifestError(problems_from(exc)) from None


def load_manifest(path: str | os.PathLike) -> Manifest:
    """Read a manifest file safely (:func:`skycut.pipeline.manifest_file.read_manifest_file`: plain YAML, bounded
    size and alias expansion, no duplicate keys, not empty) and validate it."""
    return validate_manifest(read_manifest_file(path))


def json_schema() -> dict:
    """The JSON Schema of the manifest (what ``schemas/manifest.schema.json`` holds)."""
    schema = Manifest.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://skycut.invalid/schemas/manifest.schema.json"
    schema["title"] = "skycut manifest"
    return schema
