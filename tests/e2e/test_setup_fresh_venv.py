"""The demo's installer on a scratch venv: everything the main job's steps name resolves in it.

`scripts/setup.sh` builds a new venv from nothing (the pip cache may be warm; the venv is not), and
ends with `voicecart pipeline check`, which reads the steps' code for every module and executable
they use. Then one of them (the TorchServe archiver that export-bundle runs, the step that once
failed a fresh demo at minute 11) is removed again: the check must fail and name it, so a setup
that forgets a step cannot pass. CI's main-job run (`.ci/run`) stays the real proof.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]


def test_setup_makes_a_venv_with_everything_the_main_job_needs_and_the_check_catches_a_gap(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    # no other venv's executables on PATH: they would hide one this venv lacks
    path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if "venv" not in p)
    env = {**os.environ, "VENV": str(venv), "PATH": path, "COLUMNS": "200"}
    env.pop("VIRTUAL_ENV", None)
    setup = subprocess.run(["bash", "scripts/setup.sh"], cwd=REPO, env=env, capture_output=True, text=True)
    assert setup.returncode == 0, setup.stdout + setup.stderr
    assert "main job: all" in setup.stderr and "resolve in " + str(venv) in setup.stderr.replace("\n", "")
    for executable in ("voicecart", "torch-model-archiver"):
        assert (venv / "bin" / executable).is_file(), executable

    removed = subprocess.run([str(venv / "bin" / "pip"), "uninstall", "-y", "-q", "torch-model-archiver"],
                             env=env, capture_output=True, text=True)
    assert removed.returncode == 0, removed.stderr
    check = subprocess.run([str(venv / "bin" / "voicecart"), "pipeline", "check"], cwd=REPO, env=env,
                           capture_output=True, text=True)
    assert check.returncode == 1
    assert "executable torch-model-archiver (named in src/voicecart/export/torchserve.py)" in check.stderr
