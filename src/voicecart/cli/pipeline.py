"""`voicecart pipeline compile|run`: the training pipeline, compiled for Kubeflow or run on this machine.

``run --local`` executes the very DAG Kubeflow runs through ``kfp.local.SubprocessRunner``, then
prints where every artifact went, the evaluation table and the gate's decision, and (when the
serving package is installed) starts the local endpoint on the champion and answers a few
utterances. The pipeline code lives outside the package (``pipelines/``, ``components/``), so
these commands run from a checkout of the repository.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import typer
from rich.console import Console

console = Console(stderr=True)
pipeline_app = typer.Typer(help="The Kubeflow training pipeline: compile it, or run it here.", no_args_is_help=True)


def repo_root() -> Path:
    """The checkout holding ``pipelines/training.py`` (the working directory or the package's own)."""
    candidates = [Path.cwd(), *Path.cwd().parents, Path(__file__).resolve().parents[3]]
    for folder in candidates:
        if (folder / "pipelines" / "training.py").is_file() and (folder / "components").is_dir():
            return folder
    raise FileNotFoundError("pipelines/training.py not found: run this from a checkout of the voicecart repository")


def _import_kfp_local() -> None:
    """Import kfp.local's dispatcher with the checkout off ``sys.path``.

    The repository's ``docker/`` folder (Dockerfiles) would otherwise be imported as the ``docker``
    SDK that kfp.local probes for its DockerRunner, and break it.
    """
    if "kfp.local.task_dispatcher" in sys.modules:
        return
    root = repo_root()
    saved = list(sys.path)
    sys.path[:] = [p for p in sys.path if p not in ("", ".") and Path(p).resolve() != root]
    shadow = sys.modules.get("docker")
    if shadow is not None and getattr(shadow, "__file__", None) is None:
        del sys.modules["docker"]  # a namespace package made of the docker/ folder
    try:
        import kfp.local.task_dispatcher  # noqa: F401
    finally:
        sys.path[:] = saved


def _import_pipeline():  # noqa: ANN202
    _import_kfp_local()
    root = repo_root()
    if str(root) not in sys.path:
        sys.path.append(str(root))
    import pipelines.training as training

    return training


@pipeline_app.command("compile")
def compile_cmd(out: Path | None = typer.Option(None, help="Where to write the IR YAML (default: pipelines/training.yaml).")) -> None:
    """Compile the pipeline to the IR YAML Kubeflow runs (checked in; a test fails when it drifts)."""
    try:
        training = _import_pipeline()
    except FileNotFoundError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(code=2) from None
    path = training.compile_pipeline(out or training.COMPILED)
    console.print(f"compiled {path}")


@pipeline_app.command("check")
def check_cmd() -> None:
    """Check that every module and executable the main job's steps name resolves in this environment."""
    from voicecart.cli.preflight import main_job_needs, missing

    try:
        root = repo_root()
    except FileNotFoundError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(code=2) from None
    needs = main_job_needs(root)
    problems = missing(needs)
    for problem in problems:
        console.print(f"[red]missing:[/red] {problem}", highlight=False)
    if problems:
        console.print("the main job would fail at the step that needs it: run `bash scripts/setup.sh`, which "
                      "installs everything the steps name (pyproject.toml's dependencies)")
        raise typer.Exit(code=1)
    packages = {name.split(".")[0] for name in needs.modules}
    console.print(f"main job: all {len(packages)} packages ({len(needs.modules)} imported names) and "
                  f"{len(needs.executables)} executables ({', '.join(sorted(needs.executables))}) its steps name "
                  f"resolve in {sys.prefix}", highlight=False)


def _artifacts(run_dir: Path) -> list[tuple[str, str, Path]]:
    rows = []
    for task in sorted(p for p in run_dir.iterdir() if p.is_dir()):
        for output in sorted(task.iterdir()):
            rows.append((task.name, output.name, output))
    return rows


def _sample_requests(dataset: Path, n: int = 3) -> list[dict]:
    """A few utterances of real customers for categories they bought (Ta-Feng: category codes)."""
    from voicecart.data import connect

    con = connect(dataset)
    rows = con.execute(
        "SELECT o.customer_id, p.category_l3, count(*) AS n FROM order_lines l JOIN orders o USING (order_id) "
        "JOIN products p USING (product_id) GROUP BY ALL ORDER BY n DESC, o.customer_id LIMIT ?", [n]).fetchall()
    phrases = ["add two {c} to my cart", "buy {c} again", "i need {c} please"]
    out = [{"customer_id": str(c), "utterance": phrases[i % len(phrases)].format(c=cat), "request_id": f"demo-{i}"}
           for i, (c, cat, _) in enumerate(rows)]
    out.append({"customer_id": "no-such-customer", "utterance": f"add {rows[0][1]}" if rows else "add milk",
                "request_id": "demo-cold"})
    return out


def _serve_and_ask(registry: str, dataset: Path, log_path: Path) -> None:
    try:
        from voicecart.serving.local import LocalServer
    except ImportError:
        console.print("serving is not installed in this checkout: skipping the local endpoint")
        return
    import httpx

    console.rule("local endpoint on the champion")
    requests = _sample_requests(dataset)
    with LocalServer(Path(registry), "--profiles-from", str(dataset), log_path=log_path) as server:
        console.print(f"serving the champion of {registry} at {server.url}")
        for req in requests:
            answer = httpx.post(f"{server.url}/v1/models/voicecart:predict", json={"instances": [req]}, timeout=30)
            body = answer.json()
            pred = (body.get("predictions") or [body])[0]
            product = (pred.get("product") or {}).get("id") if isinstance(pred, dict) else None
            typer.echo(f"  {req['customer_id']!s:>18} “{req['utterance']}” → {answer.status_code} "
                              f"product {product} personalized={pred.get('personalized') if isinstance(pred, dict) else '?'}"
                              f" “{pred.get('confirmation', '') if isinstance(pred, dict) else ''}”")


@pipeline_app.command("run")
def run_cmd(
    local: bool = typer.Option(False, "--local", help="Run here through kfp.local.SubprocessRunner."),
    host: str | None = typer.Option(None, help="Kubeflow Pipelines API URL: submit the compiled YAML there."),
    data: Path = typer.Option(Path("data/tafeng"), help="A prepared dataset folder (source 'prepared')."),
    source: str = typer.Option("prepared", help="prepared | tafeng | instacart | lines | synthetic"),
    registry: str | None = typer.Option(None, help="Registry folder or URI (default: settings registry.uri)."),
    pipeline_root: Path = typer.Option(Path("runs/pipeline"), help="Where local artifacts go."),
    window_start: str = typer.Option("2000-11-01"),
    test_from: str = typer.Option("2001-02-01", help="Cut-off: train before it, evaluate from it."),
    window_end: str = typer.Option("2001-03-01"),
    max_customers: int = typer.Option(0, help="Sample this many customers (0: all)."),
    epochs: int = typer.Option(6),
    hidden: str = typer.Option("64,32", help="Ranker hidden layer widths."),
    lr: float = typer.Option(0.003),
    cstar_epochs: int = typer.Option(1, help="C-STAR pre-training epochs."),
    margin: float | None = typer.Option(None, help="Promotion margin (default: settings registry.promotion_margin)."),
    seed: int = typer.Option(0),
    serve: bool = typer.Option(True, help="After the run, serve the champion locally and answer a few utterances."),
    cache: bool = typer.Option(False, help="--local: reuse outputs of unchanged steps from earlier local runs."),
) -> None:
    """Run the training pipeline (locally, or on Kubeflow with --host)."""
    from voicecart.config import load_settings

    settings = load_settings()
    registry_uri = registry or settings.registry.uri
    if "://" not in registry_uri and local:
        registry_uri = str(Path(registry_uri).resolve())  # every step (a subprocess) sees the same folder
    run_name = f"voicecart-training-{datetime.now(timezone.utc):%Y%m%d-%H%M%S}"
    arguments = dict(registry_uri=registry_uri, source=source, source_path=str(data.resolve()) if source == "prepared" else str(data),
                     window_start=window_start, test_from=test_from, window_end=window_end,
                     max_customers=max_customers, seed=seed, epochs=epochs, hidden=hidden, lr=lr,
                     cstar_epochs=cstar_epochs,
                     promotion_margin=settings.registry.promotion_margin if margin is None else margin,
                     run_name=run_name)
    try:
        training = _import_pipeline()
    except FileNotFoundError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(code=2) from None
    if not local:
        if host is None:
            console.print("[red]error:[/red] give --local to run here, or --host URL to submit to Kubeflow")
            raise typer.Exit(code=2)
        import kfp

        run = kfp.Client(host=host).create_run_from_pipeline_package(str(training.COMPILED), arguments=arguments,
                                                                      run_name=run_name)
        console.print(f"submitted {run_name}: run id {run.run_id}")
        return
    if source == "prepared" and not (data / "manifest.json").exists():
        console.print(f"[red]error:[/red] {data} is not a prepared dataset (run `voicecart data prepare --out {data}`)")
        raise typer.Exit(code=2)
    summary = run_local(training, arguments, pipeline_root, cache=cache)
    _report(summary)
    if summary["state"] != "SUCCEEDED":
        raise typer.Exit(code=1)
    if serve:
        from voicecart.registry import Registry

        reg = Registry(registry_uri)
        if reg.champion() is None:
            latest = reg.versions()[-1] if reg.versions() else None
            console.print("no champion yet: the gate has not promoted any model, so nothing is served"
                          + (f" (serve the refused {latest} anyway: `voicecart model promote {latest} "
                             f"--registry {registry_uri}`, then run again or `voicecart serve --model-dir "
                             f"{registry_uri}`)" if latest else ""))
        else:
            _serve_and_ask(registry_uri, Path(summary["dataset"]), pipeline_root / f"{run_name}-serve.log")


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_ERROR_LINE = re.compile(r"^\s*([A-Za-z_][\w.]*(?:Error|Exception|Diverged)): (.+)$")


class _Tee(io.TextIOBase):
    """Pass the components' output through and keep it, to name the error of a failed step."""

    def __init__(self, inner) -> None:  # noqa: ANN001
        self.inner, self.chunks = inner, []

    def write(self, s: str) -> int:
        self.inner.write(s)
        self.chunks.append(s)
        return len(s)

    def flush(self) -> None:
        self.inner.flush()

    def last_error(self) -> str | None:
        lines = _ANSI.sub("", "".join(self.chunks)).splitlines()
        found = [m for m in (_ERROR_LINE.match(line) for line in lines) if m]
        return f"{found[-1].group(1).rsplit('.', 1)[-1]}: {found[-1].group(2)}" if found else None

    def failed_step(self) -> str | None:
        """kfp.local's "Inner task failed: 'x' inside 'exit-handler-1'": the innermost task."""
        m = re.search(r"Inner task failed: '([^']+)'", _ANSI.sub("", "".join(self.chunks)))
        return m.group(1) if m else None


def run_local(training, arguments: dict, pipeline_root: Path, *, cache: bool = False) -> dict:  # noqa: ANN001
    """Run the pipeline through kfp.local; return the run's record, artifacts, evaluation and decision.

    ``cache``: reuse outputs of steps whose inputs are unchanged (data, features, C-STAR, training,
    export: the spec's caching options; steps that read the registry never are), kept under
    ``pipeline_root/.kfp_cache``. A ``prepared`` source folder is keyed by its path, not its content.
    """
    from kfp import local

    from voicecart.registry import Registry

    pipeline_root = pipeline_root.resolve()
    pipeline_root.mkdir(parents=True, exist_ok=True)
    before = {p.name for p in pipeline_root.iterdir()} | {".kfp_cache"}
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(pipeline_root),
               raise_on_error=False, enable_caching=cache)
    t0 = time.perf_counter()
    tee = _Tee(sys.stdout)
    with contextlib.redirect_stdout(tee):  # kfp.local logs and the components' output go to stdout
        training.training_pipeline(**arguments)
    seconds = time.perf_counter() - t0
    new = sorted((p for p in pipeline_root.iterdir() if p.is_dir() and p.name not in before),
                 key=lambda p: p.stat().st_mtime)
    run_dir = new[-1] if new else None
    registry = Registry(arguments["registry_uri"])
    record = next((r for r in registry.runs() if r.get("run_id") == arguments["run_name"]), {})
    if record.get("state") == "FAILED":
        # the exit handler only knows its group failed: name the step and its error in the record
        record = {**record, "failed_step": tee.failed_step(), "error_message": tee.last_error()}
        registry.record_run(arguments["run_name"], {k: v for k, v in record.items()
                                                    if k not in ("run_id", "recorded_at")})
    artifacts = _artifacts(run_dir) if run_dir else []
    if cache and run_dir is not None:
        # steps served from the cache have no folder in this run: their outputs are in an earlier one
        have = {t for t, _, _ in artifacts}
        earlier = sorted((p for p in pipeline_root.iterdir() if p.is_dir() and p != run_dir and p.name != ".kfp_cache"),
                         key=lambda p: p.stat().st_mtime, reverse=True)
        for task in ("prepare-data", "build-features", "pretrain-cstar", "train-ranker", "export-bundle"):
            source = next((p for p in earlier if (p / task).is_dir()), None)
            if task not in have and source is not None:
                artifacts += [(f"{task} (cached)", o, path) for t, o, path in _artifacts(source) if t == task]
    by_name = {(t.replace(" (cached)", ""), o): p for t, o, p in artifacts}
    report = by_name.get(("evaluate-challenger", "report"))
    decision = by_name.get(("evaluate-challenger", "decision"))
    return {"run_name": arguments["run_name"], "state": record.get("state", "UNKNOWN"), "record": record,
            "seconds": seconds, "run_dir": run_dir, "artifacts": artifacts,
            "dataset": by_name.get(("prepare-data", "dataset")),
            "report": report.read_text() if report and report.is_file() else None,
            "decision": json.loads(decision.read_text()) if decision and decision.is_file() else None,
            "champion": registry.champion(), "registry": arguments["registry_uri"]}


def _report(summary: dict) -> None:
    console.rule(f"run {summary['run_name']}: {summary['state']} in {summary['seconds']:.0f}s")
    typer.echo(f"artifacts of this run ({summary['run_dir']}):")
    for task, output, path in summary["artifacts"]:
        if output != "executor_output.json":
            typer.echo(f"  {task + '/' + output:<34} {path}")
    if summary["report"]:
        typer.echo("\n" + summary["report"])
    record = summary["record"]
    if summary["state"] != "SUCCEEDED":
        typer.echo(f"run FAILED at step {record.get('failed_step') or record.get('task')}: {record.get('error_message')}")
    typer.echo(f"registry {summary['registry']}: champion {summary['champion'] or 'none'} "
               f"(run record: {record.get('run_id', 'none')})")


def register(app: typer.Typer, evaluate: typer.Typer) -> None:
    app.add_typer(pipeline_app, name="pipeline")
