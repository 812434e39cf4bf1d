"""Stamping a finished product with what made it, in place, for FITS, PNG and ASDF files.

What made it: the skycut version and the manifest hash (:func:`skycut.core.provenance.entry_hash`).
"""

from __future__ import annotations

import logging
import os
import shutil
import struct
import zlib
from pathlib import Path

from .. import __version__
from .atomic import atomic_output, restamp_checksums, write_bytes
from .fits_bytes import BLOCK, CARD, RawHeader, format_card
from .provenance import ASDF_KEY, HASH_KEY, PNG_HASH_KEY, PNG_VERSION_KEY, VERSION_KEY, settle_asdf_history

log = logging.getLogger(__name__)


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
    """Set ``SKYCVER`` and ``SKYCHASH`` in the primary header of a FITS file.

    ``SKYCVER`` is the skycut version, ``SKYCHASH`` the manifest hash (64 hex digits leave no room for a
    comment, so a ``COMMENT`` card after it says what it is).

    Works on the bytes: the cards replace earlier ones of the same keywords, or go before ``END`` (in the header's
    padding when it has room, else the file is rewritten, atomically, one block longer); the other bytes are kept,
    and the ``CHECKSUM`` of every HDU that has one is recomputed with the reproducible time stamp
    (:func:`skycut.core.atomic.restamp_checksums`).
    """
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
    cards = [
        c
        for c in header.cards
        if c[:8].strip() not in (VERSION_KEY, HASH_KEY) and c.rstrip() != f"COMMENT {note}"
    ]
    cards += [
        format_card(VERSION_KEY, version, "skycut version that made this file"),
        format_card(HASH_KEY, digest),
        format_card("COMMENT", note),
    ]
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
    """Add ``tEXt`` chunks ``skycut version`` and ``skycut manifest hash`` right after a PNG's ``IHDR``.

    Earlier chunks of those keywords are dropped; the image data are untouched.

    Raises
    ------
    ValueError
        ``path`` is not a PNG file.
    """
    data = Path(path).read_bytes()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path}: not a PNG file")
    chunks, pos = [], 8
    while pos < len(data):
        length = struct.unpack(">I", data[pos : pos + 4])[0]
        end = pos + 12 + length
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if not (
            kind == b"tEXt" and body.split(b"\0", 1)[0] in (PNG_VERSION_KEY.encode(), PNG_HASH_KEY.encode())
        ):
            chunks.append(data[pos:end])
        pos = end

    def text_chunk(key: str, value: str) -> bytes:
        body = b"tEXt" + key.encode("latin-1") + b"\0" + value.encode("latin-1")
        return struct.pack(">I", len(body) - 4) + body + struct.pack(">I", zlib.crc32(body))

    out = [
        data[:8],
        chunks[0],
        text_chunk(PNG_VERSION_KEY, version),
        text_chunk(PNG_HASH_KEY, digest),
        *chunks[1:],
    ]
    write_bytes(out, path)


def stamp_asdf(path: str | os.PathLike, digest: str, version: str) -> None:
    """Set the tree entry ``skycut: {version, manifest_hash}`` of an ASDF file.

    The file is rewritten atomically, arrays and the rest of the tree kept; history extensions in a fixed order
    (:func:`settle_asdf_history`).
    """
    import asdf

    with asdf.open(path, memmap=False, lazy_load=False) as af:
        af.tree[ASDF_KEY] = {"version": version, "manifest_hash": digest}
        settle_asdf_history(af)
        with atomic_output(path) as tmp:
            af.write_to(tmp)
