"""The models of the manifest's sections: inputs, cubes, cutouts, paths, combining, rendering, the demo.

The sections are image inputs, cubes, cube and footprint cutouts, moving-target paths, combine groups, rendering
and the offline demo. Each section of a :class:`~skycut.pipeline.manifest.Manifest` maps names to one of these
models (the demo is one model). A model checks its own fields and the options that exclude each other; references to other sections
(targets, input sets, cubes) are checked by the manifest, which sees them all.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, field_validator, model_validator

from .checks import (
    SafeName,
    SizeSpec,
    StrictModel,
    TargetName,
    check_size,
    current_limits,
    custom_error,
    raise_problems,
    schema_description,
)

COMBINER_PATTERN = r"^(mean|median|[A-Za-z_][\w.]*:[A-Za-z_]\w*)$"
MAST_CUBE_BASE = "s3://stpubdata/tess/public/mast/"
MAST_FOOTPRINTS = "s3://stpubdata/tess/public/footprints/tess_ffi_footprint_cache.json"


class FsspecOptions(StrictModel):
    """Options for remote (https://, s3://) inputs, passed to fsspec/s3fs."""

    anon: bool | None = Field(
        None, description="Anonymous S3 access; default: true unless key/secret are given"
    )
    endpoint_url: str | None = Field(
        None, description="S3 endpoint, e.g. http://127.0.0.1:5000 for a local server"
    )
    key: str | None = None
    secret: str | None = None
    token: str | None = None
    block_size: int | None = Field(None, gt=0, description="fsspec read block size in bytes")
    requester_pays: bool | None = None
    timeout: float | None = Field(
        None,
        gt=0,
        description="Seconds a remote request may wait to connect and for "
        "each answer before it fails naming the URI (default 60)",
    )


class InputSet(StrictModel):
    """A named set of images (FITS or Roman ASDF) cut at the targets."""

    paths: list[str] = Field(min_length=1, description="Local paths or globs, https:// URLs or s3:// URIs")
    format: Literal["fits", "asdf"] = "fits"
    extensions: int | str | list[int | str] | None = Field(
        None,
        description="FITS extensions to cut: index, name, list, or 'all'; default every image HDU with a "
        "celestial WCS",
    )
    fill_value: float | None = Field(
        None, description="Value for pixels outside the image; default (null) NaN"
    )
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
            problems.append(custom_error(("lite",), "option", "lite applies to asdf inputs only", self.lite))
        if self.format == "fits" and self.output_format == "asdf":
            problems.append(
                custom_error(
                    ("output_format",), "option", "FITS inputs cannot be written as asdf", self.output_format
                )
            )
        if self.format == "asdf" and self.extensions is not None:
            problems.append(
                custom_error(
                    ("extensions",), "option", "extensions apply to FITS inputs only", self.extensions
                )
            )
        raise_problems("InputSet", problems)
        return self


class CubeSpec(StrictModel):
    """A TESS FFI cube to build from one sector/camera/CCD's calibrated FFIs."""

    files: list[str] = Field(min_length=1, description="FFI paths or globs (SPOC *ffic.fits)")
    sector: int = Field(gt=0)
    camera: int = Field(ge=1, le=4)
    ccd: int = Field(ge=1, le=4)
    max_memory: float = Field(
        2.0, gt=0, allow_inf_nan=False, description="Memory budget for the build, GB (finite)"
    )


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
        None,
        description="TESS sectors (astrocut's `sequence`); with the offline search, give these or last_sector",
    )
    last_sector: int | None = Field(
        None,
        gt=0,
        description="Instead of `sectors`: every sector from 1 to this one (the last sector whose cubes "
        "MAST has released; tess-point's pointing table also holds planned sectors, whose cubes do not exist yet)",
    )
    cube_base_uri: str = MAST_CUBE_BASE
    footprint_uri: str | None = Field(
        None,
        description="Default (null): the sectors, cameras and CCDs of each target are found offline from "
        "tess-point's pointings and camera geometry when the workflow is planned, and each job cuts one cube. A "
        f"footprint file (e.g. MAST's {MAST_FOOTPRINTS}) is instead matched when the job runs, one job per target "
        "batch",
    )
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
            problems.append(
                custom_error(
                    ("last_sector",),
                    "exclusive",
                    "give only one of sectors and last_sector",
                    self.last_sector,
                )
            )
        elif self.footprint_uri is None and self.sectors is None and self.last_sector is None:
            problems.append(
                custom_error(
                    ("sectors",),
                    "unbounded",
                    "the offline sector search needs `sectors` or `last_sector`: tess-point's "
                    "pointing table includes planned sectors whose cubes MAST has not released",
                    None,
                )
            )
        raise_problems("FootprintCutoutSpec", problems)
        return self

    def sector_list(self) -> list[int] | None:
        """Return the sectors to search.

        Returns
        -------
        list of int or None
            ``sectors``, or ``1..last_sector``, or None (every sector of the footprint file).
        """
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
        None,
        description="Default (null): the sectors' cameras and CCDs the path crosses are found offline "
        "(tess-point); or a footprint file to match against (e.g. MAST's, read when the workflow is planned)",
    )
    fsspec: FsspecOptions | None = None

    _check_size = field_validator("size", mode="before")(check_size)

    @model_validator(mode="after")
    def _source(self) -> PathSpec:
        if (self.cubes is None) == (self.sectors is None):
            raise_problems(
                "PathSpec",
                [custom_error(("cubes",), "exclusive", "give exactly one of cubes or sectors", self.cubes)],
            )
        return self


