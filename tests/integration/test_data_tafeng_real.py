"""Prepare the real Ta-Feng file and check the counts everyone knows it by."""

from __future__ import annotations

from datetime import datetime

import pytest

from tests.conftest import shared_file
from voicecart.data import connect, read_manifest
from voicecart.data.prepare import describe, prepare

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def tafeng(tmp_path_factory):
    src = shared_file("tafeng", "ta_feng.csv.zip")
    out = tmp_path_factory.mktemp("tafeng") / "prepared"
    prepare("tafeng", out, path=src)
    return out


def test_known_counts(tafeng):
    manifest = read_manifest(tafeng)
    assert manifest.stats["source_lines"] == 817_741
    assert manifest.stats["source_subclasses"] == 2_012
    assert manifest.tables["customers"].rows == 32_266
    assert manifest.tables["products"].rows == 23_812
    summary = describe(tafeng)
    assert summary["first_order"] == datetime(2000, 11, 1).isoformat()
    assert summary["last_order"] == datetime(2001, 2, 28).isoformat()
    assert summary["categories_per_level"][:2] == [26, 201]


def test_every_line_is_kept(tafeng):
    con = connect(tafeng)
    assert con.execute("SELECT sum(quantity) > 0, count(*) FROM order_lines").fetchall()[0] == (True, 817_741)


def test_instacart_sample_real(tmp_path):
    folder = shared_file("instacart", "order_lines_sample.csv").parent
    prepare("instacart", tmp_path / "ic", path=folder)
    manifest = read_manifest(tmp_path / "ic")
    assert manifest.stats["source_lines"] == 150_000
    assert manifest.tables["customers"].rows == 593
    assert manifest.tables["orders"].rows == 15_183
    assert manifest.tables["products"].rows == 49_688
