"""The skycut manifest: pydantic models that are the single source of truth for a workflow run.

A manifest is a YAML file given to ``snakemake --configfile``. It declares targets, image inputs, TESS cubes
to build and cut, footprint (cloud) cutouts, moving-target paths, combine groups, rendering and the offline
demo. Every model forbids unknown keys, so a typo is an error that names the field. Cross-field checks
(references that must resolve, mutually exclusive options) report the path of the offending field too.

``schemas/manifest.schema.json`` is generated from these models (``skycut schema``).
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
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


def _custom_error(loc: tuple, kind: str, message: str, value: Any) -> InitErrorDetails:
    return InitErrorDetails(type=PydanticCustomError(kind, message), loc=loc, input=value)


def _raise_problems(title: str, problems: list[InitErrorDetails]) -> None:
    if problems:
        raise ValidationError.from_exception_data(title, problems)


def check_coordinates(value: Any) -> Any:
    """Validate one target's coordinate spec by :mod:`skycut.core.coords`' rule; return it unchanged.

    Plain decimal degrees (``"ra dec"``, ``[ra, dec]``, ``{ra, dec}`` in ICRS) need no astropy, so a 10,000-target
    manifest validates fast. Raises ``ValueError`` with a readable message.
    """
    if isinstance(value, list) and len(value) != 2:
        raise ValueError("give [ra, dec] with exactly two numbers")
    try:
        ra, _ = radec_arrays(value)
    except SkycutError as exc:
        raise ValueError(str(exc)) from None
    if len(ra) != 1:
        raise ValueError("one coordinate per target")
    return value


def check_size(value: Any) -> Any:
    """Validate a size spec by :func:`skycut.core.coords.parse_size` (positive pixels or an angle); return it."""
    if isinstance(value, list) and len(value) != 2:
        raise ValueError("a size list needs exactly two values [nx, ny]")
    try:
        parse_size(value)
    except SkycutError as exc:
        raise ValueError(str(exc)) from None
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

    @field_validator("coordinates")
    @classmethod
    def _coordinates(cls, value: Any) -> Any:
        return None if value is None else check_coordinates(value)

    @field_validator("size_given")
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

    _check_size = field_validator("size")(check_size)


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
    max_memory: float = Field(2.0, gt=0, description="Memory budget for the build, GB")


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
                ("sectors",), "missing", "the offline sector search needs `sectors` or `last_sector`: tess-point's "
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

    _check_size = field_validator("size")(check_size)

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
        "mean", description="'mean', 'median', or an importable function builder 'package.module:function'"
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
    n_ffi: int = Field(8, ge=1)
    shape: list[int] | None = Field(None, description="[rows, cols]; null = full SPOC size 2078 x 2136")


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
        return value


class Manifest(StrictModel):
    """A whole skycut run."""

    output_dir: str = Field("results", description="Root of every output (results, logs, benchmarks beside it)")
    target_defaults: TargetDefaults = Field(default_factory=TargetDefaults)
    targets: list[Target] = Field(default_factory=list)
    targets_file: str | None = Field(None, description="CSV with columns name, ra, dec[, size]; added to targets")
    inputs: dict[SafeName, InputSet] = Field(default_factory=dict)
    cubes: dict[SafeName, CubeSpec] = Field(default_factory=dict)
    cube_cutouts: dict[SafeName, CubeCutoutSpec] = Field(default_factory=dict)
    footprint_cutouts: dict[SafeName, FootprintCutoutSpec] = Field(default_factory=dict)
    paths: dict[SafeName, PathSpec] = Field(default_factory=dict)
    combine: dict[SafeName, CombineSpec] = Field(default_factory=dict)
    render: dict[SafeName, RenderSpec] = Field(default_factory=dict)
    demo: Demo | None = None

    @model_validator(mode="after")
    def _references(self) -> Manifest:
        problems: list[InitErrorDetails] = []
        if self.targets_file is not None:
            try:
                self.targets = self.targets + read_targets_file(self.targets_file)
            except (OSError, ValueError) as exc:
                problems.append(_custom_error(("targets_file",), "file", str(exc), self.targets_file))
        seen: dict[str, int] = {}
        for i, target in enumerate(self.targets):
            if target.name in seen:
                problems.append(_custom_error(("targets", i, "name"), "duplicate",
                                              f"duplicate target name (also targets[{seen[target.name]}])",
                                              target.name))
            seen.setdefault(target.name, i)
        for i, j in slug_collisions([t.name for t in self.targets]):
            if self.targets[i].name != self.targets[j].name:  # same names: reported as duplicates above
                problems.append(_custom_error(
                    ("targets", j, "name"), "slug",
                    f"target names {self.targets[i].name!r} (targets[{i}]) and {self.targets[j].name!r} "
                    f"(targets[{j}]) give the same file name {self.targets[j].slug!r}", self.targets[j].name))
        default_size = parse_size(self.target_defaults.size)
        for target in self.targets:
            if target.size_given is None:
                target._size = default_size
        sections = ("inputs", "cube_cutouts", "footprint_cutouts", "combine", "render")
        for section in sections:
            for name, spec in getattr(self, section).items():
                for j, ref in enumerate(spec.targets or []):
                    if ref not in seen:
                        problems.append(_custom_error((section, name, "targets", j), "reference",
                                                      "unknown target", ref))
        for name, spec in self.render.items():
            for j, ref in enumerate(spec.inputs):
                if ref not in self.inputs and ref not in self.combine:
                    problems.append(_custom_error(("render", name, "inputs", j), "reference",
                                                  "unknown input set or combine group", ref))
        for name, spec in self.combine.items():
            for j, ref in enumerate(spec.inputs):
                if ref not in self.inputs:
                    problems.append(_custom_error(("combine", name, "inputs", j), "reference",
                                                  "unknown input set", ref))
                elif self.inputs[ref].format != "fits":
                    problems.append(_custom_error(("combine", name, "inputs", j), "reference",
                                                  "only FITS input sets can be combined", ref))
        for section in ("cube_cutouts", "paths"):
            for name, spec in getattr(self, section).items():
                for j, ref in enumerate(spec.cubes or []):
                    if ref not in self.cubes and not _looks_like_path(ref):
                        problems.append(_custom_error((section, name, "cubes", j), "reference",
                                                      "unknown cube: not a name in `cubes` nor a path/URI", ref))
        needs_targets = [s for s in sections[:3] if getattr(self, s)]
        if needs_targets and not self.targets:
            problems.append(_custom_error(("targets",), "missing",
                                          f"{', '.join(needs_targets)} need at least one target", []))
        _raise_problems("Manifest", problems)
        return self

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


def _looks_like_path(ref: str) -> bool:
    return "://" in ref or "/" in ref or ref.endswith((".fits", ".fits.gz"))


def read_targets_file(path: str) -> list[Target]:
    """Read targets from a CSV file with columns ``name, ra, dec`` and optionally ``size`` (pixels)."""
    rows = []
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        missing = {"name", "ra", "dec"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{path}: missing column(s) {sorted(missing)}")
        for lineno, row in enumerate(reader, start=2):
            try:
                size = row.get("size") or None
                rows.append(Target(name=row["name"].strip(), coordinates=[float(row["ra"]), float(row["dec"])],
                                   size=int(size) if size else None))
            except (ValidationError, ValueError) as exc:
                raise ValueError(f"{path} line {lineno}: {exc}") from None
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
        ("list[", "dict[", "literal[", "function-after["))


def validate_manifest(data: Any) -> Manifest:
    """Validate a manifest mapping; raise :class:`~skycut.exceptions.ManifestError` listing every problem."""
    if not isinstance(data, dict):
        raise ManifestError([("<manifest>", "the manifest must be a mapping of sections", data)])
    try:
        return Manifest.model_validate(data)
    except ValidationError as exc:
        raise ManifestError(problems_from(exc)) from None


def load_manifest(path: str | Path) -> Manifest:
    """Read a YAML manifest file and validate it."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ManifestError([("<file>", f"cannot read manifest: {exc.strerror}", str(path))]) from None
    except yaml.YAMLError as exc:
        raise ManifestError([("<file>", f"not valid YAML: {exc}", str(path))]) from None
    return validate_manifest(data if data is not None else {})


def json_schema() -> dict:
    """The JSON Schema of the manifest (what ``schemas/manifest.schema.json`` holds)."""
    schema = Manifest.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://skycut.invalid/schemas/manifest.schema.json"
    schema["title"] = "skycut manifest"
    return schema