class CombineSpec(StrictModel):
    """Cutouts of the same targets from several input sets combined into one (astrocut's CutoutsCombiner)."""

    inputs: list[SafeName] = Field(min_length=2, description="Input sets whose cutouts are combined")
    targets: list[TargetName] | None = None
    combiner: Annotated[str, StringConstraints(pattern=COMBINER_PATTERN)] = Field(
        "mean",
        description="'mean', 'median', or an importable function builder 'package.module:function': "
        "that is code, run with the workflow (`skycut run` refuses it without --allow-code)",
    )
    null_value: float | None = Field(
        None, description="Value marking pixels without data; default (null) NaN"
    )


class RenderSpec(StrictModel):
    """PNG/JPG images of cutouts."""

    inputs: list[SafeName] = Field(min_length=1, description="Input sets or combine groups to render")
    targets: list[TargetName] | None = None
    stretch: Literal["asinh", "sinh", "sqrt", "log", "linear"] = "asinh"
    minmax_percent: list[float] | None = Field(
        None, description="[low, high] percentiles; excludes minmax_value"
    )
    minmax_value: list[float] | None = Field(None, description="[low, high] values; excludes minmax_percent")
    invert: bool = False
    colorize: bool = Field(False, description="One RGB image from exactly three inputs (R, G, B)")
    format: Literal["png", "jpg"] = "png"

    @model_validator(mode="after")
    def _options(self) -> RenderSpec:
        problems = []
        if self.minmax_percent is not None and self.minmax_value is not None:
            problems.append(
                custom_error(
                    ("minmax_value",),
                    "exclusive",
                    "give only one of minmax_percent and minmax_value",
                    self.minmax_value,
                )
            )
        for name in ("minmax_percent", "minmax_value"):
            pair = getattr(self, name)
            if pair is None:
                continue
            if len(pair) != 2 or not pair[0] < pair[1]:
                problems.append(custom_error((name,), "interval", "needs [low, high] with low < high", pair))
            elif name == "minmax_percent" and not (0 <= pair[0] and pair[1] <= 100):
                problems.append(custom_error((name,), "interval", "percentiles lie in [0, 100]", pair))
        if self.colorize and len(self.inputs) != 3:
            problems.append(
                custom_error(
                    ("inputs",), "colorize", "colorize needs exactly three inputs (R, G, B)", self.inputs
                )
            )
        raise_problems("RenderSpec", problems)
        return self


class DemoTess(StrictModel):
    """The demo's TESS data: SPOC-like FFIs of one sector, camera and CCD."""

    model_config = schema_description(None)  # the schema gives this model no description

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
            raise ValueError(
                f"{value} FFIs is more than limits.max_demo_ffis ({limit}); raise the limit if you mean it"
            )
        return value


class DemoHst(StrictModel):
    """The demo's HST-like skycells: one image per band."""

    model_config = schema_description(None)  # the schema gives this model no description

    bands: list[str] = Field(default_factory=lambda: ["f435w", "f606w", "f814w"], min_length=1)
    shape: list[int] = Field(default_factory=lambda: [1000, 1000], description="[rows, cols] per skycell")


class DemoRoman(StrictModel):
    """The demo's Roman-like ASDF image."""

    model_config = schema_description(None)  # the schema gives this model no description

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
            raise ValueError(
                f"shape {shape} has a side over limits.max_demo_image_side ({limit}); raise the limit "
                "if you mean it"
            )
        return value
