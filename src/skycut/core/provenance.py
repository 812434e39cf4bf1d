"""What every product says about when and how it was made, reproducibly.

``SOURCE_DATE_EPOCH`` (the reproducible-builds convention: seconds since 1970-01-01 UTC) pins every time stamp
skycut writes: the ``DATE`` card of a new file and the time astropy stamps into the comments of ``CHECKSUM`` and
``DATASUM``. Without it, the current UTC time is used, as astropy and astrocut do.

Every product also records the skycut version and :func:`entry_hash`, the hash of the manifest entries that made
it (:func:`stamp_product`: FITS cards, PNG text chunks, an ASDF tree entry); ASDF history extensions are written
in a fixed order (:func:`settle_asdf_history`).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import io
import json
import logging
import os
import shutil
import struct
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..exceptions import InvalidInputError

log = logging.getLogger(__name__)


def build_time() -> _dt.datetime:
    """The time stamp of the products being made: ``$SOURCE_DATE_EPOCH`` if set, else now (UTC, whole seconds)."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch:
        try:
            return _dt.datetime.fromtimestamp(int(epoch), _dt.UTC)
        except (ValueError, OverflowError, OSError):
            raise InvalidInputError(f"SOURCE_DATE_EPOCH must be whole seconds since 1970, got {epoch!r}") from None
    return _dt.datetime.now(_dt.UTC).replace(microsecond=0)


def creation_date() -> str:
    """The ``DATE`` card value of a new file: the ISO date (``YYYY-MM-DD``) of :func:`build_time`."""
    return build_time().date().isoformat()


def checksum_stamp() -> str:
    """The time astropy writes after "HDU checksum updated": ISO seconds of :func:`build_time`, no zone."""
    return build_time().strftime("%Y-%m-%dT%H:%M:%S")


# ------------------------------------------------------------------------------------------ what made a product
#: FITS keywords of the primary header that record what made a product (:func:`stamp_fits`).
VERSION_KEY = "SKYCVER"
HASH_KEY = "SKYCHASH"
#: PNG text-chunk keywords (:func:`stamp_png`) and the ASDF tree key (:func:`stamp_asdf`).
PNG_VERSION_KEY = "skycut version"
PNG_HASH_KEY = "skycut manifest hash"
ASDF_KEY = "skycut"


