"""kfp.local's output, routed: each step's executor log to its own file, one line per step on the terminal.

``kfp.local`` prints everything to ``sys.stdout`` of the runner process: its own log records
("Executing task 'x'", "Task 'x' finished with status SUCCESS", the outputs, a rule) and the
steps' streamed output between them. :class:`StepLog` is that stdout while a pipeline runs: it
writes each step's block to ``<folder>/<step>.log``, everything else (kfp.local's own lines and any
Python warning, captured by :func:`routed`) to ``<folder>/runner.log``, and tells a listener when a
step starts, ends, comes from the cache or is skipped. :class:`StepDisplay` is the listener of
``voicecart pipeline run --local``: a rich spinner on the running step, then one line per step
with its duration.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

ANSI = re.compile(r"\x1b\[[0-9;]*m")
_START = re.compile(r"Executing task '([^']+)'")
_FINISH = re.compile(r"Task '([^']+)' finished with status (\w+)")
_CACHED = re.compile(r"Task (\S+) cache hit")
_UPSTREAM = re.compile(r"Skipping task (\S+): upstream task\(s\) (.+) failed")
_INNER_FAILED = re.compile(r"Inner task failed: '([^']+)'")
_RULE = re.compile(r"^-{20,}$")
_ERROR_LINE = re.compile(r"^\s*([A-Za-z_][\w.]*(?:Error|Exception|Diverged)): (.+)$")
RUNNER_LOG = "runner.log"
DAG_GROUPS = ("condition-", "exit-handler-", "for-loop-")
"""Name prefixes kfp gives the DAG's groups (dsl.If/Else, ExitHandler, ParallelFor): not steps."""


@dataclass
class Step:
    """One pipeline step as the terminal shows it."""

    name: str
    state: str = "running"
    """running | succeeded | failed | cached | skipped"""
    log: Path | None = None
    started: float = field(default_factory=time.perf_counter)
    seconds: float | None = None
    detail: str = ""
    tail: deque = field(default_factory=lambda: deque(maxlen=400), repr=False)

    def error(self) -> str | None:
        """The last ``SomeError: message`` line of the step's output (its traceback's last line)."""
        found = [m for m in (_ERROR_LINE.match(line) for line in self.tail) if m]
        return f"{found[-1].group(1).rsplit('.', 1)[-1]}: {found[-1].group(2)}" if found else None


class StepLog(io.TextIOBase):
    """A text stream standing in for stdout during a kfp.local run (see the module docstring)."""

    def __init__(self, folder: Path, listener: Callable[[Step], None] | None = None) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.listener = listener or (lambda step: None)
        self.steps: dict[str, Step] = {}
        self.failed_step: str | None = None
        self._runner = open(self.folder / RUNNER_LOG, "a", encoding="utf-8")  # noqa: SIM115
        self._current: Step | None = None
        self._file: io.TextIOBase | None = None
        self._pending = ""

    # -- the stream ------------------------------------------------------------------------
    def writable(self) -> bool:
        return True

    def write(self, s: str) -> int:
        self._pending += s
        *lines, self._pending = self._pending.split("\n")
        for line in lines:
            self._line(line)
        return len(s)

    def flush(self) -> None:
        for f in (self._file, self._runner):
            if f is not None and not f.closed:
                f.flush()

    def close(self) -> None:
        if self._pending:
            self._line(self._pending)
            self._pending = ""
        self._end_block()
        if not self._runner.closed:
            self._runner.close()
        super().close()

    # -- routing ---------------------------------------------------------------------------
    def _line(self, raw: str) -> None:
        plain = ANSI.sub("", raw)
        if (m := _START.search(plain)) is not None:
            self._end_block()
            self._begin(m.group(1))
        target = self._file if self._file is not None else self._runner
        target.write(plain + "\n")
        step = self._current
        if step is not None:
            step.tail.append(plain)
            if (m := _FINISH.search(plain)) is not None and m.group(1) == step.name:
                step.seconds = time.perf_counter() - step.started
                step.state = "succeeded" if m.group(2) == "SUCCESS" else "failed"
            elif step.state != "running" and _RULE.match(plain.strip()):
                self._end_block()  # the outputs are listed up to kfp.local's horizontal rule
            return
        if (m := _UPSTREAM.search(plain)) is not None and m.group(1).startswith(DAG_GROUPS):
            return  # a group of the DAG, not a step: its steps are not reached either
        if (m := _CACHED.search(plain)) is not None:
            self._event(Step(m.group(1), state="cached", seconds=0.0, detail="outputs of an earlier run"))
        elif (m := _UPSTREAM.search(plain)) is not None:
            self._event(Step(m.group(1), state="skipped", seconds=0.0, detail=f"upstream {m.group(2)} failed"))
        elif (m := _INNER_FAILED.search(plain)) is not None:
            self.failed_step = m.group(1)

    def _begin(self, name: str) -> None:
        log = self.folder / f"{name}.log"
        step = self.steps.get(name)
        if step is None or step.state != "failed":  # a retry appends to the failed attempt's log
            step = Step(name, log=log)
        else:
            step.state, step.started, step.detail = "running", time.perf_counter(), "retry"
        self.steps[name] = step
        self._current = step
        self._file = open(log, "a", encoding="utf-8")  # noqa: SIM115
        self.listener(step)

    def _end_block(self) -> None:
        step, self._current = self._current, None
        if self._file is not None:
            self._file.close()
            self._file = None
        if step is not None:
            if step.state == "running":  # the stream ended inside the step
                step.state, step.seconds = "failed", time.perf_counter() - step.started
            self.listener(step)

    def _event(self, step: Step) -> None:
        self.steps[step.name] = step
        self.listener(step)

    def error(self) -> str | None:
        """The failed step's error line, if any step failed."""
        failed = [s for s in self.steps.values() if s.state == "failed"]
        step = self.steps.get(self.failed_step or "") or (failed[-1] if failed else None)
        return step.error() if step is not None else None


