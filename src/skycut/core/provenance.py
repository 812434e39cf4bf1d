"""What every product says about when and how it was made, reproducibly.

``SOURCE_DATE_EPOCH`` (the reproducible-builds convention: seconds since 1970-01-01 UTC) pins every time stamp
skycut writes: the ``DATE`` card of a new file and the time astropy stamps into the comments of ``CHECKSUM`` and
``DATASUM``. Without it, the current UTC time is used, as astropy and astrocut do.
"""

from __future__ import annotations

import datetime as _dt
import os

from ..exceptions import InvalidInputError


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
