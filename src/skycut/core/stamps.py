"""Stamping a finished product with what made it, in place, for FITS, PNG, JPEG, GIF and ASDF files.

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

    FITS (``.fits``, ``.fits.gz`` excluded): :func:`stamp_fits`; PNG: :func:`stamp_png`; JPEG and GIF:
    :func:`stamp_jpeg`, :func:`stamp_gif` (a comment); ASDF: :func:`stamp_asdf`. Other formats are left as they
    are.

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
    elif suffix in (".jpg", ".jpeg"):
        stamp_jpeg(path, digest, version)
    elif suffix == ".gif":
        stamp_gif(path, digest, version)
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


def _comment_text(digest: str, version: str) -> bytes:
    return f"{PNG_VERSION_KEY}: {version}; {PNG_HASH_KEY}: {digest}".encode("ascii")


def stamp_jpeg(path: str | os.PathLike, digest: str, version: str) -> None:
    """Put a ``COM`` segment with the skycut version and manifest hash right after a JPEG's ``SOI`` marker.

    An earlier skycut comment there is replaced; the image data are untouched.

    Raises
    ------
    ValueError
        ``path`` is not a JPEG file.
    """
    data = Path(path).read_bytes()
    if data[:2] != b"\xff\xd8":
        raise ValueError(f"{path}: not a JPEG file")
    rest = data[2:]
    if rest[:2] == b"\xff\xfe":  # a comment first: ours if it starts with our key
        length = struct.unpack(">H", rest[2:4])[0]
        if rest[4 : 4 + len(PNG_VERSION_KEY)] == PNG_VERSION_KEY.encode("ascii"):
            rest = rest[2 + length :]
    text = _comment_text(digest, version)
    write_bytes([data[:2], b"\xff\xfe", struct.pack(">H", len(text) + 2), text, rest], path)


def stamp_gif(path: str | os.PathLike, digest: str, version: str) -> None:
    """Put a comment extension with the skycut version and manifest hash after a GIF's screen descriptor.

    An earlier skycut comment there is replaced; the frames are untouched. The file becomes ``GIF89a`` (the
    version that has extensions).

    Raises
    ------
    ValueError
        ``path`` is not a GIF file.
    """
    data = Path(path).read_bytes()
    if data[:6] not in (b"GIF87a", b"GIF89a"):
        raise ValueError(f"{path}: not a GIF file")
    flags = data[10]
    start = 13 + (
        3 * 2 ** ((flags & 7) + 1) if flags & 0x80 else 0
    )  # header, screen descriptor, colour table
    rest = data[start:]
    if rest[:2] == b"\x21\xfe" and rest[3 : 3 + len(PNG_VERSION_KEY)] == PNG_VERSION_KEY.encode("ascii"):
        pos = 2
        while rest[pos]:
            pos += 1 + rest[pos]
        rest = rest[pos + 1 :]
    text = _comment_text(digest, version)
    blocks = b"".join(bytes([len(text[i : i + 255])]) + text[i : i + 255] for i in range(0, len(text), 255))
    write_bytes([b"GIF89a", data[6:start], b"\x21\xfe", blocks, b"\x00", rest], path)


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