class _ToStream(logging.Handler):
    """Log records (kfp.local's orchestration lines, captured warnings) into the run's StepLog."""

    def __init__(self, stream: StepLog) -> None:
        super().__init__(logging.INFO)
        self.stream = stream
        self.setFormatter(logging.Formatter("%(asctime)s - %(levelname)s - %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.stream.write(self.format(record) + "\n")


@contextlib.contextmanager
def routed(stream: StepLog) -> Iterator[StepLog]:
    """Route stdout, the root logger and Python warnings into ``stream`` for the duration."""
    root = logging.getLogger()
    handler = _ToStream(stream)
    saved_level, saved_handlers = root.level, root.handlers[:]
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    logging.captureWarnings(True)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(stream):
            warnings.simplefilter("default")  # every warning is logged once per place, none is lost
            yield stream
    finally:
        logging.captureWarnings(False)
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        stream.close()


@contextlib.contextmanager
def warnings_to(path: Path) -> Iterator[None]:
    """Python warnings of this block go to ``path`` (appended), not to the terminal."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as log, warnings.catch_warnings():
        def show(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
            log.write(warnings.formatwarning(message, category, filename, lineno, line))

        warnings.simplefilter("default")
        warnings.showwarning = show
        yield


_MARK = {"succeeded": "[green]✓[/green]", "failed": "[red]✗[/red]", "cached": "[cyan]↺[/cyan]",
         "skipped": "[dim]–[/dim]"}


class StepDisplay:
    """A spinner on the running step, then one line per step: mark, name, duration, what happened."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                                 console=console, transient=True,
                                 redirect_stdout=False, redirect_stderr=False)
        self._tasks: dict[str, int] = {}

    def __enter__(self) -> "StepDisplay":
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for task in self._tasks.values():
            self.progress.remove_task(task)
        self.progress.stop()

    def __call__(self, step: Step) -> None:
        if step.state == "running":
            label = f"{step.name}" + (f" ({step.detail})" if step.detail else "")
            self._tasks[step.name] = self.progress.add_task(label, total=None)
            return
        task = self._tasks.pop(step.name, None)
        if task is not None:
            self.progress.remove_task(task)
        seconds = "" if step.state in ("cached", "skipped") else f"{step.seconds or 0.0:6.1f} s"
        detail = step.detail if step.state != "failed" else f"FAILED, log: {step.log}"
        self.console.print(f"{_MARK.get(step.state, '?')} {step.name:<22} {seconds:>8}  [dim]{detail}[/dim]",
                           highlight=False)


def terminal_console() -> Console:
    """stderr console; wide enough for the evaluation table when stderr is a log file, not a terminal."""
    console = Console(stderr=True)
    return console if console.is_terminal else Console(stderr=True, width=160)


__all__ = ["RUNNER_LOG", "Step", "StepDisplay", "StepLog", "routed", "terminal_console", "warnings_to"]
