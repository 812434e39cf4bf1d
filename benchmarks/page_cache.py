"""The page cache of the benchmark machine, prepared alike for skycut and the reference before a timed run.

The machine is a Firecracker VM: memory the guest has not used lately is given back to the host, and idle page
cache is reclaimed within seconds (``kdamond``). So a timed run's inputs may or may not be cached, and its writes
may land in warm or cold memory, by chance. :func:`warm` reads inputs whole; :func:`prime_page_cache` writes and
deletes a file, so the next writer gets recently freed memory.
"""

from __future__ import annotations

import os
from pathlib import Path


def warm(*paths: str | os.PathLike) -> None:
    """Read every file of ``paths`` whole (into one reused buffer), so they are in the page cache."""
    buf = bytearray(16 << 20)
    for path in paths:
        with open(path, "rb", buffering=0) as fh:
            while fh.readinto(buf):
                pass


def prime_page_cache(directory: str | os.PathLike, nbytes: int, chunk: int = 8 << 20) -> None:
    """Write ``nbytes`` to a file in ``directory`` and delete it, so the next writer gets recently freed memory.

    On the benchmark VM, touching memory the guest has not used lately costs about 1.4 ms per MB (measured: a
    fresh 300 MB array takes 1.44 ms/MB the first time, 0.25 ms/MB once freed and taken again); writing a file
    into such memory costs ~2 ms/MB instead of ~0.4. Which writer of a pair gets the warm pages would otherwise
    decide the ratio (the deep floor measured 3.4 to 11.1 ms per target in five runs of one session), so every
    timed run starts primed alike.
    """
    block = b"\0" * chunk
    path = Path(directory) / ".prime-page-cache"
    with open(path, "wb") as fh:
        for _ in range(max(1, nbytes // chunk)):
            fh.write(block)
    path.unlink()