def canonical_json(value: Any) -> str:
    """``value`` as canonical JSON: keys sorted, no whitespace (``","`` and ``":"``), ASCII only (``\\uXXXX``
    escapes), no NaN or infinity; what :func:`entry_hash` hashes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def entry_hash(section: str, name: str, entry: Mapping[str, Any], target: Mapping[str, Any] | None = None) -> str:
    """The hash a product records of the manifest entries that made it.

    The lowercase hexadecimal SHA-256 of the UTF-8 bytes of :func:`canonical_json` of
    ``{"section": section, "name": name, "entry": entry, "target": target}`` (``target`` is ``null`` for a
    product of no single target: a cube, a moving target).

    Parameters
    ----------
    section : str
        The manifest section (``"inputs"``, ``"combine"``, ``"render"``, ``"cubes"``, ``"cube_cutouts"``,
        ``"footprint_cutouts"``, ``"paths"``).
    name : str
        The entry's name in that section.
    entry : mapping
        The entry as validated (pydantic's ``model_dump(mode="json")``).
    target : mapping, optional
        The target entry as validated (``model_dump(mode="json")``), for a product of one target.

    Returns
    -------
    str
        64 hexadecimal digits.
    """
    payload = {"section": section, "name": name, "entry": entry, "target": target}
    return hashlib.sha256(canonical_json(payload).encode("utf-8")).hexdigest()


def file_sha256(path: str | os.PathLike) -> str:
    """The SHA-256 (hexadecimal) of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def stamp_product(path: str | os.PathLike, digest: str, version: str | None = None) -> bool:
    """Record the skycut version and the manifest hash ``digest`` (:func:`entry_hash`) in a product, in place.

    FITS (``.fits``, ``.fits.gz`` excluded): :func:`stamp_fits`; PNG: :func:`stamp_png`; ASDF:
    :func:`stamp_asdf`. Other formats (JPEG, GIF, ...) are left as they are.

    Parameters
    ----------
    path : path-like
        The product.
    digest : str
        The manifest hash.
    version : str, optional
        The skycut version (default: the running one).

    Returns
    -------
    bool
        Whether the file was stamped.
    """
    from .. import __version__

    version = version or __version__
    suffix = Path(path).suffix.lower()
    if suffix in (".fits", ".fit", ".fts"):
        stamp_fits(path, digest, version)
    elif suffix == ".png":
        stamp_png(path, digest, version)
    elif suffix == ".asdf":
        stamp_asdf(path, digest, version)
    else:
        log.debug("%s: no provenance stamp for this format", path)
        return False
    return True


def stamp_fits(path: str | os.PathLike, digest: str, version: str) -> None:
    """Set ``SKYCVER`` (the skycut version) and ``SKYCHASH`` (the manifest hash; 64 hex digits leave no room
    for a comment, so a ``COMMENT`` card after it says what it is) in the primary header of a FITS file.

    Works on the bytes: the cards replace earlier ones of the same keywords, or go before ``END`` (in the header's
    padding when it has room, else the file is rewritten, atomically, one block longer); the other bytes are kept,
    and the ``CHECKSUM`` of every HDU that has one is recomputed with the reproducible time stamp
    (:func:`skycut.core.atomic.restamp_checksums`).
    """
    from .atomic import atomic_output, restamp_checksums
    from .fits_bytes import BLOCK, CARD, RawHeader, format_card

    with open(path, "rb") as fh:
        blob = fh.read(BLOCK)
        header = RawHeader.parse(blob, 0)
        while header is None:
            more = fh.read(BLOCK)
            if not more:
                raise ValueError(f"{path}: no END card in the primary header")
            blob += more
            header = RawHeader.parse(blob, 0)
    note = f"{HASH_KEY}: sha256 of the manifest entries that made this file"
    cards = [c for c in header.cards
             if c[:8].strip() not in (VERSION_KEY, HASH_KEY) and c.rstrip() != f"COMMENT {note}"]
    cards += [format_card(VERSION_KEY, version, "skycut version that made this file"),
              format_card(HASH_KEY, digest), format_card("COMMENT", note)]
    text = "".join(cards) + f"{'END':<{CARD}}"
    nbytes = -(-len(text) // BLOCK) * BLOCK
    raw = (text + " " * (nbytes - len(text))).encode("ascii")
    if nbytes == header.nbytes:
        with open(path, "r+b") as fh:
            fh.write(raw)
    else:
        with atomic_output(path) as tmp, open(path, "rb") as src, open(tmp, "wb") as dst:
            dst.write(raw)
            src.seek(header.nbytes)
            shutil.copyfileobj(src, dst, 1 << 20)
    restamp_checksums(path)


def stamp_png(path: str | os.PathLike, digest: str, version: str) -> None:
    """Add ``tEXt`` chunks ``skycut version`` and ``skycut manifest hash`` right after a PNG's ``IHDR`` (earlier
    chunks of those keywords are dropped); the image data are untouched."""
    data = Path(path).read_bytes()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path}: not a PNG file")
    chunks, pos = [], 8
    while pos < len(data):
        length = struct.unpack(">I", data[pos:pos + 4])[0]
        end = pos + 12 + length
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        if not (kind == b"tEXt" and body.split(b"\0", 1)[0] in (PNG_VERSION_KEY.encode(), PNG_HASH_KEY.encode())):
            chunks.append(data[pos:end])
        pos = end

    def text_chunk(key: str, value: str) -> bytes:
        body = b"tEXt" + key.encode("latin-1") + b"\0" + value.encode("latin-1")
        return struct.pack(">I", len(body) - 4) + body + struct.pack(">I", zlib.crc32(body))

    out = [data[:8], chunks[0], text_chunk(PNG_VERSION_KEY, version), text_chunk(PNG_HASH_KEY, digest), *chunks[1:]]
    from .atomic import write_bytes

    write_bytes(out, path)


def stamp_asdf(path: str | os.PathLike, digest: str, version: str) -> None:
    """Set the tree entry ``skycut: {version, manifest_hash}`` of an ASDF file (rewritten atomically, arrays
    and the rest of the tree kept; history extensions in a fixed order, :func:`settle_asdf_history`)."""
    import asdf

    from .atomic import atomic_output

    with asdf.open(path, memmap=False, lazy_load=False) as af:
        af.tree[ASDF_KEY] = {"version": version, "manifest_hash": digest}
        settle_asdf_history(af)
        with atomic_output(path) as tmp:
            af.write_to(tmp)


def settle_asdf_history(af: Any) -> Any:
    """Fix the order of an ``AsdfFile``'s ``history/extensions`` before it is written, and return it.

    asdf lists the extensions a write used by iterating over a set of extension objects, so two processes writing
    the same tree list them in different orders. A write updates the entries already listed in place and appends
    the others; so the tree is serialised once to a discarding sink, and the list that leaves sorted by
    extension URI (then class name). The next write keeps that order.
    """
    af.write_to(_Discard())
    history = af.tree.get("history")
    if isinstance(history, dict) and history.get("extensions"):
        history["extensions"] = sorted(
            history["extensions"], key=lambda e: (str(e.get("extension_uri") or ""), str(e.get("extension_class"))))
    return af


class _Discard(io.RawIOBase):
    """A writable, seekable-looking binary sink that keeps nothing (for :func:`settle_asdf_history`)."""

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:
        return len(memoryview(b))
