"""FITS at the byte level, without astropy: cards, headers, binary tables, checksums, HDU serialisation.

Reading: :func:`card_value` parses one 80-character card, :class:`RawHeader` one header, :func:`parse_table` a
binary table's rows. Writing: :func:`format_card` formats one card (astropy's float format rules: at most 20
characters, an exponent with a sign and two digits), :func:`header_block` pads cards to 2880-byte blocks, and
:func:`hdu_parts` serialises one HDU with its ``CHECKSUM``/``DATASUM`` computed here (FITS checksum convention).

Why not ``astropy.io.fits``: cube cutouts write hundreds of target pixel files per job from one cube header; going
through astropy's ``Header``/``HDUList`` costs tens of milliseconds each, this module about one (measured in
``benchmarks/case_cube_cutout.py``). Every file written this way is read back by astropy in the tests, checksums
verified.
"""

from __future__ import annotations

import fnmatch
import functools
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..exceptions import InvalidInputError

BLOCK = 2880
CARD = 80

_TFORM_CODES = {"L": "i1", "B": "u1", "I": ">i2", "J": ">i4", "K": ">i8", "E": ">f4", "D": ">f8", "A": "S"}
BITPIX_DTYPES = {-32: ">f4", -64: ">f8", 16: ">i2", 32: ">i4", 8: "u1", 64: ">i8"}
"""BITPIX -> numpy dtype (big-endian) of FITS image data."""


def bitpix_of(dtype: Any) -> int | None:
    """Return the BITPIX of image data of this numpy dtype (either byte order), ``None`` if FITS has no such type."""
    d = np.dtype(dtype)
    for bitpix, code in BITPIX_DTYPES.items():
        ref = np.dtype(code)
        if ref.kind == d.kind and ref.itemsize == d.itemsize:
            return bitpix
    return None


# ------------------------------------------------------------------------------------------ header parsing


class CardError(InvalidInputError):
    """A card whose value cannot be parsed (unterminated string, text after a string, not a FITS value)."""


def card_parts(card: str) -> tuple[Any, str]:
    """Value and comment of one 80-character ``KEYWORD= value / comment`` card, as astropy parses them.

    The value is ``str`` (trailing blanks removed), ``bool``, ``int``, ``float`` or ``None`` (undefined, or a card
    without ``= `` in columns 9-10). Raises :class:`CardError` for a malformed value.
    """
    if card[8:10] != "= ":
        return None, ""
    body = card[10:].lstrip()
    if body.startswith("'"):
        parts, i = [], 1
        while True:
            j = body.find("'", i)
            if j < 0:
                raise CardError(f"card {card[:8].strip()}: unterminated string")
            if body[j + 1 : j + 2] == "'":
                parts.append(body[i : j + 1])
                i = j + 2
                continue
            parts.append(body[i:j])
            rest = body[j + 1 :]
            break
        head, _, comment = rest.partition("/")
        if head.strip():
            raise CardError(f"card {card[:8].strip()}: text after a string value")
        return "".join(parts).rstrip(), comment.strip()
    head, _, comment = body.partition("/")
    head = head.strip()
    if head == "":
        return None, comment.strip()
    if head in ("T", "F"):
        return head == "T", comment.strip()
    try:
        return int(head), comment.strip()
    except ValueError:
        pass
    try:
        return float(head.replace("D", "E").replace("d", "e")), comment.strip()
    except ValueError:
        raise CardError(f"card {card[:8].strip()}: value {head!r}") from None


def card_value(card: str) -> Any:
    """Return the value of one 80-character card, leniently.

    As :func:`card_parts`, but a malformed value comes back as its raw text (``str``) instead of raising
    (callers that must reject it check for that).
    """
    try:
        return card_parts(card)[0]
    except CardError:
        text = card[10:].strip()
        return text[1:].rstrip() if text.startswith("'") else text.split("/", 1)[0].strip()


