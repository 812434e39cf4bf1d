"""Targets as astronomers name them (issue 10): display names, file-name slugs, OBJECT/TICID, and positions
resolved from names (against loopback fakes of Sesame and MAST) and pinned for offline reruns."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from astropy.io import fits
from fakes_resolvers import FakeMast, FakeSesame
from workflow_runs import snakemake

from skycut.exceptions import ManifestError
from skycut.pipeline.jobs.cube_cutouts import cut_cube
from skycut.pipeline.manifest import validate_manifest
from skycut.pipeline.names import object_name, slugify, tic_id
from skycut.pipeline.plan import RESOLVED_TARGETS, Plan
from skycut.pipeline.resolve import MAST_URL_ENV, SESAME_URL_ENV, TargetResolutionError, read_pins

ROOT = Path(__file__).resolve().parents[1]
NGC1300 = (49.920815, -19.411114)
TIC_NUMBER = 261136679
TIC_POSITION = (98.5421, -68.1456)


@pytest.fixture
def services(monkeypatch):
    """Both fakes running, skycut pointed at them; ``SOURCE_DATE_EPOCH`` pins the resolution time."""
    with FakeSesame({"NGC 1300": NGC1300}) as sesame, FakeMast({str(TIC_NUMBER): TIC_POSITION}) as mast:
        monkeypatch.setenv(SESAME_URL_ENV, sesame.url)
        monkeypatch.setenv(MAST_URL_ENV, mast.url)
        monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
        yield sesame, mast


def _dead_url() -> str:
    """A loopback URL nothing listens on (a fake started and stopped)."""
    fake = FakeSesame({})
    url = fake.url
    fake.close()
    return url


# ------------------------------------------------------------------------------------------ names and slugs


@pytest.mark.parametrize(
    "name",
    [
        "TIC 261136679",
        "NGC 1300",
        "2019 SK11",
        "Barnard's Star",
        "M 31 (core)",
        "C/2020 F3 (NEOWISE)",
        "../escape",
        "a/b",
        "α Cen",
        "x" * 200,
    ],
)
def test_printable_names_validate(name):
    m = validate_manifest({"targets": [{"name": name, "coordinates": "10 20"}]})
    assert m.targets[0].name == name
    slug = m.targets[0].slug
    assert slug == slugify(name)
    assert 1 <= len(slug) <= 100 and "/" not in slug and not slug.startswith(".")


@pytest.mark.parametrize(
    ("name", "word"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("a\tb", "non-printable"),
        ("line\nbreak", "non-printable"),
        ("NGC 1300 ", "white space"),
        ("x" * 201, "200"),
    ],
)
def test_bad_names_are_refused_naming_the_field(name, word):
    with pytest.raises(ManifestError) as info:
        validate_manifest(
            {"targets": [{"name": "ok", "coordinates": "1 2"}, {"name": name, "coordinates": "1 2"}]}
        )
    problems = [p for p in info.value.problems if p[0] == "targets[1].name"]
    assert problems and word in problems[0][1], info.value.problems


def test_slugs_are_deterministic_and_keep_safe_names():
    for safe in ("tess-variable", "skycell-overlap", "knot", "M31", "a_b.c+d-", "x" * 100):
        assert slugify(safe) == safe
    assert slugify("NGC 1300") == "NGC-1300"
    assert slugify("2019 SK11") == "2019-SK11"
    assert slugify("TIC 261136679") == "TIC-261136679"
    assert slugify("C/2020 F3 (NEOWISE)") == "C-2020-F3-NEOWISE"
    assert slugify("../escape") == "escape"
    assert slugify("a/b") == "a-b"
    assert slugify("Hélène  ") == "Helene"
    assert slugify("北极星") == slugify("北极星") != slugify("南极星")
    assert slugify("北极星").startswith("target-")
    assert len(slugify("a b" * 100)) == 100


def test_slug_collisions_are_refused_naming_both():
    with pytest.raises(ManifestError) as info:
        validate_manifest(
            {
                "targets": [
                    {"name": "NGC 1300", "coordinates": "1 2"},
                    {"name": "other", "coordinates": "1 2"},
                    {"name": "NGC-1300", "coordinates": "3 4"},
                ]
            }
        )
    ((field, message, _value),) = info.value.problems
    assert field == "targets[2].name"
    assert "'NGC 1300'" in message and "'NGC-1300'" in message and "targets[0]" in message


def test_section_target_lists_take_display_names():
    m = validate_manifest(
        {
            "targets": [{"name": "NGC 1300", "coordinates": "1 2"}],
            "cube_cutouts": {"t": {"cubes": ["c.fits"], "targets": ["NGC 1300"]}},
        }
    )
    assert m.cube_cutouts["t"].targets == ["NGC 1300"]
    with pytest.raises(ManifestError) as info:
        validate_manifest(
            {
                "targets": [{"name": "NGC 1300", "coordinates": "1 2"}],
                "cube_cutouts": {"t": {"cubes": ["c.fits"], "targets": ["NGC-1300"]}},
            }
        )
    ((field, message, _value),) = info.value.problems
    assert field == "cube_cutouts.t.targets[0]" and message.startswith("unknown target")


def test_tic_names():
    for name in ("TIC 261136679", "TIC261136679", "tic 261136679", "TIC 0261136679"):
        assert tic_id(name) == TIC_NUMBER
    for name in ("TICA 1", "TIC", "TIC 12a", "NGC 1300", "HIP 1 TIC 2"):
        assert tic_id(name) is None


def test_object_names():
    assert object_name("tess-variable") == "tess-variable"  # the display name, always (astrocut writes "")
    assert object_name("TIC261136679") == "TIC261136679"
    assert object_name("NGC 1300") == "NGC 1300"
    assert object_name("Hélène 1") == "Helene 1"
    assert object_name("α Cen") == "? Cen"


# ------------------------------------------------------------------------------------------ TPFs


@pytest.fixture(scope="module")
def cube(sim_tess, tmp_path_factory):
    from skycut.tess.cube_factory import CubeFactory

    out = tmp_path_factory.mktemp("names_cube") / "c-cube.fits"
    return CubeFactory().make_cube([str(f) for f in sim_tess.files], cube_file=str(out), verbose=False)


def test_tpf_object_and_ticid(sim_tess, cube, tmp_path):
    var = sim_tess.truth["variable"]
    here = [var["ra"], var["dec"]]
    m = validate_manifest(
        {
            "targets": [
                {"name": "TIC 261136679", "coordinates": here, "size": 5},
                {"name": "NGC 1300", "coordinates": here, "size": 5},
                {"name": "label", "coordinates": here, "size": 5},
            ],
            "cube_cutouts": {"tpf": {"cubes": [str(cube)]}},
        }
    )
    index = cut_cube(str(cube), m.targets, m.cube_cutouts["tpf"], str(tmp_path / "tpf" / "batch-0000.json"))
    assert index["products"] == {
        "TIC 261136679": [str(tmp_path / "tpf" / "TIC-261136679.fits")],
        "NGC 1300": [str(tmp_path / "tpf" / "NGC-1300.fits")],
        "label": [str(tmp_path / "tpf" / "label.fits")],
    }
    expected = {
        "TIC 261136679": ("TIC 261136679", TIC_NUMBER),
        "NGC 1300": ("NGC 1300", None),
        "label": ("label", None),
    }
    for name, (obj, ticid) in expected.items():
        with fits.open(index["products"][name][0], checksum=True) as hdul:
            for hdu in hdul:  # PIXELS and APERTURE inherit the primary's target keywords, as astrocut's
                assert hdu.header["OBJECT"] == obj
                if ticid is None:
                    assert hdu.header["TICID"] is None  # astrocut's undefined TICID
                else:
                    assert hdu.header["TICID"] == ticid
            assert hdul[0].header["RA_OBJ"] == pytest.approx(var["ra"])


# ------------------------------------------------------------------------------------------ resolution


def test_resolution_against_the_fakes_is_pinned_and_reused_offline(services, tmp_path, monkeypatch):
    sesame, mast = services
    data = {
        "output_dir": str(tmp_path / "out"),
        "allow_output_outside": True,
        "targets": [{"name": "NGC 1300"}, {"name": "TIC 261136679"}, {"name": "given", "coordinates": "1 2"}],
    }
    plan = Plan(validate_manifest(data))
    by_name = {t.name: t for t in plan.manifest.targets}
    assert (by_name["NGC 1300"].ra, by_name["NGC 1300"].dec) == pytest.approx(NGC1300)
    assert (by_name["TIC 261136679"].ra, by_name["TIC 261136679"].dec) == pytest.approx(TIC_POSITION)
    assert (by_name["given"].ra, by_name["given"].dec) == (1.0, 2.0)
    assert sesame.requests == ["NGC 1300"] and mast.requests == [str(TIC_NUMBER)]
    pin_file = tmp_path / "out" / RESOLVED_TARGETS
    pins = read_pins(pin_file)
    assert set(pins) == {"NGC 1300", "TIC 261136679"}
    assert pins["NGC 1300"].source == "Sesame" and pins["TIC 261136679"].source == "MAST TIC"
    assert pins["TIC 261136679"].query == str(TIC_NUMBER)
    assert pins["NGC 1300"].resolved_at == "2023-11-14T22:13:20Z"  # SOURCE_DATE_EPOCH
    first_bytes = pin_file.read_bytes()

    # services down: the pinned file answers, nothing is asked, the positions and the file are identical
    sesame.close()
    mast.close()
    again = Plan(validate_manifest(data))
    assert [(t.ra, t.dec) for t in again.manifest.targets] == [(t.ra, t.dec) for t in plan.manifest.targets]
    assert pin_file.read_bytes() == first_bytes
    assert sesame.requests == ["NGC 1300"] and mast.requests == [str(TIC_NUMBER)]

    # a new name with the services down: an error naming it (and only it), the service and the pin file
    data["targets"].append({"name": "NGC 4565"})
    with pytest.raises(TargetResolutionError) as info:
        Plan(validate_manifest(data))
    assert isinstance(info.value, ValueError)
    assert list(info.value.problems) == ["NGC 4565"]
    assert (
        "Sesame" in info.value.problems["NGC 4565"] and "cannot be reached" in info.value.problems["NGC 4565"]
    )
    assert "'NGC 4565'" in str(info.value) and str(pin_file) in str(info.value)
    assert pin_file.read_bytes() == first_bytes


def test_no_network_and_nothing_pinned_names_each_target(tmp_path, monkeypatch):
    dead = _dead_url()
    monkeypatch.setenv(SESAME_URL_ENV, dead)
    monkeypatch.setenv(MAST_URL_ENV, dead)
    data = {
        "output_dir": str(tmp_path),
        "allow_output_outside": True,
        "targets": [{"name": "NGC 1300"}, {"name": "TIC 261136679"}],
    }
    with pytest.raises(TargetResolutionError) as info:
        Plan(validate_manifest(data))
    assert set(info.value.problems) == {"NGC 1300", "TIC 261136679"}
    assert "MAST" in info.value.problems["TIC 261136679"] and dead in info.value.problems["TIC 261136679"]
    assert "Sesame" in info.value.problems["NGC 1300"]
    assert not (tmp_path / RESOLVED_TARGETS).exists()


def test_unknown_names_are_errors_and_known_ones_still_pinned(services, tmp_path):
    data = {
        "output_dir": str(tmp_path),
        "allow_output_outside": True,
        "targets": [{"name": "NGC 1300"}, {"name": "no such thing"}, {"name": "TIC 1"}],
    }
    with pytest.raises(TargetResolutionError) as info:
        Plan(validate_manifest(data))
    assert set(info.value.problems) == {"no such thing", "TIC 1"}
    assert "does not know" in info.value.problems["no such thing"]
    assert "TIC 1 is not in the TESS Input Catalog" in info.value.problems["TIC 1"]
    assert set(read_pins(tmp_path / RESOLVED_TARGETS)) == {"NGC 1300"}


def test_manifests_with_coordinates_touch_neither_network_nor_pin_file(tmp_path, monkeypatch):
    monkeypatch.setenv(SESAME_URL_ENV, _dead_url())
    plan = Plan(
        validate_manifest(
            {
                "output_dir": str(tmp_path),
                "allow_output_outside": True,
                "targets": [{"name": "NGC 1300", "coordinates": "1 2"}],
            }
        )
    )
    assert plan.resolved == {}
    assert list(tmp_path.iterdir()) == []


def test_malformed_pin_file_is_an_error_naming_it(tmp_path, monkeypatch):
    monkeypatch.setenv(SESAME_URL_ENV, _dead_url())
    (tmp_path / RESOLVED_TARGETS).write_text(
        json.dumps(
            {
                "format": "skycut resolved targets 1",
                "targets": {
                    "NGC 1300": {"ra": 500, "dec": 0, "source": "x", "query": "x", "resolved_at": "x"}
                },
            }
        )
    )
    with pytest.raises(ValueError, match="NGC 1300.*out of range") as info:
        Plan(
            validate_manifest(
                {"output_dir": str(tmp_path), "allow_output_outside": True, "targets": [{"name": "NGC 1300"}]}
            )
        )
    assert RESOLVED_TARGETS in str(info.value)


# ------------------------------------------------------------------------------------------ the workflow


@pytest.mark.slow
def test_workflow_resolves_names_and_names_files_by_slug(sim_tess, cube, tmp_path):
    var = sim_tess.truth["variable"]
    near = (var["ra"], var["dec"])
    manifest = {
        "targets": [
            {"name": "NGC 1300", "size": 5},
            {"name": "TIC 261136679", "size": 5},
            {"name": "2019 SK11", "coordinates": list(near), "size": 5},
        ],
        "cube_cutouts": {"tess": {"cubes": [str(cube)]}},
    }
    (tmp_path / "m.yaml").write_text(yaml.safe_dump(manifest, allow_unicode=True))
    with FakeSesame({"NGC 1300": near}) as sesame, FakeMast({str(TIC_NUMBER): near}) as mast:
        services = {SESAME_URL_ENV: sesame.url, MAST_URL_ENV: mast.url}
        dry = snakemake(tmp_path, "m.yaml", "--cores", "1", "-n", env=services, timeout=600)
        assert dry.returncode == 0, dry.stdout[-2000:] + dry.stderr[-2000:]
        assert sesame.requests == ["NGC 1300"] and mast.requests == [str(TIC_NUMBER)]
    # the services are gone: the run plans from the pinned file
    pins = (tmp_path / "results" / RESOLVED_TARGETS).read_bytes()
    run = snakemake(tmp_path, "m.yaml", "--cores", "1", env=services, timeout=600)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert (tmp_path / "results" / RESOLVED_TARGETS).read_bytes() == pins
    out = tmp_path / "results" / "cube_cutouts" / "tess" / "c"
    index = json.loads((out / "batch-0000.json").read_text())
    assert index["products"] == {
        "NGC 1300": ["results/cube_cutouts/tess/c/NGC-1300.fits"],
        "TIC 261136679": ["results/cube_cutouts/tess/c/TIC-261136679.fits"],
        "2019 SK11": ["results/cube_cutouts/tess/c/2019-SK11.fits"],
    }
    with fits.open(out / "TIC-261136679.fits") as hdul:
        assert hdul[0].header["OBJECT"] == "TIC 261136679" and hdul[0].header["TICID"] == TIC_NUMBER
        assert hdul[0].header["RA_OBJ"] == pytest.approx(near[0])
    with fits.open(out / "NGC-1300.fits") as hdul:
        assert hdul[0].header["OBJECT"] == "NGC 1300"
