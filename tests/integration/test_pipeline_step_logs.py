"""A real kfp.local run routed by StepLog: each step's log in its own file, nothing on the terminal.

Two lightweight components (one prints, one raises) run through ``kfp.local.SubprocessRunner`` as
the training pipeline does; the listener hears each step start and end, the failed step's error
is named, and kfp.local's warnings (a non-Python base image, a display name that has no effect
locally) land in the logs, never on the terminal.
"""

# no `from __future__ import annotations`: kfp reads the components' annotations as types
from pathlib import Path

import pytest
from kfp import dsl

pytestmark = [pytest.mark.integration, pytest.mark.slow]

IMAGE = "ghcr.io/voicecart/voicecart-pipeline:0.1.0"  # not a python image: kfp.local warns about it


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def say(word: str) -> str:
    print(f"the step says {word}")
    return word


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def refuse(word: str):
    raise ValueError(f"no {word} in the cart")


@dsl.pipeline(name="step-logs")
def say_then_refuse(word: str = "milk"):
    said = say(word=word).set_display_name("say the word")
    refuse(word=said.output).set_caching_options(False)


def test_each_step_logs_to_its_file_and_the_terminal_stays_quiet(tmp_path: Path, capfd: pytest.CaptureFixture) -> None:
    from kfp import local

    from voicecart.cli.pipeline import _import_kfp_local
    from voicecart.cli.steps import RUNNER_LOG, StepLog, routed

    _import_kfp_local()
    events: list[tuple[str, str]] = []
    stream = StepLog(tmp_path / "logs", lambda step: events.append((step.name, step.state)))
    with routed(stream):
        local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "root"),
                   raise_on_error=False)
        say_then_refuse()
    out, err = capfd.readouterr()
    assert out == "" and err == ""
    assert events == [("say", "running"), ("say", "succeeded"), ("refuse", "running"), ("refuse", "failed")]
    assert "the step says milk" in (tmp_path / "logs" / "say.log").read_text()
    assert "Traceback" in (tmp_path / "logs" / "refuse.log").read_text()
    assert stream.failed_step == "refuse"
    assert stream.error() == "ValueError: no milk in the cart"
    assert stream.steps["say"].seconds > 0 and stream.steps["say"].log == tmp_path / "logs" / "say.log"
    # warnings land in the log of the step they concern, or in kfp.local's own log
    runner = (tmp_path / "logs" / RUNNER_LOG).read_text()
    assert "display_name" in runner and "Running pipeline" in runner and "the step says" not in runner
    assert "custom or non-Python base image" in (tmp_path / "logs" / "say.log").read_text()
