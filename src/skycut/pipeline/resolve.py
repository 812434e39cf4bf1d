"""Positions of targets given by name only, resolved once at plan time and pinned in a file.

A manifest target may leave out ``coordinates``: its name is then resolved when the plan is made, before
Snakemake builds its DAG. TIC names (``"TIC 261136679"``, :func:`skycut.pipeline.names.tic_id`) are looked up in
the TESS Input Catalog through MAST's catalog service (the Mashup ``invoke`` API, service
``Mast.Catalogs.Filtered.Tic``, filtered on ``ID``); other names through CDS's Sesame (SIMBAD, then NED, then
VizieR) by astropy's name resolver.

Every resolved position is pinned in the resolved-targets file (``<output_dir>/resolved-targets.json``, JSON: per
display name ``ra``, ``dec`` in ICRS degrees, ``source``, ``query`` and ``resolved_at``, the latter from
``SOURCE_DATE_EPOCH`` like every time stamp skycut writes). A target the file already holds is taken from it with
no network use, so reruns (and Snakemake's cluster jobs, which re-read the workflow) are offline and identical.
Delete a target's entry (or the file) to resolve it again.

Services can be pointed elsewhere (a mirror, or a test's loopback fake): ``SKYCUT_MAST_URL`` is MAST's base URL
(default ``https://mast.stsci.edu``; requests go to ``<base>/api/v0/invoke``) and ``SKYCUT_SESAME_URL`` a Sesame
base URL (default: astropy's ``astropy.coordinates.name_resolve.sesame_url``, which may also be set directly).
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.atomic import write_bytes
from ..core.provenance import build_time
from ..exceptions import SkycutError
from .names import tic_id

if TYPE_CHECKING:  # pragma: no cover
    from .targets import Target

log = logging.getLogger(__name__)

MAST_URL = "https://mast.stsci.edu"
MAST_URL_ENV = "SKYCUT_MAST_URL"
SESAME_URL_ENV = "SKYCUT_SESAME_URL"
MAST_TIC_SERVICE = "Mast.Catalogs.Filtered.Tic"
#: Seconds to wait for one answer of a service.
TIMEOUT = 30.0
#: How often an unfinished (``EXECUTING``) MAST request is repeated, one second apart.
MAST_RETRIES = 5
PIN_FORMAT = "skycut resolved targets 1"


class TargetResolutionError(SkycutError):
    """Targets given by name only whose position could not be resolved (and is not pinned).

    ``problems`` maps each target's name to the cause (the service and its answer, or the network error).
    """

    def __init__(self, problems: dict[str, str], pin_path: str):
        self.problems = dict(problems)
        lines = "\n".join(f"  target {name!r}: {cause}" for name, cause in self.problems.items())
        super().__init__(
            f"cannot resolve {len(problems)} target(s) given without coordinates, and "
            f"{pin_path} does not pin them:\n{lines}"
        )


@dataclass(frozen=True)
class Resolved:
    """A name's resolved ICRS position and where it came from."""

    ra: float
    dec: float
    source: str  # "MAST TIC" or "Sesame"
    query: str  # what was asked: the TIC id or the name
    resolved_at: str  # ISO time (SOURCE_DATE_EPOCH)


def resolve_targets(
    targets: list[Target], pin_path: str | os.PathLike, *, timeout: float = TIMEOUT
) -> dict[str, Resolved]:
    """Give every target without coordinates its position: from the pin file, else from the name services.

    Parameters
    ----------
    targets : list of Target
        The manifest's targets; those with ``coordinates`` are left alone.
    pin_path : str or path-like
        The resolved-targets file: read when it exists; written (atomically, the earlier pins kept) when a name
        was newly resolved.
    timeout : float
        Seconds to wait for each service's answer.

    Returns
    -------
    dict
        Name -> :class:`Resolved`, for the targets without coordinates (empty, with no file read or written,
        when every target has coordinates).

    Raises
    ------
    TargetResolutionError
        Naming every target that could not be resolved, with the cause; the names that were resolved are
        pinned first, so a rerun asks only for the others.
    ValueError
        For an unreadable or malformed pin file (naming it).
    """
    todo = [t for t in targets if t.coordinates is None]
    if not todo:
        return {}
    pin_path = Path(pin_path)
    pins = read_pins(pin_path)
    new: dict[str, Resolved] = {}
    problems: dict[str, str] = {}
    for target in todo:
        if target.name in pins or target.name in new:
            continue
        try:
            new[target.name] = resolve_name(target.name, timeout=timeout)
        except (OSError, ValueError) as exc:
            problems[target.name] = str(exc)
    if new:
        pins.update(new)
        write_pins(pin_path, pins)
        log.info("resolved %d target name(s), pinned in %s", len(new), pin_path)
    if problems:
        raise TargetResolutionError(problems, str(pin_path))
    for target in todo:
        found = pins[target.name]
        target.set_resolved(found.ra, found.dec)
    return {t.name: pins[t.name] for t in todo}


def resolve_name(name: str, *, timeout: float = TIMEOUT) -> Resolved:
    """Resolve one name over the network: a TIC name through MAST, any other through Sesame.

    Raises
    ------
    ValueError
        When the service does not know the name or answers with something other than a position.
    OSError
        When the service cannot be reached (the message names it and its URL).
    """
    tic = tic_id(name)
    if tic is not None:
        ra, dec = query_mast_tic(tic, timeout=timeout)
        source, query = "MAST TIC", str(tic)
    else:
        ra, dec = query_sesame(name, timeout=timeout)
        source, query = "Sesame", name
    ra, dec = _checked(ra, dec, f"{source} answer for {name!r}")
    stamp = build_time().strftime("%Y-%m-%dT%H:%M:%SZ")
    log.info("%s -> ra %.7f, dec %.7f (%s)", name, ra, dec, source)
    return Resolved(ra, dec, source, query, stamp)


