"""The image jobs behind the workflow (cutouts, render), exercised directly (no Snakemake)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import servers
from astropy.io import fits

from skycut.pipeline.jobs.images import cut_images
from skycut.pipeline.jobs.index import read_index
from skycut.pipeline.jobs.render import render_images
from skycut.pipeline.manifest import validate_manifest
from skycut.pipeline.sections import InputSet, RenderSpec
from skycut.pipeline.targets import Target

s3_server = servers.s3_server  # loopback moto S3 fixture


def _target(name, ra, dec, size=15):
    return Target(name=name, coordinates=[float(ra), float(dec)], size=size)


def _fits_set(files, **options):
    return InputSet(paths=[str(f) for f in files], **options)


def test_cut_images_writes_one_file_per_target_and_skips_misses(sim_hst, tmp_path):
    truth = sim_hst.truth
    image = next(f for f in sim_hst.files if "x05y09" in f.name and "f606w" in f.name)
    ra, dec = truth["center"]
    targets = [_target("inside", ra, dec, [21, 31]), _target("far", ra + 1.0, dec)]
    index = cut_images(
        [str(image)], targets, _fits_set([image], extensions="SCI"), str(tmp_path / "out" / "batch-0000.json")
    )
    assert set(index["products"]) == {"inside"}
    assert "far" in index["skipped"] and image.name in index["skipped"]["far"]
    assert index["products"]["inside"] == [str(tmp_path / "out" / "inside.fits")]  # beside the index
    with fits.open(index["products"]["inside"][0]) as hdul:
        assert hdul[1].data.shape == (31, 21)
    assert read_index(tmp_path / "out" / "batch-0000.json") == json.loads(json.dumps(index))
    assert "failed" not in index  # written only when an item failed


def test_render_greyscale_from_index(sim_hst, tmp_path):
    image = next(f for f in sim_hst.files if "x05y09" in f.name and "f435w" in f.name)
    ra, dec = sim_hst.truth["center"]
    cut_images(
        [str(image)],
        [_target("c", ra, dec, 40)],
        _fits_set([image], extensions="SCI"),
        str(tmp_path / "cut" / "cut.json"),
    )
    index = render_images(
        {"b": [str(tmp_path / "cut" / "cut.json")]},
        RenderSpec(inputs=["b"], stretch="linear", minmax_value=[0, 1]),
        str(tmp_path / "png" / "png.json"),
    )
    (png,) = index["products"]["c"]
    assert png == str(tmp_path / "png" / "b" / "c.png")
    from PIL import Image

    assert Image.open(png).size == (40, 40)


def test_bad_input_raises_naming_the_file(tmp_path):
    bogus = tmp_path / "not-fits.fits"
    bogus.write_text("hello")
    with pytest.raises(ValueError, match="not-fits.fits"):
        cut_images([str(bogus)], [_target("a", 1, 2)], _fits_set([bogus]), str(tmp_path / "o" / "o.json"))
    assert not (tmp_path / "o" / "o.json").exists()


def test_manifest_fsspec_options_reach_a_loopback_s3_input(sim_hst, s3_server, tmp_path):
    image = next(f for f in sim_hst.files if "x05y09" in f.name and "f606w" in f.name)
    uri = s3_server.upload(image)
    ra, dec = sim_hst.truth["center"]
    opts = s3_server.fsspec_kwargs
    manifest = validate_manifest(
        {
            "targets": [{"name": "c", "coordinates": [ra, dec], "size": 25}],
            "inputs": {
                "remote": {
                    "paths": [uri],
                    "extensions": "SCI",
                    "fsspec": {
                        "endpoint_url": opts["endpoint_url"],
                        "key": opts["key"],
                        "secret": opts["secret"],
                    },
                },
                "local": {"paths": [str(image)], "extensions": "SCI"},
            },
        }
    )
    s3_server.log.reset()
    index = cut_images([uri], manifest.targets, manifest.inputs["remote"], str(tmp_path / "out" / "i.json"))
    local = cut_images(
        [str(image)], manifest.targets, manifest.inputs["local"], str(tmp_path / "loc" / "l.json")
    )
    with (
        fits.open(index["products"]["c"][0]) as remote_hdul,
        fits.open(local["products"]["c"][0]) as local_hdul,
    ):
        np.testing.assert_array_equal(remote_hdul[1].data, local_hdul[1].data)
    assert 0 < s3_server.log.bytes_sent < image.stat().st_size / 2  # a cutout, not the whole file
