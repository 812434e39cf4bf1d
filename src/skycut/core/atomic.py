"""Crash-safe output: write to a temporary name beside the target, then rename.

A process killed at any point leaves either the previous file or nothing at the final name, never a
half-written file. Temporary names start with ``.`` and end in ``.part`` so globs of the outputs do
not pick them up.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _umask()


def temporary_path(final: str | os.PathLike) -> Path:
    """Return a fresh, unused temporary path in the directory of ``final`` (the directory is created)."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".part", dir=final.parent)
    os.close(fd)
    return Path(name)


@contextlib.contextmanager
def atomic_output(final: str | os.PathLike, *, fsync: bool = False) -> Iterator[Path]:
    """Context manager yielding a temporary path; on success it is renamed to ``final``.

    On any exception the temporary file is removed and ``final`` is left untouched.

    Parameters
    ----------
    final : path-like
        The name the finished file must have.
    fsync : bool
        Flush the file to disk before the rename (for large products such as cubes).
    """
    final = Path(final)
    tmp = temporary_path(final)
    try:
        yield tmp
        if fsync:
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; products follow the umask like any file
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def write_hdulist(hdulist, final: str | os.PathLike, *, checksum: bool = True) -> Path:
    """Write an astropy ``HDUList`` atomically to ``final`` and return the final path."""
    with atomic_output(final) as tmp:
        hdulist.writeto(tmp, overwrite=True, checksum=checksum)
    return Path(final)


def write_bytes(data: bytes, final: str | os.PathLike) -> Path:
    """Write ``data`` atomically to ``final``."""
    with atomic_output(final) as tmp:
        Path(tmp).write_bytes(data)
    return Path(final)


def write_zip(members: Iterable[tuple[str, bytes]], output_dir: str | os.PathLike, filename: str | os.PathLike) -> str:
    """Write ``(member name, bytes)`` pairs into one deflated zip archive, atomically, and return its path.

    ``.zip`` is appended to ``filename`` when missing (astrocut's ``write_as_zip`` convention).
    """
    import io
    import zipfile

    name = os.fspath(filename)
    if not name.lower().endswith(".zip"):
        name += ".zip"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for member, data in members:
            zf.writestr(member, data)
    return str(write_bytes(buf.getvalue(), Path(output_dir) / name))
