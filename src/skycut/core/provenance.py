"""What every product says about when and how it was made, reproducibly.

``SOURCE_DATE_EPOCH`` (the reproducible-builds convention: seconds since 1970-01-01 UTC) pins every time stamp
skycut writes: the ``DATE`` card of a new file and the time astropy stamps into the comments of ``CHECKSUM`` and
``DATASUM``. Without it, the current UTC time is used, as astropy and astrocut do.

Every product also records the skycut version and :func:`entry_hash`, the hash of the manifest entries that made
it (:func:`skycut.core.stamps.stamp_product` writes it: FITS cards, PNG text chunks, an ASDF tree entry); ASDF
history extensions are written in a fixed order (:func:`settle_asdf_history`).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import io
import json
import os
from collections.abc import Mapping
from typing import Any

from ..exceptions import InvalidInputError


def build_time() -> _dt.datetime:
    """Return the time stamp of the products being made.

    ``$SOURCE_DATE_EPOCH`` if set, else now (UTC, whole seconds).

    Raises
    ------
    InvalidInputError
        ``SOURCE_DATE_EPOCH`` is not whole seconds since 1970.
    """
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch:
        try:
            return _dt.datetime.fromtimestamp(int(epoch), _dt.UTC)
        except (ValueError, OverflowError, OSError):
            raise InvalidInputError(
                f"SOURCE_DATE_EPOCH must be whole seconds since 1970, got {epoch!r}"
            ) from None
    return _dt.datetime.now(_dt.UTC).replace(microsecond=0)


def creation_date() -> str:
    """Return the ``DATE`` card value of a new file: the ISO date (``YYYY-MM-DD``) of :func:`build_time`."""
    return build_time().date().isoformat()


def checksum_stamp() -> str:
    """Return the time astropy writes after "HDU checksum updated": ISO seconds of :func:`build_time`, no zone."""
    return build_time().strftime("%Y-%m-%dT%H:%M:%S")


# ------------------------------------------------------------------------------------------ what made a product
#: FITS keywords of the primary header that record what made a product (:mod:`skycut.core.stamps`).
VERSION_KEY = "SKYCVER"
HASH_KEY = "SKYCHASH"
#: PNG text-chunk keywords and the ASDF tree key of the same.
PNG_VERSION_KEY = "skycut version"
PNG_HASH_KEY = "skycut manifest hash"
ASDF_KEY = "skycut"


def canonical_json(value: Any) -> str:
    r"""Return ``value`` as canonical JSON, what :func:`entry_hash` hashes.

    Keys sorted, no whitespace (``","`` and ``":"``), ASCII only (``\uXXXX`` escapes), no NaN or infinity.
    """
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def entry_hash(
    section: str, name: str, entry: Mapping[str, Any], target: Mapping[str, Any] | None = None
) -> str:
    """Return the hash a product records of the manifest entries that made it.

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
    """Return the SHA-256 (hexadecimal) of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def settle_asdf_history(af: Any) -> Any:
    """Fix the order of an ``AsdfFile``'s ``history/extensions`` before it is written, and return it.

    asdf lists the extensions a write used by iterating over a set of extension objects, so two processes writing
    the same tree list them in different orders. A write updates the entries already listed (matched by extension
    URI) in place and appends the others; so the tree is serialised once to a sink that keeps only the YAML
    document, the extensions listed there are put into ``af.tree["history"]["extensions"]`` sorted by URI (then
    class name), and the next write keeps that order.
    """
    from asdf import yamlutil

    sink = _YamlSink()
    af.write_to(sink)
    tagged = yamlutil.load_tree(io.BytesIO(sink.yaml()))
    listed = (tagged.get("history") or {}).get("extensions") or [] if isinstance(tagged, dict) else []
    seeds = []
    for entry in listed:
        seed = {"extension_class": str(entry["extension_class"])}
        if entry.get("extension_uri") is not None:
            seed["extension_uri"] = str(entry["extension_uri"])
        seeds.append(seed)
    seeds.sort(key=lambda e: (e.get("extension_uri", ""), e["extension_class"]))
    history = af.tree.get("history")
    if seeds and history is None:
        af.tree["history"] = {"extensions": seeds}
    elif seeds and isinstance(history, dict):
        history["extensions"] = seeds
    return af


class _YamlSink(io.RawIOBase):
    """A writable binary sink that keeps only the first YAML document written to it.

    What is written up to the end of the first YAML document (``...``) is kept and the rest (an ASDF file's
    blocks) discarded, for :func:`settle_asdf_history`.
    """

    def __init__(self) -> None:
        super().__init__()
        self._kept = bytearray()
        self._done = False

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:
        n = len(memoryview(b))
        if not self._done:
            self._kept += bytes(b)
            end = self._kept.find(b"\n...\n")
            if end >= 0:
                del self._kept[end + 5 :]
                self._done = True
        return n

    def yaml(self) -> bytes:
        """Return the YAML document written (after the ``#ASDF`` comment lines)."""
        return bytes(self._kept)
