"""Provenance stamps in image formats without FITS cards: a JPEG comment segment, a GIF comment extension."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from skycut.core.stamps import stamp_product


def _pixels(img: Image.Image) -> list[np.ndarray]:
    """Every frame of an open image as RGB arrays."""
    out = []
    for k in range(getattr(img, "n_frames", 1)):
        img.seek(k)
        out.append(np.asarray(img.convert("RGB")))
    return out


def _frames(n: int) -> list[Image.Image]:
    rng = np.random.default_rng(0)
    return [Image.fromarray((rng.random((20, 30)) * 255).astype("uint8")) for _ in range(n)]


@pytest.mark.parametrize("name", ["strip.jpg", "frames.gif", "still.gif"])
def test_stamp_keeps_the_pixels_and_replaces_an_earlier_stamp(tmp_path, name):
    path = tmp_path / name
    frames = _frames(3 if name == "frames.gif" else 1)
    if name.endswith(".jpg"):
        frames[0].convert("RGB").save(path, quality=90)
    else:
        frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    with Image.open(path) as img:
        before = _pixels(img)
    assert stamp_product(path, "ab" * 32, "9.9")
    assert stamp_product(path, "cd" * 32, "9.9")  # a second stamp replaces the first
    data = path.read_bytes()
    assert data.count(b"skycut manifest hash") == 1
    with Image.open(path) as img:
        assert img.info["comment"] == b"skycut version: 9.9; skycut manifest hash: " + b"cd" * 32
        after = _pixels(img)
    assert len(after) == len(before)
    assert all(np.array_equal(a, b) for a, b in zip(after, before, strict=True))


def test_stamp_refuses_a_file_of_another_format(tmp_path):
    path = tmp_path / "fake.gif"
    path.write_bytes(b"not an image")
    with pytest.raises(ValueError, match="not a GIF"):
        stamp_product(path, "ab" * 32)
