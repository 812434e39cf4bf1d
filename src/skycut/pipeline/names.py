"""Target names as astronomers write them, and the file-name stems made from them.

A target's ``name`` is its display name: any printable characters (``"TIC 261136679"``, ``"NGC 1300"``,
``"2019 SK11"``), written into the ``OBJECT`` card and captions and used as the key of the job indexes. Output file
names use :func:`slugify` of it instead: a deterministic, file-system-safe stem. A name that is already safe
(letters, digits, ``_``, ``.``, ``+``, ``-``, starting with a letter or digit, at most 100 characters, the
manifest's former name rule) is its own slug, so ``"tess-variable"`` stays ``tess-variable``.

A name of the form ``TIC <digits>`` (any case, the space optional) names a TESS Input Catalog entry:
:func:`tic_id` gives its number, which becomes the ``TICID`` of its target pixel files and is resolved through
MAST's TIC service (:mod:`skycut.pipeline.resolve`).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

#: Longest display name accepted (characters).
MAX_NAME_LENGTH = 200
#: Longest slug (the former name rule's bound).
MAX_SLUG_LENGTH = 100
#: A name that is its own slug: the manifest's former name rule.
SAFE_SLUG = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,99}")
_UNSAFE_RUN = re.compile(r"[^A-Za-z0-9_.+-]+")
_TIC = re.compile(r"TIC[ _-]?0*([0-9]{1,12})", re.IGNORECASE)


def check_target_name(name: str) -> str:
    """Validate a target's display name and return it unchanged.

    Parameters
    ----------
    name : str
        The name as written in the manifest.

    Returns
    -------
    str
        ``name``.

    Raises
    ------
    ValueError
        For an empty name, one longer than :data:`MAX_NAME_LENGTH`, one with leading or trailing white space, or
        one holding a control or other non-printable character (tab, newline, ...).
    """
    if not name or not name.strip():
        raise ValueError("a target name cannot be empty")
    if len(name) > MAX_NAME_LENGTH:
        raise ValueError(f"a target name has at most {MAX_NAME_LENGTH} characters (got {len(name)})")
    if name != name.strip():
        raise ValueError(f"target name {name!r} has leading or trailing white space")
    if not name.isprintable():
        bad = next(c for c in name if not c.isprintable())
        raise ValueError(f"target name {name!r} holds a non-printable character (U+{ord(bad):04X})")
    return name


def slugify(name: str) -> str:
    """Return the file-name stem of a target: deterministic, safe in any path, a safe name kept as it is.

    Parameters
    ----------
    name : str
        A display name (:func:`check_target_name`).

    Returns
    -------
    str
        ``name`` itself when it matches :data:`SAFE_SLUG`; otherwise its ASCII transliteration (accents dropped
        by Unicode NFKD) with every run of other characters replaced by one ``-``, stripped of leading and
        trailing ``-``, ``.``, ``_``, ``+`` and cut to :data:`MAX_SLUG_LENGTH` characters (``"NGC 1300"`` ->
        ``"NGC-1300"``, ``"2019 SK11"`` -> ``"2019-SK11"``). A name with no ASCII letter or digit gets
        ``target-`` and the first 12 hex digits of the SHA-256 of its UTF-8 bytes.
    """
    if SAFE_SLUG.fullmatch(name):
        return name
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    slug = _UNSAFE_RUN.sub("-", ascii_name).strip("-._+")[:MAX_SLUG_LENGTH].rstrip("-._+")
    if not slug:
        slug = "target-" + hashlib.sha256(name.encode("utf-8")).hexdigest()[:12]
    return slug


def slug_collisions(names: list[str]) -> list[tuple[int, int]]:
    """Pairs ``(first, later)`` of positions in ``names`` whose slugs are equal (each later name reported once).

    Identical names collide too; the manifest reports those as duplicates before asking about slugs.
    """
    first: dict[str, int] = {}
    pairs = []
    for i, name in enumerate(names):
        slug = slugify(name)
        if slug in first:
            pairs.append((first[slug], i))
        else:
            first[slug] = i
    return pairs


def tic_id(name: str) -> int | None:
    """Return the TIC number a name gives, else ``None``.

    ``"TIC 261136679"``, ``"TIC261136679"`` and ``"tic 261136679"`` all give 261136679.
    """
    match = _TIC.fullmatch(name.strip())
    return int(match.group(1)) if match else None


def object_name(name: str) -> str:
    """Return the ``OBJECT`` card of a target's products: its display name, as FITS allows it.

    The display name is what the manifest calls the target (``"NGC 1300"``, ``"TIC 261136679"``,
    ``"tess-variable"``); astrocut writes an empty ``OBJECT``, which loses it. FITS headers are ASCII: accents are
    dropped (Unicode NFKD) and any other non-ASCII character becomes ``?``.
    """
    decomposed = unicodedata.normalize("NFKD", name)
    return "".join(c if " " <= c <= "~" else "?" for c in decomposed if not unicodedata.combining(c))
