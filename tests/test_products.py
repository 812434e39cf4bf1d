"""The batch layer behind the workflow's jobs, exercised directly (no Snakemake)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import servers
from astropy.io import fits

from skycut.pipeline.manifest import validate_manifest
from skycut.pipeline.plan import fsspec_kwargs
from skycut.pipeline.products import cut_cube, cut_images, read_index, render_images

s3_server = servers.s3_server  # loopback moto S3 fixture


def _target(name, ra, dec, size=15):
    return {"name": name, "coordinates": [float(ra), float(dec)], "size": size}


def test_cut_images_writes_one_file_per_target_and_skips_misses(sim_hst, tmp_path):
    truth = sim_hst.truth
    image = next(f for f in sim_hst.files if "x05y09" in f.name and "f606w" in f.name)
    ra, dec = truth["center"]
    targets = [_target("inside", ra, dec, [21, 31]), _target("far", ra + 1.0, dec)]
    index = cut_images([str(image)], targets, str(tmp_path / "out"), str(tmp_path / "out" / "batch-0000.json"),
                       extensions="SCI")
    assert set(index["products"]) == {"inside"}
    assert "far" in index["skipped"] and image.name in index["skipped"]["far"]
    with fits.open(index["products"]["inside"][0]) as hdul:
        assert hdul[1].data.shape == (31, 21)
    assert read_index(tmp_path / "out" / "batch-0000.json") == json.loads(json.dumps(index))


def test_render_greyscale_from_index(sim_hst, tmp_path):
    image = next(f for f in sim_hst.files if "x05y09" in f.name and "f435w" in f.name)
    ra, dec = sim_hst.truth["center"]
    cut_images([str(image)], [_target("c", ra, dec, 40)], str(tmp_path / "cut"), str(tmp_path / "cut.json"),
               extensions="SCI")
    index = render_images({"b": [str(tmp_path / "cut.json")]}, str(tmp_path / "png"), str(tmp_path / "png.json"),
                          stretch="linear", minmax_value=[0, 1])
    (png,) = index["products"]["c"]
    from PIL import Image

    assert Image.open(png).size == (40, 40)


def test_cut_cube_batch_skips_off_ccd_targets(sim_tess, tmp_path):
    from skycut.tess.cube_factory import CubeFactory

    cube = CubeFactory().make_cube([str(f) for f in sim_tess.files], cube_file=str(tmp_path / "c-cube.fits"),
                                   verbose=False)
    var = sim_tess.truth["variable"]
    targets = [_target("var", var["ra"], var["dec"], 7), _target("var9", var["ra"], var["dec"], 9),
               _target("nowhere", (var["ra"] + 180) % 360, -var["dec"], 7)]
    index = cut_cube(cube, targets, str(tmp_path / "tpf"), str(tmp_path / "tpf" / "b.json"))
    assert set(index["products"]) == {"var", "var9"}
    assert "nowhere" in index["skipped"]
    with fits.open(index["products"]["var9"][0]) as hdul:
        assert hdul["PIXELS"].data["FLUX"].shape[1:] == (9, 9)
        flux = hdul["PIXELS"].data["FLUX"]
        assert np.isfinite(flux).all()


def test_bad_input_raises_naming_the_file(tmp_path):
    bogus = tmp_path / "not-fits.fits"
    bogus.write_text("hello")
    with pytest.raises(ValueError, match="not-fits.fits"):
        cut_images([str(bogus)], [_target("a", 1, 2)], str(tmp_path / "o"), str(tmp_path / "o.json"))
    assert not (tmp_path / "o.json").exists()


def test_manifest_fsspec_options_reach_a_loopback_s3_input(sim_hst, s3_server, tmp_path):
    image = next(f for f in sim_hst.files if "x05y09" in f.name and "f606w" in f.name)
    uri = s3_server.upload(image)
    ra, dec = sim_hst.truth["center"]
    opts = s3_server.fsspec_kwargs
    manifest = validate_manifest({
        "targets": [{"name": "c", "coordinates": [ra, dec], "size": 25}],
        "inputs": {"remote": {"paths": [uri], "extensions": "SCI",
                              "fsspec": {"endpoint_url": opts["endpoint_url"], "key": opts["key"],
                                         "secret": opts["secret"]}}},
    })
    s3_server.log.reset()
    index = cut_images([uri], [_target("c", ra, dec, 25)], str(tmp_path / "out"), str(tmp_path / "i.json"),
                       extensions="SCI", fsspec_kwargs=fsspec_kwargs(manifest.inputs["remote"].fsspec))
    local = cut_images([str(image)], [_target("c", ra, dec, 25)], str(tmp_path / "loc"), str(tmp_path / "l.json"),
                       extensions="SCI")
    with fits.open(index["products"]["c"][0]) as remote_hdul, fits.open(local["products"]["c"][0]) as local_hdul:
        np.testing.assert_array_equal(remote_hdul[1].data, local_hdul[1].data)
    assert 0 < s3_server.log.bytes_sent < image.stat().st_size / 2  # a cutout, not the whole file
