"""The demo's command as a person types it: `voicecart pipeline run --local` ends served and explained.

Two runs on 1,000 real Ta-Feng customers, through the CLI in a subprocess (its terminal is what is
checked): run 1 trains a deliberately weak ranker on an empty registry, the gate refuses it and
the strongest baseline is exported and served; after an operator promotes that weak model, run 2
(the default configuration) beats it and goes out as a canary beside it. Each time the terminal shows one
line per step, the table, the gate's decision, the registry and the answers, and no warning or
executor JSON; each step's log is in the file the summary names.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.test_pipeline_local import tafeng  # noqa: F401 - the prepared real Ta-Feng (skips without it)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
STEPS = ("prepare-data", "pretrain-cstar", "build-snapshot", "train-ranker", "export-bundle",
         "evaluate-challenger", "register-model", "record-run")
WEAK = ["--epochs", "1", "--hidden", "2", "--lr", "0.00001"]


def _run(tafeng: Path, tmp_path: Path, *extra: str) -> tuple[str, str]:
    cmd = [str(Path(sys.executable).with_name("voicecart")), "pipeline", "run", "--local", "--data", str(tafeng),
           "--registry", str(tmp_path / "registry"), "--pipeline-root", str(tmp_path / "pipeline"),
           "--max-customers", "1000", "--cache", *extra]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env={**os.environ, "COLUMNS": "160"})
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout, done.stderr


def _check_terminal(out: str, err: str) -> Path:
    """The terminal a person reads: returns the step-log folder the summary names."""
    terminal = err + out
    for step in STEPS:
        assert len(re.findall(rf"^[✓↺] {step} ", terminal, re.M)) == 1, (step, terminal)
    assert not re.search(r"\w*Warning\b|warnings\.warn", terminal), terminal  # no Python warning of any kind
    assert "executor_input" not in terminal and "Traceback" not in terminal
    assert re.search(r"^\s*contender\s+HR@1", terminal, re.M) and "gate:" in terminal
    assert "registry " in terminal and "artifacts " in terminal
    assert len(terminal.splitlines()) < 80, terminal
    logs = Path(re.search(r"^step logs\s+(\S+)/<step>\.log", terminal, re.M).group(1))
    for step in STEPS:
        if re.search(rf"^✓ {step} ", terminal, re.M):  # a cached step did not run: no log this time
            assert "Executing task" in (logs / f"{step}.log").read_text()
    return logs


def _answers(out: str) -> list[tuple[str, str]]:
    return re.findall(r"→ 200 product (\S+) personalized=\w+ model=(\S+)", out)


def test_refused_first_model_serves_the_strongest_baseline_then_a_winner_serves_itself(
        tafeng: Path, tmp_path: Path) -> None:
    from voicecart.registry import Registry

    out, err = _run(tafeng, tmp_path, *WEAK)
    _check_terminal(out, err)
    assert re.search(r"gate: KEEP baseline:\S+, refuse challenger", err)
    line = re.search(r"^serving (\S+): (.+)$", err, re.M)
    assert line and "refused the first challenger v0001 and there is no champion yet" in line.group(2)
    rule = line.group(1)
    answers = _answers(err)
    assert len(answers) == 4 and all(p != "None" and m == f"baseline-{rule}" for p, m in answers)
    reg = Registry(tmp_path / "registry")
    assert reg.champion() is None  # the baseline is served, never registered
    assert (tmp_path / "pipeline" / "baselines").is_dir()

    reg.promote("v0001", "test: an operator serves the weak model anyway")
    out, err = _run(tafeng, tmp_path)
    logs = _check_terminal(out, err)
    assert re.search(r"^↺ prepare-data ", err, re.M)  # --cache: the data step of run 1 is reused
    assert "gate: PROMOTE challenger over champion v0001" in err, err
    # a challenger passing the gate over a champion goes out as a canary beside it, split by customer
    assert re.search(r"^✓ deploy-canary ", err, re.M)
    assert re.search(r"^serving the champion v0001 with v0002 as a 10% canary: ", err, re.M), err
    assert len(_answers(err)) == 4 and {m for _, m in _answers(err)} <= {"v0001", "v0002"}
    # the demo decides the canary in front of the reader: real shoppers on both arms, then the sequential test
    assert re.search(r"^\s+champion: [\d,]+ answers; kept", err, re.M) and re.search(r"^\s+canary: [\d,]+ answers", err, re.M)
    verdict = re.search(r"^canary decision: (PROMOTE|ROLLBACK|CONTINUE) — \S", err, re.M)
    assert verdict, err
    reg = Registry(tmp_path / "registry")
    expected = {"PROMOTE": ("v0002", None), "ROLLBACK": ("v0001", None), "CONTINUE": ("v0001", "v0002")}
    assert (reg.champion(), getattr(reg.canary(), "version", None)) == expected[verdict.group(1)]
    if verdict.group(1) != "CONTINUE":
        assert reg.pointer().history[-1].version == "v0002"  # the outcome is recorded in the champion's history
    assert (logs / "serve.log").is_file()
