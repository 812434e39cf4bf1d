"""Combine cutouts of the same sky region from several images into one (astrocut's ``CutoutsCombiner``).

The inputs are cutout files (or ``HDUList`` objects) as written by :func:`skycut.fits_cut`: every input
holds the same number of image extensions, extension ``k`` of every input has the same shape and (ideally)
the same WCS. Extension ``k`` of the output combines extension ``k`` of every input:

* the image with a *combine function* (default: per-pixel mean of the inputs that have data there);
* the header with :func:`combine_headers` (keywords with one value everywhere kept, varying ones recorded as
  ``Fnn_Kmm`` / ``Fnn_Vmm`` / ``Fnn_Cmm`` = keyword / value / comment of input ``nn``).

Arrays are numpy ``(ny, nx)`` (x = column = FITS axis 1). Differences from astrocut 1.4.0: ``fits_list=None``
then :meth:`CutoutsCombiner.load` works; inputs whose primary HDU holds the image work; files opened here are
closed after their data are read; the default mean is computed from the images actually combined (astrocut
fixes the weights from the first extension); output is written atomically.
"""

from __future__ import annotations

import importlib
import logging
import os
import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..core.atomic import write_hdulist
from ..core.fits_headers import combine_headers
from ..core.provenance import creation_date
from ..exceptions import DataWarning, InvalidInputError

if TYPE_CHECKING:  # pragma: no cover
    from astropy.coordinates import SkyCoord
    from astropy.io import fits

log = logging.getLogger(__name__)

CombineFunction = Callable[[Sequence[Any]], np.ndarray]
FunctionBuilder = Callable[..., CombineFunction]


# --------------------------------------------------------------------------------------------- image combiners


def _as_array(item: Any) -> np.ndarray:
    """Return the image array of an HDU, or the array itself.

    astrocut passes arrays, custom code may pass HDUs.
    """
    if isinstance(item, np.ndarray):
        return item
    data = getattr(item, "data", None)
    if data is None or not hasattr(item, "header"):
        raise InvalidInputError(f"cannot combine {type(item).__name__}: expected an image array or image HDU")
    return np.asarray(data)


def _stack(images: Sequence[Any]) -> np.ndarray:
    """Stack images of one shape into ``(n_images, ny, nx)``; a clear error when shapes differ."""
    arrays = [_as_array(im) for im in images]
    if not arrays:
        raise InvalidInputError("no images to combine")
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1:
        raise InvalidInputError(f"images to combine must share one shape, got {sorted(shapes)}")
    return np.stack(arrays)


def _valid_mask(stack: np.ndarray, no_data_val: float) -> np.ndarray:
    """Return True where a pixel holds data: not NaN, and not equal to ``no_data_val`` unless that is NaN."""
    valid = ~np.isnan(stack) if stack.dtype.kind == "f" else np.ones(stack.shape, dtype=bool)
    if not (isinstance(no_data_val, float) and np.isnan(no_data_val)):
        valid &= stack != no_data_val
    return valid


def _result_dtype(stack: np.ndarray) -> np.dtype:
    """Floating output: float inputs keep their precision, integers become float64."""
    return stack.dtype if stack.dtype.kind == "f" else np.dtype(np.float64)


def _check_count(template_hdu_arr: Any, images: Sequence[Any]) -> None:
    if template_hdu_arr is not None and len(images) != len(template_hdu_arr):
        raise InvalidInputError(
            f"the combiner was built for {len(template_hdu_arr)} images but was given {len(images)}"
        )


def build_default_combine_function(
    template_hdu_arr: Sequence[Any] | None, no_data_val: float = np.nan
) -> CombineFunction:
    """Build the default (mean) combine function.

    Parameters
    ----------
    template_hdu_arr : sequence of ImageHDU or arrays, or None
        The images the function will combine (one per input cutout); only their number is checked. Kept for
        astrocut compatibility (astrocut derives fixed weights from them; skycut computes the mean from the
        images actually combined, so the same function is right for every extension).
    no_data_val : float
        Pixel value meaning "no data" (default NaN; NaN is always treated as no data).

    Returns
    -------
    callable
        ``combine(images) -> ndarray (ny, nx)``: each pixel is the mean over the images that have data there,
        ``no_data_val`` where none has. ``images`` are arrays or image HDUs of numpy shape ``(ny, nx)``.
    """

    def combine_function(cutout_hdu_arr: Sequence[Any]) -> np.ndarray:
        _check_count(template_hdu_arr, cutout_hdu_arr)
        stack = _stack(cutout_hdu_arr)
        valid = _valid_mask(stack, no_data_val)
        count = valid.sum(axis=0)
        total = np.where(valid, stack, 0).sum(axis=0, dtype=np.float64)
        out = np.full(count.shape, no_data_val, dtype=np.float64)
        np.divide(total, count, out=out, where=count > 0)
        return out.astype(_result_dtype(stack), copy=False)

    combine_function.__name__ = "mean"
    return combine_function


