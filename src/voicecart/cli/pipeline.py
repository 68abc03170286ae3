"""`voicecart pipeline compile|run|check`: the training pipeline, compiled for Kubeflow or run on this machine.

``run --local`` executes the very DAG Kubeflow runs through ``kfp.local.SubprocessRunner``: one
line per step on the terminal (each step's log in its own file, :mod:`voicecart.cli.steps`), then
where the artifacts are, the evaluation table, the gate's decision and the registry; then it
serves on localhost and answers a few utterances — the promoted champion, else the current
champion, else the strongest baseline exported as a bundle — saying what it serves and why.
``check`` says whether everything the steps need resolves here (:mod:`voicecart.cli.preflight`).
The pipeline code lives outside the package (``pipelines/``, ``components/``), so these commands
run from a checkout of the repository.
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import typer

from voicecart.cli.steps import RUNNER_LOG, Step, StepDisplay, StepLog, routed, terminal_console, warnings_to
from voicecart.schemas.locations import absolute

console = terminal_console()
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


NOT_RUN_DIRS = frozenset({".kfp_cache", "logs", "baselines"})
"""Folders of the pipeline root that are no kfp.local run: the step cache, step logs, served baselines."""


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
    packages = {name.split(".")[0] for name in needs.modules} - set(sys.stdlib_module_names)
    console.print(f"main job: all {len(packages)} third-party packages ({len(needs.modules)} imported names) and "
                  f"{len(needs.executables)} executables ({', '.join(sorted(needs.executables))}) its steps name "
                  f"resolve in {sys.prefix}", highlight=False)


def _artifacts(run_dir: Path) -> list[tuple[str, str, Path]]:
    rows = []
    for task in sorted(p for p in run_dir.iterdir() if p.is_dir()):
        for output in sorted(task.iterdir()):
            rows.append((task.name, output.name, output))
    return rows


def _sample_requests(dataset: Path, n: int = 3) -> list[dict]:
    """Utterances of real customers for the most bought categories, each asked by the household that bought
    it most, in the words a shopper says (``voicecart.data.utterances.spoken_phrases``: "i need white milk
    please"); a catalogue of codes (Ta-Feng) says the code."""
    from voicecart.data import connect
    from voicecart.data.utterances import _MASS, inflect, spoken_phrases

    con = connect(dataset)
    rows = con.execute(
        "WITH bought AS (SELECT o.customer_id, p.category_l3, any_value(p.category_l3_name) AS type_name, "
        "  any_value(p.category_l2_name) AS category_name, count(*) AS n "
        "  FROM order_lines l JOIN orders o USING (order_id) JOIN products p USING (product_id) "
        "  GROUP BY o.customer_id, p.category_l3), "
        "top AS (SELECT category_l3, sum(n) AS total FROM bought GROUP BY category_l3 ORDER BY total DESC, "
        "  category_l3 LIMIT ?) "
        "SELECT b.customer_id, b.category_l3, b.type_name, b.category_name FROM bought b JOIN top USING (category_l3) "
        "QUALIFY row_number() OVER (PARTITION BY b.category_l3 ORDER BY b.n DESC, b.customer_id) = 1 "
        "ORDER BY top.total DESC, b.category_l3", [n]).fetchall()

    def words(code: str, type_name: str | None, category_name: str | None) -> str:
        phrases = spoken_phrases(type_name, category_name) if type_name else {}
        said = phrases.get("type") or phrases.get("category") or []
        return said[0] if said else str(code)

    out = []
    for i, (customer, code, type_name, category_name) in enumerate(rows):
        said = words(code, type_name, category_name)
        mass = said.split()[-1] in _MASS or said == str(code)
        text = ("add {c} to my cart", "i need {c} please",
                "buy {c} again" if mass else "add two {c}")[i % 3].format(c=said if mass or i % 3 < 2
                                                                           else inflect(said, plural=True))
        out.append({"customer_id": str(customer), "utterance": text, "request_id": f"demo-{i}"})
    first = out[0]["utterance"].split(" to my cart")[0] if out else "add milk"
    out.append({"customer_id": "no-such-customer", "utterance": first, "request_id": "demo-cold"})
    return out


@dataclass
class Served:
    """What the demo serves after a run, and why (one line on the terminal)."""

    model_dir: str
    """What ``voicecart serve --model-dir`` gets: the registry (its champion) or a bundle folder."""
    what: str
    why: str
    canary: object | None = None
    """The registry's canary pointer when a canary serves beside the champion (the demo decides it)."""


def _strongest_exportable(decision: dict) -> tuple[str | None, str]:
    """The baseline to serve: the one the challenger faced, else the best exportable one by HR@1."""
    from voicecart.export.baseline import exportable

    faced = decision.get("champion", "")
    if exportable(faced):
        return faced, "the strongest baseline (the one the gate compared it with)"
    table = decision.get("table", {})
    best = max((name for name in table if exportable(name)), default=None,
               key=lambda name: table[name]["all"]["hr@1"]["value"])
    return best, (f"the strongest baseline the feature vector can express ({faced}, stronger, needs more than "
                  "the features)")


def choose_served(summary: dict, pipeline_root: Path) -> Served | None:
    """The promoted champion; when the gate refuses, the current champion; with none, the strongest baseline.

    The baseline is exported as a real bundle (``voicecart.export.baseline``, the challenger's
    catalogue snapshot) under ``<pipeline_root>/baselines/<run>``; the registry is not touched.
    For a run that reached the gate; None when nothing can be served (no champion, no gate decision).
    """
    from voicecart.registry import Registry, open_bundle

    registry, decision = summary["registry"], summary.get("decision") or {}
    models = Registry(registry)
    champion, canary = models.champion(), models.canary()
    challenger = (summary.get("record") or {}).get("latest_version") or "the challenger"
    if champion is not None and canary is not None:
        return Served(registry, f"the champion {champion} with {canary.version} as a {canary.percent}% canary",
                      f"the gate passed {canary.version} over the champion, so it takes {canary.percent}% of "
                      "customers until the canary's online test promotes or rolls it back", canary)
    if champion is not None:
        why = (f"this run's gate promoted it over {decision.get('champion')}" if decision.get("promote") else
               f"the gate refused this run's challenger {challenger}, so the champion keeps serving")
        return Served(registry, f"the champion {champion}", why)
    bundle = summary.get("bundle")
    if not decision or bundle is None:
        return None
    rule, which = _strongest_exportable(decision)
    if rule is None:
        return None
    from voicecart.export.baseline import build_baseline_bundle

    out = pipeline_root / "baselines" / summary["run_name"]
    build_baseline_bundle(rule, Path(bundle) / "model" / "catalog.pkl", out,
                          data_window=open_bundle(bundle).metadata.data_window)
    return Served(str(out), rule.removeprefix("baseline:"), f"the gate refused the first challenger {challenger} and there is no champion "
                                  f"yet, so {which} answers, exported as a bundle")


def _shoppers(dataset: Path, percent: int, per_arm: int, seed: int = 0) -> list:
    """Real purchases of the data's last four weeks as requests, ``per_arm`` for each arm's customers: the
    shopper asks for the bought product's category by name (Ta-Feng: its code)."""
    from voicecart.data import connect
    from voicecart.rollout.local import Shopped
    from voicecart.serving.engine import arm_of

    con = connect(dataset)
    rows = con.execute(
        "SELECT o.customer_id, l.product_id, coalesce(p.category_l3_name, p.category_l3) FROM order_lines l "
        "JOIN orders o USING (order_id) JOIN products p USING (product_id) "
        "WHERE o.timestamp >= (SELECT max(timestamp) FROM orders) - INTERVAL 28 DAY "
        "ORDER BY hash(o.order_id || l.product_id || ?)", [str(seed)]).fetchall()
    phrases = ("add {c}", "add two {c} to my cart", "i need {c}", "buy {c} again")
    out: dict[str, list] = {"champion": [], "canary": []}
    for i, (customer, product, category) in enumerate(rows):
        arm = out[arm_of(str(customer), percent)]
        if len(arm) < per_arm:
            arm.append(Shopped(str(customer), phrases[i % len(phrases)].format(c=category), str(product)))
    from itertools import chain, zip_longest

    return [r for r in chain.from_iterable(zip_longest(out["champion"], out["canary"])) if r is not None]


def decide_canary(url: str, served: "Served", dataset: Path, per_arm: int = 1000) -> None:
    """The canary decided in front of the reader: real shoppers of the last weeks on both arms (their feedback
    through the intake), then the sequential test; a decided canary ends in the registry and the server reloads.

    Demo traffic is thousands of requests, not a day's, so only the error and latency outcomes can prove
    non-inferiority in it (about 1,000 clean requests per arm bound them within 0.5 points); the kept rate
    vetoes when it is confidently worse, as in the cluster's default policy. The served profiles are as of the
    data's end (the purchases asked about included), so kept rates are high on both arms; the arms are compared
    on the same footing, which is what the decision needs (``voicecart simulate`` replays point in time)."""
    from rich.progress import Progress

    from voicecart.registry import Registry
    from voicecart.rollout import Policy, Verdict, conclude, look_local
    from voicecart.rollout.local import shop

    canary = served.canary
    requests = _shoppers(dataset, canary.percent, per_arm)
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task(f"canary: {len(requests):,} shoppers of the last four weeks ask both arms", total=len(requests))
        seen = shop(url, requests, advance=lambda: bar.advance(task))
    for arm in ("champion", "canary"):
        got = seen.get(arm, {})
        console.print(f"  {arm:>8}: {got.get('answers', 0):,} answers; kept {got.get('kept', 0):,}, swapped "
                      f"{got.get('swapped', 0):,}, removed {got.get('removed', 0):,}", highlight=False)
    look = look_local(url, Policy(min_requests=min(per_arm, len(requests) // 2) or 1))
    verdict = look.decision.verdict
    console.print(f"canary decision: {verdict.value.upper()} — {'; '.join(look.decision.reasons[:3])}", highlight=False)
    if verdict is Verdict.continue_:
        console.print(f"  the canary keeps running: `.venv/bin/voicecart rollout local --registry {served.model_dir} "
                      "--watch` decides as traffic comes", highlight=False)
        return
    champion = conclude(Registry(served.model_dir), look, reload_url=url)
    console.print(f"  registry: champion is now {champion} ({'promoted' if verdict is Verdict.promote else 'rolled back'} "
                  "in the registry; the server reloaded)", highlight=False)


def serve_and_ask(served: Served, dataset: Path, log_path: Path) -> tuple[int, int]:
    """Start the local endpoint on ``served``, ask the sample utterances; (answered with a product, asked)."""
    import httpx

    from voicecart.serving.local import LocalServer

    requests = _sample_requests(dataset)
    answered = 0
    console.print(f"[bold]serving {served.what}[/bold]: {served.why}", highlight=False)
    with console.status("starting the local endpoint (KServe ModelServer)"):
        server = LocalServer(Path(served.model_dir), "--profiles-from", str(dataset), log_path=log_path).start()
    try:
        console.print(f"  at {server.url} (log: {log_path})", highlight=False)
        for req in requests:
            answer = httpx.post(f"{server.url}/v1/models/voicecart:predict", json={"instances": [req]}, timeout=30)
            pred = (answer.json().get("predictions") or [{}])[0] if answer.status_code == 200 else {}
            product = (pred.get("product") or {}).get("id")
            answered += bool(product)
            console.print(f"  {req['customer_id']!s:>18} “{req['utterance']}” → {answer.status_code} product {product} "
                          f"personalized={pred.get('personalized')} model={pred.get('model_version')} "
                          f"“{pred.get('confirmation', '')}”", highlight=False)
        if served.canary is not None:
            decide_canary(server.url, served, dataset)
    finally:
        server.stop()
    console.print(f"serve it again: .venv/bin/voicecart serve --model-dir {served.model_dir} --profiles-from "
                  f"{dataset} --port 8080", highlight=False)
    return answered, len(requests)


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
    serve: bool = typer.Option(True, help="After the run, serve the champion (or, with none, the strongest "
                                          "baseline) locally and answer a few utterances."),
    cache: bool = typer.Option(False, help="--local: reuse outputs of unchanged steps from earlier local runs."),
) -> None:
    """Run the training pipeline (locally, or on Kubeflow with --host)."""
    from voicecart.config import load_settings

    settings = load_settings()
    registry_uri = registry or settings.registry.uri
    if local:
        registry_uri = absolute(registry_uri)  # every step (a subprocess) sees the same folder
    run_name = f"voicecart-training-{datetime.now(timezone.utc):%Y%m%d-%H%M%S}"
    arguments = dict(registry_uri=registry_uri, source=source, source_path=str(data.resolve()) if source == "prepared" else str(data),
                     window_start=window_start, test_from=test_from, window_end=window_end,
                     max_customers=max_customers, seed=seed, epochs=epochs, hidden=hidden, lr=lr,
                     cstar_epochs=cstar_epochs,
                     promotion_margin=settings.registry.promotion_margin if margin is None else margin,
                     run_name=run_name)
    logs = pipeline_root.resolve() / "logs" / run_name
    with warnings_to(logs / RUNNER_LOG):
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
        scope = "all customers" if max_customers <= 0 else f"a sample of {max_customers:,} customers"
        console.print(f"[bold]training pipeline[/bold] on {data} ({scope}), kfp.local; each step's log: {logs}/<step>.log",
                      highlight=False)
        with StepDisplay(console) as display:
            summary = run_local(training, arguments, pipeline_root, cache=cache, listener=display)
        _report(summary)
        if summary["state"] != "SUCCEEDED":
            raise typer.Exit(code=1)
        if not serve:
            return
        served = choose_served(summary, pipeline_root.resolve())
        if served is None:
            console.print("[red]nothing to serve:[/red] no champion, and the run left no evaluated challenger")
            raise typer.Exit(code=1)
        try:
            answered, asked = serve_and_ask(served, Path(summary["dataset"]), logs / "serve.log")
        except (RuntimeError, TimeoutError) as exc:
            console.print(f"[red]the local endpoint did not start:[/red] {exc} (log: {logs / 'serve.log'})")
            raise typer.Exit(code=1) from None
        if answered < asked:
            console.print(f"[red]served {answered} of {asked} sample utterances with a product[/red] "
                          f"(log: {logs / 'serve.log'})")
            raise typer.Exit(code=1)


def _earlier_outputs(pipeline_root: Path, run_dir: Path, have: set[str]) -> list[tuple[str, str, Path]]:
    """Steps served from the cache have no folder in this run: their outputs are in an earlier one."""
    earlier = sorted((p for p in pipeline_root.iterdir() if p.is_dir() and p != run_dir and p.name not in NOT_RUN_DIRS),
                     key=lambda p: p.stat().st_mtime, reverse=True)
    found = []
    for task in ("prepare-data", "pretrain-cstar", "build-snapshot", "train-ranker", "export-bundle"):
        source = next((p for p in earlier if (p / task).is_dir()), None)
        if task not in have and source is not None:
            found += [(f"{task} (cached)", o, path) for t, o, path in _artifacts(source) if t == task]
    return found


def run_local(training, arguments: dict, pipeline_root: Path, *, cache: bool = False,  # noqa: ANN001
              listener: Callable[[Step], None] | None = None) -> dict:
    """Run the pipeline through kfp.local; return the run's record, artifacts, evaluation and decision.

    Nothing reaches the terminal: each step's executor log goes to
    ``pipeline_root/logs/<run>/<step>.log``, kfp.local's own lines and Python warnings to
    ``runner.log`` there; ``listener`` hears each step start and end (the CLI's display).
    ``cache``: reuse outputs of steps whose inputs are unchanged (data, features, C-STAR, training,
    export: the spec's caching options; steps that read the registry never are), kept under
    ``pipeline_root/.kfp_cache``. A ``prepared`` source folder is keyed by its path, not its content.
    """
    from kfp import local

    from voicecart.registry import Registry

    pipeline_root = pipeline_root.resolve()
    pipeline_root.mkdir(parents=True, exist_ok=True)
    before = {p.name for p in pipeline_root.iterdir()} | NOT_RUN_DIRS
    stream = StepLog(pipeline_root / "logs" / arguments["run_name"], listener)
    t0 = time.perf_counter()
    with routed(stream):
        local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(pipeline_root),
                   raise_on_error=False, enable_caching=cache)
        training.training_pipeline(**arguments)
    seconds = time.perf_counter() - t0
    new = sorted((p for p in pipeline_root.iterdir() if p.is_dir() and p.name not in before),
                 key=lambda p: p.stat().st_mtime)
    run_dir = new[-1] if new else None
    registry = Registry(arguments["registry_uri"])
    record = next((r for r in registry.runs() if r.get("run_id") == arguments["run_name"]), {})
    if record.get("state") == "FAILED":
        # the exit handler only knows its group failed: name the step and its error in the record
        record = {**record, "failed_step": stream.failed_step, "error_message": stream.error()}
        registry.record_run(arguments["run_name"], {k: v for k, v in record.items()
                                                    if k not in ("run_id", "recorded_at")})
    artifacts = _artifacts(run_dir) if run_dir else []
    if cache and run_dir is not None:
        artifacts += _earlier_outputs(pipeline_root, run_dir, {t for t, _, _ in artifacts})
    by_name = {(t.replace(" (cached)", ""), o): p for t, o, p in artifacts}
    report = by_name.get(("evaluate-challenger", "report"))
    decision = by_name.get(("evaluate-challenger", "decision"))
    return {"run_name": arguments["run_name"], "state": record.get("state", "UNKNOWN"), "record": record,
            "seconds": seconds, "run_dir": run_dir, "artifacts": artifacts,
            "dataset": by_name.get(("prepare-data", "dataset")), "bundle": by_name.get(("export-bundle", "bundle")),
            "report": report.read_text() if report and report.is_file() else None, "report_path": report,
            "decision": json.loads(decision.read_text()) if decision and decision.is_file() else None,
            "champion": registry.champion(), "registry": arguments["registry_uri"],
            "logs": stream.folder, "steps": {name: {"state": s.state, "seconds": s.seconds, "log": s.log}
                                             for name, s in stream.steps.items()}}


def _markdown_blocks(text: str) -> list[tuple[str, list[str] | list[list[str]]]]:
    """The evaluation report (our own markdown): ("text", [line]) and ("table", [header, *rows]) blocks."""
    blocks: list = []
    for line in text.splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if all(set(c) <= set("-: ") for c in cells):
                continue  # the header separator
            if not blocks or blocks[-1][0] != "table":
                blocks.append(("table", []))
            blocks[-1][1].append(cells)
        elif line.strip():
            blocks.append(("text", [line.strip().lstrip("#").strip()]))
    return blocks


def _compact(cell: str, column: int) -> str:
    """Secondary metrics without their interval (the report file keeps every interval)."""
    return cell.split(" [")[0] if column > 1 and re.fullmatch(r"[\d.]+ \[[^]]+\]", cell) else cell


def _print_report(report: str) -> None:
    from rich.table import Table
    from rich import box

    for kind, content in _markdown_blocks(report):
        if kind == "text" and content[0].startswith("**Gate decision:**"):
            continue  # the summary's own `gate:` line says it
        if kind == "text":
            console.print(re.sub(r"\*\*(.+?)\*\*", r"[bold]\1[/bold]", content[0]), highlight=False)
            continue
        header, *rows = content
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
        for i, name in enumerate(header):
            table.add_column(name, no_wrap=i == 0 or name in ("passed",), overflow="fold")
        for row in rows:
            table.add_row(*(_compact(c, i).replace("**", "") for i, c in enumerate(row)))
        console.print(table)


def _report(summary: dict) -> None:
    state = summary["state"]
    colour = "green" if state == "SUCCEEDED" else "red"
    console.rule(f"run {summary['run_name']}: [{colour}]{state}[/{colour}] in {summary['seconds']:.0f} s")
    run_dir = summary["run_dir"]
    if run_dir is not None:
        console.print(f"artifacts  {run_dir}/<step>/<output>", highlight=False)
        outputs: dict[str, list[str]] = {}
        for task, output, _ in summary["artifacts"]:
            if output != "executor_output.json":
                outputs.setdefault(task, []).append(output)
        for task, names in outputs.items():
            console.print(f"  {task:<28} {', '.join(names)}", highlight=False)
    if summary["report"]:
        _print_report(summary["report"])
        console.print(f"(every interval: {summary['report_path']})", highlight=False)
    decision = summary.get("decision")
    if decision:
        colour = "green" if decision["promote"] else "yellow"
        console.print(f"[bold {colour}]gate:[/bold {colour}] {decision['summary']}", highlight=False)
    record = summary["record"]
    if state != "SUCCEEDED":
        step = record.get("failed_step") or record.get("task")
        log = (summary.get("steps", {}).get(step) or {}).get("log")
        console.print(f"[red]run FAILED at step {step}:[/red] {record.get('error_message')}"
                      + (f" (log: {log})" if log else ""), highlight=False)
    champion = summary["champion"] or "none"
    console.print(f"registry   {summary['registry']}: champion {champion}, run record "
                  f"{summary['registry']}/voicecart/runs/{record.get('run_id', summary['run_name'])}.json",
                  highlight=False)
    console.print(f"step logs  {summary['logs']}/<step>.log (kfp.local itself and warnings: {RUNNER_LOG})",
                  highlight=False)


def register(app: typer.Typer, evaluate: typer.Typer) -> None:
    app.add_typer(pipeline_app, name="pipeline")
