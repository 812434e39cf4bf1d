"""One meaning of ``verbose`` everywhere: DEBUG level for the ``skycut`` logger, and nothing else.

The library never installs log handlers (only the :class:`logging.NullHandler` in ``skycut/__init__.py``);
where records go is the application's choice: the ``skycut`` command and the workflow's job scripts configure
handlers in :mod:`skycut.pipeline`, a notebook user calls :func:`logging.basicConfig`.
"""

from __future__ import annotations

import logging

LOGGER = "skycut"


def set_verbose(verbose: bool) -> None:
    """Set the ``skycut`` logger to DEBUG when ``verbose`` is true; leave it as it is otherwise."""
    if verbose:
        logging.getLogger(LOGGER).setLevel(logging.DEBUG)