def build_median_combine_function(
    template_hdu_arr: Sequence[Any] | None, no_data_val: float = np.nan
) -> CombineFunction:
    """Build a median combine function: each pixel is the median over the images that have data there.

    Parameters and return value as :func:`build_default_combine_function` (``no_data_val`` where no image
    has data).
    """

    def combine_function(cutout_hdu_arr: Sequence[Any]) -> np.ndarray:
        _check_count(template_hdu_arr, cutout_hdu_arr)
        stack = _stack(cutout_hdu_arr)
        valid = _valid_mask(stack, no_data_val)
        masked = np.where(valid, stack.astype(np.float64), np.nan)
        out = np.full(stack.shape[1:], no_data_val, dtype=np.float64)
        has = valid.any(axis=0)
        if has.any():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                med = np.nanmedian(masked, axis=0)
            out[has] = med[has]
        return out.astype(_result_dtype(stack), copy=False)

    combine_function.__name__ = "median"
    return combine_function


_NAMED_BUILDERS: dict[str, FunctionBuilder] = {
    "mean": build_default_combine_function,
    "default": build_default_combine_function,
    "median": build_median_combine_function,
}


def resolve_combiner(spec: str | FunctionBuilder) -> FunctionBuilder:
    """Turn a combiner specification into a function builder.

    Parameters
    ----------
    spec : str or callable
        ``"mean"`` (also ``"default"``), ``"median"``, or ``"package.module:function"`` naming an importable
        builder ``builder(template_hdu_arr, no_data_val) -> combine_function``. A callable is returned as is.

    Raises
    ------
    InvalidInputError
        Unknown name, module not importable, or the attribute is missing / not callable.
    """
    if callable(spec):
        return spec
    if not isinstance(spec, str) or not spec.strip():
        raise InvalidInputError(f"combiner must be 'mean', 'median' or 'module:function', got {spec!r}")
    name = spec.strip()
    if name.lower() in _NAMED_BUILDERS:
        return _NAMED_BUILDERS[name.lower()]
    if ":" not in name:
        raise InvalidInputError(
            f"unknown combiner {spec!r}: use 'mean', 'median' or 'package.module:function'"
        )
    module_name, _, attr = name.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise InvalidInputError(f"combiner {spec!r}: cannot import module {module_name!r} ({exc})") from exc
    builder = module
    for part in attr.split("."):
        builder = getattr(builder, part, None)
        if builder is None:
            raise InvalidInputError(f"combiner {spec!r}: module {module_name!r} has no attribute {attr!r}")
    if not callable(builder):
        raise InvalidInputError(f"combiner {spec!r} is not callable")
    return builder


# --------------------------------------------------------------------------------------------- headers


# --------------------------------------------------------------------------------------------- loading


def _is_image_hdu(hdu: Any) -> bool:
    from astropy.io import fits

    return (
        isinstance(hdu, (fits.PrimaryHDU, fits.ImageHDU, fits.CompImageHDU))
        and hdu.data is not None
        and hdu.data.size > 0
    )


def _as_image_hdu(hdu: Any) -> fits.ImageHDU:
    """Return an in-memory ImageHDU copy (data and header) of a primary or image extension."""
    from astropy.io import fits

    header = hdu.header.copy()
    # the data are read as physical values: drop the structural and scaling keywords of the stored form
    for key in ("SIMPLE", "EXTEND", "XTENSION", "ZIMAGE", "CHECKSUM", "DATASUM", "BZERO", "BSCALE", "BLANK"):
        header.remove(key, ignore_missing=True, remove_all=True)
    return fits.ImageHDU(data=np.array(hdu.data), header=header)


def _select(hdul: Any, exts: Any, label: str) -> list[Any]:
    if exts is None:
        chosen = [hdu for hdu in hdul if _is_image_hdu(hdu)]
        if not chosen:
            raise InvalidInputError(f"{label}: no image extension with data")
        return chosen
    chosen = []
    for ext in exts:
        try:
            hdu = hdul[ext]
        except (KeyError, IndexError) as exc:
            raise InvalidInputError(f"{label}: has no extension {ext!r}") from exc
        if not _is_image_hdu(hdu):
            raise InvalidInputError(f"{label}: extension {ext!r} holds no image data")
        chosen.append(hdu)
    return chosen