@dataclass
class RawHeader:
    """One FITS header as its raw 80-character cards (``END`` excluded) plus a keyword -> value dict."""

    cards: list[str]
    offset: int  # byte offset of the header in the file
    nbytes: int  # size of the header in bytes (a multiple of 2880)
    values: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, blob: bytes, offset: int) -> RawHeader | None:
        """Parse the header starting at the start of ``blob``; ``None`` if its ``END`` card is not in ``blob``."""
        text = blob.decode("ascii", errors="replace")
        cards: list[str] = []
        for i in range(0, len(text) - CARD + 1, CARD):
            card = text[i : i + CARD]
            if card.startswith("END") and card[3:].strip() == "":
                nbytes = -(-(i + CARD) // BLOCK) * BLOCK
                values: dict[str, Any] = {}
                for c in cards:
                    key = c[:8].strip()
                    if key and key not in values and c[8:10] == "= ":
                        values[key] = card_value(c)
                return cls(cards, offset, nbytes, values)
            cards.append(card)
        return None

    def data_nbytes(self) -> int:
        """Size of the data that follows this header, unpadded (``|BITPIX|/8 * GCOUNT * (PCOUNT + prod NAXISn)``)."""
        naxis = int(self.values.get("NAXIS", 0))
        if naxis == 0:
            return 0
        n = 1
        for i in range(1, naxis + 1):
            n *= int(self.values[f"NAXIS{i}"])
        return (
            abs(int(self.values["BITPIX"]))
            // 8
            * int(self.values.get("GCOUNT", 1))
            * (int(self.values.get("PCOUNT", 0)) + n)
        )


def padded(n: int) -> int:
    """Return ``n`` rounded up to a whole number of 2880-byte FITS blocks."""
    return -(-n // BLOCK) * BLOCK


class TableColumns(Mapping):
    """The columns of a FITS binary table as a read-only mapping ``{name: array}``, each decoded when first used.

    A cube's FFI table has a hundred columns of which a cutout needs about forty; decoding them all cost a third of
    opening a 1,500-cadence cube.
    """

    def __init__(self, rec: np.ndarray, codes: dict[str, str]):
        self._rec = rec
        self._codes = codes
        self._done: dict[str, np.ndarray] = {}

    def __getitem__(self, name: str) -> np.ndarray:
        """Return column ``name``, decoded (once)."""
        col = self._done.get(name)
        if col is None:
            col = self._done[name] = _decode_column(self._rec[name], self._codes[name])
        return col

    def __iter__(self):
        """Iterate over the column names, in table order."""
        return iter(self._codes)

    def __len__(self) -> int:
        """Return the number of columns."""
        return len(self._codes)

    def __contains__(self, name: object) -> bool:
        """Whether the table has a column ``name`` (without decoding it)."""
        return name in self._codes


def _decode_column(col: np.ndarray, code: str) -> np.ndarray:
    """One binary-table column as returned by :func:`parse_table`."""
    if code == "A":
        col = np.ascontiguousarray(col)
        if (col.view(np.uint8) < 128).all():  # plain ASCII (always, for FITS): a cast decodes it, fast
            text = np.strings.rstrip(col.astype(f"U{max(1, col.dtype.itemsize)}"))
            return text.astype(f"U{max(1, int(np.strings.str_len(text).max(initial=0)))}")
        return np.char.rstrip(np.char.decode(col, "ascii", errors="replace"))
    if code == "L":
        return col == ord("T")
    return col.astype(col.dtype.newbyteorder("="))


def parse_table(header: RawHeader, data: bytes) -> TableColumns:
    """Decode a FITS binary table (scalar and fixed-length array columns) into a mapping ``{name: array}``.

    Strings are returned as ``str`` arrays with trailing blanks removed; logical columns as bool; numbers in native
    byte order. Each column is decoded when first looked up (:class:`TableColumns`). Variable-length arrays are not
    supported (cube tables never have them).
    """
    v = header.values
    nfields, nrows, width = int(v["TFIELDS"]), int(v["NAXIS2"]), int(v["NAXIS1"])
    names, formats, offsets, codes, pos = [], [], [], {}, 0
    for i in range(1, nfields + 1):
        tform = str(v[f"TFORM{i}"]).strip()
        j = 0
        while j < len(tform) and tform[j].isdigit():
            j += 1
        repeat = int(tform[:j]) if j else 1
        code = tform[j : j + 1]
        if code not in _TFORM_CODES:
            raise InvalidInputError(f"unsupported table column format TFORM{i} = {tform!r}")
        if code == "A":
            fmt, size = f"S{repeat}", repeat
        else:
            fmt = _TFORM_CODES[code] if repeat == 1 else (_TFORM_CODES[code], (repeat,))
            size = np.dtype(_TFORM_CODES[code]).itemsize * repeat
        name = str(v.get(f"TTYPE{i}", f"col{i}")).strip()
        if name in codes:
            name = f"{name}_{i}"
        names.append(name)
        formats.append(fmt)
        offsets.append(pos)
        codes[name] = code
        pos += size
    dtype = np.dtype({"names": names, "formats": formats, "offsets": offsets, "itemsize": width})
    return TableColumns(np.frombuffer(data, dtype=dtype, count=nrows), codes)


# ------------------------------------------------------------------------------------------ cards


def _format_float(value: float) -> str:
    text = repr(float(value)).upper()
    if "E" in text:
        mant, exp = text.split("E")
        if "." not in mant:
            mant += ".0"
        text = f"{mant}E{int(exp):+03d}"
    elif "." not in text:
        text += ".0"
    digits = 15
    while len(text) > 20 and digits > 1:
        text = f"{value:.{digits}E}"
        digits -= 1
    return text


def value_field(value: Any) -> str | None:
    """Return the value part of a card (columns 11 onwards, at least 20 characters); ``None`` if too long a string."""
    if type(value) is float:  # the common case first (a TPF header formats a dozen per target)
        return f"{_format_float(value):>20}" if math.isfinite(value) else " " * 20
    if isinstance(value, (bool, np.bool_)):
        vfield = f"{'T' if value else 'F':>20}"
    elif isinstance(value, (int, np.integer)):
        vfield = f"{int(value):>20d}"
    elif isinstance(value, (float, np.floating)):
        vfield = f"{_format_float(float(value)):>20}" if np.isfinite(value) else " " * 20
    elif value is None:
        vfield = " " * 20
    else:
        text = str(value).replace("'", "''")
        vfield = f"'{text:<8}'"
        vfield = f"{vfield:<20}"
        if len(vfield) > 70:
            return None
    return vfield


def card_from_field(key: str, vfield: str, comment: str = "") -> str:
    """Return an 80-character card from a keyword and a value field made by :func:`value_field`."""
    card = f"{key:<8}= {vfield}"
    if comment:
        card += f" / {comment}"
    return f"{card[:80]:<80}"


_KEYWORD = re.compile(r"^[A-Z0-9_-]{1,8}$")
_COMMENTARY = ("COMMENT", "HISTORY", "")


def format_card(key: str, value: Any = None, comment: str = "") -> str:
    """One 80-character FITS card: skycut's one card formatter (TPFs, cube headers, image cutout headers).

    Floats use :func:`value_field`'s rule: Python's shortest repr, upper-case exponent with a sign and at least two
    digits, a ``.0`` for whole numbers, rounded to 20 characters at most (astropy reads every such card back to
    the same float). ``value=None`` writes an undefined value; non-finite floats too. ``COMMENT``/``HISTORY``
    cards hold ``value`` as text. What this formatter cannot write exactly — strings longer than a card
    (``CONTINUE`` convention), non-ASCII or control characters, keywords that are not standard upper-case
    8-character ones (``HIERARCH``), longer commentary — is delegated to ``astropy.io.fits.Card``.
    """
    card = plain_card(key, value, comment)
    if card is None:
        from astropy.io import fits

        return fits.Card(key, value, comment).image
    return card


def plain_card(key: str, value: Any = None, comment: str = "") -> str | None:
    """Return the card :func:`format_card` writes without astropy, or ``None`` where it delegates to astropy.

    Callers that must not import astropy check this.
    """
    if key in _COMMENTARY:
        text = "" if value is None else str(value)
        return f"{key:<8}{text:<72}" if len(text) <= 72 and _printable(text) else None
    if (
        not _KEYWORD.match(key)
        or not _printable(comment)
        or (isinstance(value, str) and not _printable(value))
    ):
        return None
    vfield = value_field(value)
    return None if vfield is None else card_from_field(key, vfield, comment)


def _printable(text: str) -> bool:
    """Whether ``text`` is printable ASCII (space to ``~``: for ASCII text, what ``str.isprintable`` accepts)."""
    return text.isascii() and text.isprintable()


def header_block(cards: list[str]) -> bytes:
    """Return the cards + ``END``, padded with blanks to whole 2880-byte blocks."""
    text = "".join(cards) + f"{'END':<80}"
    text += " " * (-len(text) % BLOCK)
    return text.encode("ascii", errors="replace")


def card_key(card: str) -> str:
    """Return the keyword of an 80-character card (blanks stripped)."""
    return card[:8].strip()


@functools.lru_cache(maxsize=32)
def _patterns_regex(patterns: tuple[str, ...]) -> re.Pattern:
    return re.compile("|".join(fnmatch.translate(p) for p in patterns) or "(?!)")


def filter_cards(cards: list[str], patterns: tuple[str, ...]) -> list[str]:
    """Drop cards whose keyword matches one of the shell-style ``patterns`` (case-sensitive, as ``fnmatchcase``)."""
    match = _patterns_regex(tuple(patterns)).match
    return [c for c in cards if not match(card_key(c))]


def set_card(cards: list[str], key: str, value: Any, comment: str = "") -> None:
    """Replace the first card with ``key`` in place, or append it."""
    new = format_card(key, value, comment)
    for i, card in enumerate(cards):
        if card_key(card) == key:
            cards[i] = new
            return
    cards.append(new)


# ------------------------------------------------------------------------------------------ checksums


def ones_complement_sum(buf: bytes | memoryview | np.ndarray, start: int = 0) -> int:
    """Return the 32-bit ones'-complement sum of big-endian words (the FITS checksum sum), added to ``start``.

    A length that is not a multiple of 4 is summed as if padded with zero bytes (as FITS padding is). An array of
    4-byte items is summed as it lies in memory, whatever its strides (no contiguous copy is made).
    """
    if not (buf.size if isinstance(buf, np.ndarray) else len(buf)):
        return fold_sum(start)  # nothing to sum (an HDU without data): no numpy call
    if isinstance(buf, np.ndarray) and buf.dtype.itemsize == 4 and buf.ndim:
        total = int(buf.view(">u4").sum(dtype=np.uint64)) + start
    else:
        raw = (
            np.frombuffer(buf, dtype=np.uint8)
            if not isinstance(buf, np.ndarray)
            else buf.reshape(-1).view(np.uint8)
        )
        whole = len(raw) // 4 * 4
        total = int(raw[:whole].view(">u4").sum(dtype=np.uint64)) + start
        if whole < len(raw):
            total += int.from_bytes(bytes(raw[whole:]) + b"\0" * (4 - len(raw) + whole), "big")
    return fold_sum(total)


def fold_sum(total: int) -> int:
    """Fold a plain sum of 32-bit words into their 32-bit ones'-complement sum (the end-around carries added)."""
    while total >> 32:
        total = (total & 0xFFFFFFFF) + (total >> 32)
    return total


_EXCLUDED = frozenset(b":;<=>?@[\\]^_`")


@functools.cache  # 256 possible bytes, each worked out on first use (not at import)
def _checksum_group(byte: int) -> tuple[int, int, int, int]:
    """Return the four characters one byte of a checksum spreads over, none punctuation (Seaman et al.)."""
    quotient, remainder = byte // 4 + 0x30, byte % 4
    group = [quotient + remainder, quotient, quotient, quotient]
    changed = True
    while changed:
        changed = False
        for j in (0, 2):
            if group[j] in _EXCLUDED or group[j + 1] in _EXCLUDED:
                group[j] += 1
                group[j + 1] -= 1
                changed = True
    return tuple(group)


def encode_checksum(value: int) -> str:
    """Return the 16-character ASCII encoding of a 32-bit checksum (FITS checksum convention, Seaman et al.)."""
    g0, g1, g2, g3 = (_checksum_group(byte) for byte in value.to_bytes(4, "big"))
    chars = [g[j] for j in range(4) for g in (g0, g1, g2, g3)]  # character 4 j + i from byte i
    return bytes(chars[15:] + chars[:15]).decode("ascii")


def stamp_checksums(header: bytearray, datasum_at: int, checksum_at: int, datasum: int) -> None:
    """Fill in place the ``DATASUM`` and ``CHECKSUM`` value fields of a header (whole 2880-byte blocks).

    ``datasum_at``/``checksum_at`` are the byte offsets of the two 20-character value fields (columns 11-30 of the
    cards); ``CHECKSUM`` is computed with its field holding 16 zeros, whatever it held. Compiled where the
    accelerator is built (``skycut.core._block_rows``: 3 against 30 microseconds for a 3-block header), the same bytes.
    """
    if _stamp is not None:
        _stamp(header, datasum_at, checksum_at, datasum)
        return
    header[datasum_at : datasum_at + 20] = value_field(str(datasum)).encode("ascii")
    header[checksum_at : checksum_at + 20] = _ZERO_CHECKSUM
    total = ones_complement_sum(header, datasum)
    header[checksum_at : checksum_at + 20] = value_field(encode_checksum(~total & 0xFFFFFFFF)).encode("ascii")


_ZERO_CHECKSUM = b"'0000000000000000'  "
try:  # the compiled accelerator (optional)
    from ._block_rows import stamp_checksums as _stamp
except ImportError:  # pragma: no cover - depends on the build
    _stamp = None


def hdu_parts(
    cards: list[str], data: bytes | np.ndarray, stamp: str | None = None, *, datasum: int | None = None
) -> list:
    """One HDU as a list of buffers ``[header, data, zero padding]`` with ``CHECKSUM``/``DATASUM`` filled in.

    ``data`` (bytes or a C-contiguous big-endian array) is not copied; zero padding does not change the sum.
    ``stamp`` (e.g. :func:`skycut.core.provenance.checksum_stamp`) ends the two comments with ``updated <stamp>``,
    as astropy writes them. ``datasum``: the data's :func:`ones_complement_sum` when the caller knows it already
    (e.g. from sums of its parts), else it is computed here. (A :class:`HeaderTemplate` used once.)
    """
    return HeaderTemplate(cards, stamp).hdu_parts(data, datasum=datasum)


def hdu_bytes(cards: list[str], data: bytes | np.ndarray) -> bytes:
    """Return :func:`hdu_parts` joined into bytes."""
    return b"".join(hdu_parts(cards, data))


class HeaderTemplate:
    """A header formatted once, whose per-use cards are patched in place as bytes before its checksum is stamped.

    Serialising many HDUs that differ only in a few card values (the TPFs of one cube) need not format every card
    again: the header's bytes (with ``CHECKSUM``/``DATASUM`` cards appended) are made once, and each use copies
    them, writes the new value fields or cards at their fixed positions, and fills in the checksums. The bytes
    are those :func:`hdu_parts` writes for the patched cards.

    Parameters
    ----------
    cards : list of str
        The header's cards (without ``CHECKSUM``, ``DATASUM`` and ``END``): 80 characters each where they are
        patched by index.
    stamp : str, optional
        Ends the ``CHECKSUM``/``DATASUM`` comments with ``updated <stamp>`` (see :func:`hdu_parts`).
    """

    def __init__(self, cards: list[str], stamp: str | None = None):
        self.cards = list(cards)
        self._suffix = f" updated {stamp}" if stamp else ""
        self._block = header_block(
            [
                *self.cards,
                format_card("CHECKSUM", "0" * 16, "HDU checksum" + self._suffix),
                format_card("DATASUM", "0", "data unit checksum" + self._suffix),
            ]
        )
        self._checksum_at = sum(
            len(card) for card in self.cards
        )  # a long string's card may be several images
        self._datasum_at = self._checksum_at + CARD
        self._index: dict[str, int] | None = None  # keyword -> first card, made on first lookup

    @property
    def checksum_fields(self) -> tuple[int, int]:
        """Byte offsets in the header of the ``DATASUM`` and ``CHECKSUM`` value fields (20 characters each)."""
        return self._datasum_at + 10, self._checksum_at + 10

    def index(self, key: str) -> int:
        """Return the position of the first card with keyword ``key`` (``ValueError`` if there is none)."""
        if self._index is None:
            self._index = {}
            for i, card in enumerate(self.cards):
                self._index.setdefault(card_key(card), i)
        if key not in self._index:
            raise ValueError(f"no {key} card in the template")
        return self._index[key]

    def hdu_parts(
        self,
        data: bytes | np.ndarray,
        fields: list[tuple[int, str]] = (),
        cards: list[tuple[int, str]] = (),
        *,
        datasum: int | None = None,
    ) -> list:
        """Return the HDU as :func:`hdu_parts` would for the template's cards with the given replacements.

        Parameters
        ----------
        data : bytes or ndarray
            The data unit (bytes, or a C-contiguous big-endian array; not copied).
        fields : list of (int or sequence of int, str)
            ``(card index, value field)``: the card's columns 11-30 become the 20-character value field (from
            :func:`value_field`; a number's field is always 20 characters), its keyword and comment stay; several
            card indices take the same value field.
        cards : list of (int, str)
            ``(card index, card)``: whole 80-character cards replacing the template's.
        datasum : int, optional
            The data's :func:`ones_complement_sum`, if known already.

        Returns
        -------
        list
            ``[header, data, zero padding]`` buffers.

        Raises
        ------
        ValueError
            A value field that is not 20 characters or a card that is not 80 (the caller formats the header
            card by card instead).
        """
        return self.finish(self.patched(fields, cards), data, datasum=datasum)

    def patched(self, fields: list[tuple[int, str]] = (), cards: list[tuple[int, str]] = ()) -> bytearray:
        """Return the header's bytes with the replacements of :meth:`hdu_parts` made, checksums not yet filled.

        A field's card index may also be a sequence of indices, for one value written into several cards.
        """
        buf = bytearray(self._block)
        for where, vfield in fields:
            if len(vfield) != 20:
                raise ValueError(f"value field {vfield!r} is not 20 characters")
            raw = vfield.encode("ascii", errors="replace")
            for i in (where,) if isinstance(where, int) else where:
                at = i * CARD + 10
                buf[at : at + 20] = raw
        for i, card in cards:
            if len(card) != CARD:
                raise ValueError(f"card {card[:8]!r} is not {CARD} characters")
            buf[i * CARD : (i + 1) * CARD] = card.encode("ascii", errors="replace")
        return buf

    def finish(self, buf: bytearray, data: bytes | np.ndarray, *, datasum: int | None = None) -> list:
        """Fill in ``DATASUM`` and ``CHECKSUM`` of a :meth:`patched` header (in place) for ``data``.

        Returns the ``[header, data, zero padding]`` buffers of :meth:`hdu_parts`.
        """
        nbytes = data.nbytes if isinstance(data, np.ndarray) else len(data)
        if datasum is None:
            datasum = ones_complement_sum(data)
        stamp_checksums(buf, *self.checksum_fields, datasum)
        body = memoryview(data.reshape(-1).view(np.uint8)) if isinstance(data, np.ndarray) else data
        return [bytes(buf), body, b"\0" * (-nbytes % BLOCK)]
