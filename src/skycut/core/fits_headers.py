"""FITS headers with astropy: combining the headers of several cutouts of one sky region into one.

:func:`combine_headers` is shared by image combining (:mod:`skycut.image.combine`) and moving-target cutouts
(:mod:`skycut.tess.moving_target`), which merge the headers of the cubes a path crosses.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..exceptions import DataWarning

if TYPE_CHECKING:  # pragma: no cover
    from astropy.io import fits

# keywords never compared: astropy rewrites them for the new HDU, or they are meaningless once combined
_SKIP_KEYWORDS = {
    "SIMPLE",
    "XTENSION",
    "BITPIX",
    "NAXIS",
    "NAXIS1",
    "NAXIS2",
    "NAXIS3",
    "PCOUNT",
    "GCOUNT",
    "EXTEND",
    "CHECKSUM",
    "DATASUM",
    "S_REGION",
    "BSCALE",
    "BZERO",
}
_COMMENTARY = {"COMMENT", "HISTORY", ""}
_CELESTIAL_WCS = re.compile(r"^((CRVAL|CRPIX|CTYPE|CDELT|CUNIT)[12]|(CD|PC)[12]_[12])$")


def _same(a: Any, b: Any) -> bool:
    """Header values equal (booleans only equal booleans; NaN never equal)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    try:
        return bool(a == b)
    except Exception:  # exotic values compare unequal
        return False


def _close_everywhere(headers: Sequence[fits.Header], key: str) -> bool:
    """Return True if the keyword is present everywhere with numerically equal values (to 1e-9 relative)."""
    values = [h.get(key) for h in headers]
    if any(not isinstance(v, (int, float)) or isinstance(v, bool) for v in values):
        return False
    return all(math.isclose(v, values[0], rel_tol=1e-9, abs_tol=1e-12) for v in values[1:])


def combine_headers(headers: Sequence[fits.Header], constant_only: bool = False) -> fits.Header:
    """Combine headers into one.

    Keywords with the same value in every header are kept once (card of the first); varying or partly missing
    ones are recorded, for every header ``i`` (1-based) that has them, as ``Fii_Kmm = keyword``,
    ``Fii_Vmm = value``, ``Fii_Cmm = comment`` (``mm`` numbers the varying keywords), unless ``constant_only``.
    Structural keywords, checksums and ``S_REGION`` are dropped; COMMENT/HISTORY cards are kept when every
    header has them.

    Parameters
    ----------
    headers : sequence of astropy.io.fits.Header
        The headers to combine.
    constant_only : bool, optional
        Keep only the keywords with the same value in every header (no ``Fii_*`` records).

    Returns
    -------
    astropy.io.fits.Header
        The combined header (empty for no headers).

    Warns
    -----
    DataWarning
        When celestial WCS keywords differ between the headers (beyond 1e-9 relative): the combined header
        keeps the values of every input.
    """
    from astropy.io import fits

    if not headers:
        return fits.Header()
    if len(headers) == 1:
        out = headers[0].copy()
        for key in _SKIP_KEYWORDS:
            out.remove(key, ignore_missing=True, remove_all=True)
        return out

    order: list[str] = []
    seen: set[str] = set()
    for hdr in headers:
        for key in hdr.keys():
            if key not in seen and key not in _SKIP_KEYWORDS and key not in _COMMENTARY:
                seen.add(key)
                order.append(key)

    uniform: list[fits.Card] = []
    varying: list[tuple[str, Any, str]] = []
    varying_names: list[str] = []
    for key in order:
        present = [key in hdr for hdr in headers]
        values = [hdr[key] if p else None for hdr, p in zip(headers, present, strict=True)]
        first = next(i for i, p in enumerate(present) if p)
        if all(present) and all(_same(values[0], v) for v in values[1:]):
            uniform.append(headers[first].cards[key])
            continue
        if constant_only:
            continue
        varying_names.append(key)
        n = len(varying_names)
        for i, (hdr, p) in enumerate(zip(headers, present, strict=True)):
            if p:
                varying.append((f"F{i + 1:02d}_K{n:02d}", key, "Keyword"))
                varying.append((f"F{i + 1:02d}_V{n:02d}", hdr[key], "Value"))
                varying.append((f"F{i + 1:02d}_C{n:02d}", hdr.comments[key], "Comment"))

    commentary: list[fits.Card] = []
    for card in headers[0].cards:
        if card.keyword in ("COMMENT", "HISTORY") and all(
            any(c.keyword == card.keyword and c.value == card.value for c in h.cards) for h in headers[1:]
        ):
            commentary.append(card)

    wcs_varying = [k for k in varying_names if _CELESTIAL_WCS.match(k) and not _close_everywhere(headers, k)]
    if wcs_varying:
        warnings.warn(
            f"the cutouts being combined do not share one WCS (varying: {', '.join(wcs_varying)}); "
            "the combined header keeps the values of every input",
            DataWarning,
            stacklevel=3,
        )
    out = fits.Header(uniform)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # long keywords become HIERARCH cards beyond 99 inputs/keywords
        for card in varying:
            out.append(card)
    for card in commentary:
        out.append(card)
    return out