def _center_from(primary_header: Any, first_image: Any, label: str) -> SkyCoord | None:
    from astropy.coordinates import SkyCoord

    ra, dec = primary_header.get("RA_OBJ"), primary_header.get("DEC_OBJ")
    if ra is not None and dec is not None:
        try:
            return SkyCoord(float(ra), float(dec), unit="deg")
        except (TypeError, ValueError):
            pass
    try:
        from astropy.wcs import WCS, FITSFixedWarning

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FITSFixedWarning)
            wcs = WCS(first_image.header).celestial
        if wcs.has_celestial:
            ny, nx = first_image.data.shape[-2:]
            return wcs.pixel_to_world((nx - 1) / 2, (ny - 1) / 2)
    except Exception:  # no usable WCS either
        pass
    warnings.warn(
        f"{label}: no RA_OBJ/DEC_OBJ and no celestial WCS; the combined file has no RA_OBJ/DEC_OBJ",
        DataWarning,
        stacklevel=3,
    )
    return None


class CutoutsCombiner:
    """Combine cutouts of one sky region (same size, ideally same WCS) into a single cutout.

    Parameters
    ----------
    fits_list : list of str, path-like or HDUList, optional
        Cutout files or in-memory HDULists; may also be given later to :meth:`load`.
    exts : list of int or str, optional
        Extensions to combine from every input; default: every HDU holding image data (an empty primary is
        skipped, an image in the primary is used).
    img_combiner : callable or str, optional
        A combine function ``f(list of (ny, nx) arrays) -> (ny, nx) array``, or a builder spec accepted by
        :func:`resolve_combiner` (``"mean"``, ``"median"``, ``"module:builder"``). Default: mean.

    Attributes
    ----------
    input_hdulists : list of list of ImageHDU
        ``input_hdulists[k][i]`` is the ``k``-th selected extension of input ``i`` (in-memory copies).
    center_coord : SkyCoord or None
        From ``RA_OBJ``/``DEC_OBJ`` of the first input's primary header, else the first image's WCS centre.
    combine_images : callable or None
        The combine function in use (``None`` until built: the default mean is built at :meth:`combine`).
    combine_headers : callable
        ``f(list of Header) -> Header`` (:func:`combine_headers`).
    """

    def __init__(
        self,
        fits_list: Sequence[Any] | None = None,
        exts: Sequence[Any] | None = None,
        img_combiner: CombineFunction | str | None = None,
    ):
        self.input_hdulists: list[list[Any]] | None = None
        self.input_names: list[str] = []
        self.center_coord: SkyCoord | None = None
        self.combine_headers = combine_headers
        self.combine_images: CombineFunction | None = None
        self._builder: FunctionBuilder | None = None
        if isinstance(img_combiner, str):
            self._builder = resolve_combiner(img_combiner)
        elif img_combiner is not None:
            self.combine_images = img_combiner
        if fits_list is not None:
            self.load(fits_list, exts)

    def load(self, fits_list: Sequence[Any], exts: Sequence[Any] | None = None) -> None:
        """Read the inputs and select the extensions to combine (see the class parameters).

        Files are opened, read into memory and closed; HDULists given by the caller are copied, not closed.

        Raises
        ------
        InvalidInputError
            Empty list, unreadable input, missing extension, or inputs whose extensions differ in number or
            shape (the message names the input).
        """
        from astropy.io import fits

        if isinstance(fits_list, (str, os.PathLike, fits.HDUList)):
            fits_list = [fits_list]
        if not fits_list:
            raise InvalidInputError("fits_list is empty: nothing to combine")
        if exts is not None and (
            isinstance(exts, (str, int))
            or (isinstance(exts, tuple) and len(exts) == 2 and isinstance(exts[0], str))
        ):
            exts = [exts]

        per_input: list[list[Any]] = []
        names: list[str] = []
        center = None
        for i, item in enumerate(fits_list):
            if isinstance(item, fits.HDUList):
                label = item.filename() or f"input {i} (HDUList)"
                selected = [_as_image_hdu(h) for h in _select(item, exts, label)]
                primary_header = item[0].header
            elif isinstance(item, (str, os.PathLike)):
                label = os.fspath(item)
                try:
                    with fits.open(label, memmap=False) as hdul:
                        selected = [_as_image_hdu(h) for h in _select(hdul, exts, label)]
                        primary_header = hdul[0].header.copy()
                except (OSError, TypeError) as exc:
                    raise InvalidInputError(f"{label}: cannot read as FITS ({exc})") from exc
            else:
                raise InvalidInputError(
                    f"input {i}: unsupported type {type(item).__name__} (give file names or HDUList objects)"
                )
            if per_input:
                if len(selected) != len(per_input[0]):
                    raise InvalidInputError(
                        f"{label}: has {len(selected)} extensions to combine, "
                        f"{names[0]} has {len(per_input[0])}"
                    )
                for k, (hdu, ref) in enumerate(zip(selected, per_input[0], strict=True)):
                    if hdu.data.shape != ref.data.shape:
                        raise InvalidInputError(
                            f"{label}: extension {k} has shape {hdu.data.shape}, "
                            f"{names[0]} has {ref.data.shape}; request the same cutout size"
                        )
            else:
                center = _center_from(primary_header, selected[0], label)
            per_input.append(selected)
            names.append(label)

        self.input_hdulists = [list(group) for group in zip(*per_input, strict=True)]
        self.input_names = names
        self.center_coord = center
        log.debug("loaded %d inputs x %d extensions", len(names), len(self.input_hdulists))

    def build_img_combiner(
        self, function_builder: FunctionBuilder | str, builder_args: Sequence[Any]
    ) -> None:
        """Set :attr:`combine_images` to ``function_builder(*builder_args)``.

        ``function_builder`` may also be a spec string for :func:`resolve_combiner`.
        """
        self.combine_images = resolve_combiner(function_builder)(*builder_args)

    def _combine_function(self) -> CombineFunction:
        if self.combine_images is None:
            builder = self._builder or build_default_combine_function
            self.combine_images = builder(self.input_hdulists[0], np.nan)
        return self.combine_images

    def combine(self, output_file: str | os.PathLike = "./cutout.fits", memory_only: bool = False):
        """Combine the loaded cutouts.

        Returns
        -------
        str or HDUList
            The written file name, or (``memory_only=True``) the HDUList: a primary HDU (``ORIGIN``, ``DATE``,
            ``PROCVER``, ``NCOMBINE``, ``RA_OBJ``/``DEC_OBJ``) and one image HDU per combined extension.
        """
        from astropy.io import fits

        from .. import __version__

        if not self.input_hdulists:
            raise InvalidInputError("no cutouts loaded: pass fits_list or call load() first")
        func = self._combine_function()
        hdus = []
        for k, group in enumerate(self.input_hdulists):
            header = self.combine_headers([hdu.header for hdu in group])
            image = np.asarray(func([hdu.data for hdu in group]))
            if image.shape != group[0].data.shape:
                raise InvalidInputError(
                    f"the combine function returned shape {image.shape} for extension {k}, "
                    f"expected {group[0].data.shape}"
                )
            hdus.append(fits.ImageHDU(data=image, header=header))

        primary = fits.PrimaryHDU()
        primary.header["ORIGIN"] = ("STScI/MAST", "institution responsible for creating this file")
        primary.header["DATE"] = (creation_date(), "file creation date")
        primary.header["PROCVER"] = (__version__, "software version")
        primary.header["CREATOR"] = ("skycut", "software that combined the cutouts")
        primary.header["NCOMBINE"] = (len(self.input_names), "number of cutouts combined")
        if self.center_coord is not None:
            primary.header["RA_OBJ"] = (float(self.center_coord.ra.deg), "[deg] right ascension")
            primary.header["DEC_OBJ"] = (float(self.center_coord.dec.deg), "[deg] declination")
        hdul = fits.HDUList([primary, *hdus])
        if memory_only:
            return hdul
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", fits.verify.VerifyWarning)  # truncated long comments
            write_hdulist(hdul, output_file)
        log.info("combined %d cutouts into %s", len(self.input_names), output_file)
        return os.fspath(output_file)


def combine_cutouts(
    fits_list: Sequence[Any],
    output_file: str | os.PathLike = "./cutout.fits",
    *,
    combiner: str | FunctionBuilder = "mean",
    exts: Sequence[Any] | None = None,
    no_data_val: float = np.nan,
    memory_only: bool = False,
):
    """One-call combine for workflows: ``combiner`` is a :func:`resolve_combiner` spec or builder."""
    cc = CutoutsCombiner(fits_list, exts=exts)
    cc.build_img_combiner(combiner, [cc.input_hdulists[0], no_data_val])
    return cc.combine(output_file, memory_only=memory_only)