def mast_url() -> str:
    """MAST's base URL: ``$SKYCUT_MAST_URL`` or :data:`MAST_URL`."""
    return (os.environ.get(MAST_URL_ENV) or MAST_URL).rstrip("/")


def query_mast_tic(tic: int, *, timeout: float = TIMEOUT) -> tuple[float, float]:
    """Query the TIC position (ICRS degrees, epoch J2000) of TIC ``tic`` from MAST's ``Mast.Catalogs.Filtered.Tic``."""
    url = f"{mast_url()}/api/v0/invoke"
    request = {
        "service": MAST_TIC_SERVICE,
        "format": "json",
        "pagesize": 10,
        "page": 1,
        "params": {"columns": "ID,ra,dec", "filters": [{"paramName": "ID", "values": [str(tic)]}]},
    }
    body = urllib.parse.urlencode({"request": json.dumps(request)}).encode("ascii")
    for _attempt in range(MAST_RETRIES):
        req = urllib.request.Request(
            url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Accept": "application/json",
                "User-Agent": "skycut",
            },
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                answer = json.loads(resp.read().decode("utf-8"))
        except urllib.error.HTTPError as exc:
            raise OSError(f"MAST ({url}) answered HTTP {exc.code} {exc.reason}") from None
        except urllib.error.URLError as exc:
            raise OSError(f"MAST ({url}) cannot be reached: {exc.reason}") from None
        except (TimeoutError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise OSError(f"MAST ({url}) gave no usable answer: {exc}") from None
        status = answer.get("status") if isinstance(answer, dict) else None
        if status != "EXECUTING":
            break
        time.sleep(1.0)
    if status != "COMPLETE":
        msg = answer.get("msg") if isinstance(answer, dict) else None
        raise ValueError(f"MAST ({url}) did not complete the TIC query (status {status!r}: {msg or ''})")
    rows = [r for r in answer.get("data") or [] if str(r.get("ID")) == str(tic)]
    if not rows:
        raise ValueError(f"TIC {tic} is not in the TESS Input Catalog (MAST, {url})")
    return rows[0].get("ra"), rows[0].get("dec")


def query_sesame(name: str, *, timeout: float = TIMEOUT) -> tuple[float, float]:
    """``name``'s ICRS position from Sesame by astropy's name resolver (``$SKYCUT_SESAME_URL`` if set)."""
    from contextlib import nullcontext

    from astropy.coordinates.name_resolve import NameResolveError, get_icrs_coordinates, sesame_url
    from astropy.utils.data import conf

    base = os.environ.get(SESAME_URL_ENV)
    urls = [base] if base else list(sesame_url.get())
    with sesame_url.set(urls) if base else nullcontext(), conf.set_temp("remote_timeout", timeout):
        try:
            coord = get_icrs_coordinates(name, cache=False)
        except NameResolveError as exc:
            text = " ".join(str(exc).split())
            if "Unable to find" in text:
                raise ValueError(f"Sesame does not know the name ({text})") from None
            raise OSError(f"Sesame ({', '.join(urls)}) cannot be reached: {text}") from None
    return float(coord.ra.deg), float(coord.dec.deg)


def _checked(ra: Any, dec: Any, what: str) -> tuple[float, float]:
    try:
        ra, dec = float(ra), float(dec)
    except (TypeError, ValueError):
        raise ValueError(f"{what}: not a position (ra={ra!r}, dec={dec!r})") from None
    if not (math.isfinite(ra) and math.isfinite(dec) and 0 <= ra <= 360 and -90 <= dec <= 90):
        raise ValueError(f"{what}: position out of range (ra={ra!r}, dec={dec!r})")
    return ra % 360.0, dec


def read_pins(path: str | os.PathLike) -> dict[str, Resolved]:
    """Read the resolved-targets file's pins (empty when it does not exist).

    Raises
    ------
    ValueError
        For a file that is not a resolved-targets file or holds a bad entry (naming the file and the entry).
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"resolved-targets file {path}: cannot be read: {exc}") from None
    if (
        not isinstance(data, dict)
        or data.get("format") != PIN_FORMAT
        or not isinstance(data.get("targets"), dict)
    ):
        raise ValueError(
            f"resolved-targets file {path}: not a skycut resolved-targets file "
            f'(expected {{"format": {PIN_FORMAT!r}, "targets": {{...}}}})'
        )
    pins = {}
    for name, entry in data["targets"].items():
        try:
            ra, dec = _checked(entry["ra"], entry["dec"], f"resolved-targets file {path}: target {name!r}")
            pins[name] = Resolved(
                ra, dec, str(entry["source"]), str(entry["query"]), str(entry["resolved_at"])
            )
        except (KeyError, TypeError):
            raise ValueError(
                f"resolved-targets file {path}: target {name!r} needs ra, dec, source, query and resolved_at"
            ) from None
    return pins


def write_pins(path: str | os.PathLike, pins: dict[str, Resolved]) -> Path:
    """Write the resolved-targets file atomically (names sorted, so the same pins give the same bytes)."""
    data = {"format": PIN_FORMAT, "targets": {name: asdict(pins[name]) for name in sorted(pins)}}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return write_bytes((json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode("utf-8"), path)
