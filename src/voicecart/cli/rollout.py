"""`voicecart rollout start|status|promote|rollback|watch`: canary rollout of a new champion on KServe.

Every command reads the live InferenceService (or, with ``--isvc-file``, a manifest on disk and
then prints the merge patch it would send instead of sending it). Patches are validated against
the pinned KServe CRD first. ``status`` looks at live Prometheus metrics and says what the
sequential test decides; ``watch`` keeps looking and promotes or rolls back on the verdict.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from voicecart.rollout.decision import Verdict

console = Console(stderr=True)
rollout_app = typer.Typer(help="Canary rollout of a new champion on KServe (Standard or Knative mode).",
                          no_args_is_help=True)

_NS = typer.Option("voicecart", "--namespace", "-n", help="Namespace of the InferenceService.")
_NAME = typer.Option("voicecart", "--name", help="Name of the InferenceService.")
_KUBECONFIG = typer.Option(None, help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config, in-cluster).")
_CONTEXT = typer.Option(None, help="kubeconfig context.")
_FILE = typer.Option(None, "--isvc-file", help="Work on this InferenceService manifest instead of the cluster: "
                     "print the patch, send nothing.")


class _FileApi:
    """An InferenceService from a manifest file; patches are printed, not sent."""

    def __init__(self, path: Path) -> None:
        from voicecart.rollout.manifests import load_documents

        docs = [d for d in load_documents(path.read_text()) if d.get("kind") == "InferenceService"]
        if len(docs) != 1:
            raise typer.BadParameter(f"{path} must hold exactly one InferenceService (found {len(docs)})",
                                     param_hint="--isvc-file")
        self.isvc = docs[0]

    def get(self, namespace: str, name: str) -> dict[str, Any]:
        return self.isvc

    def patch(self, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        typer.echo(json.dumps(body, indent=2))
        return self.isvc


def _rollout(namespace: str, name: str, kubeconfig: Path | None, context: str | None, isvc_file: Path | None):  # noqa: ANN202
    from voicecart.rollout import KubernetesIsvcApi, Rollout

    if isvc_file is not None:
        file_api = _FileApi(isvc_file)
        meta = file_api.isvc.get("metadata") or {}
        return Rollout(file_api, meta.get("namespace", namespace), meta.get("name", name))
    try:
        api = KubernetesIsvcApi(str(kubeconfig) if kubeconfig else None, context)
    except Exception as exc:  # noqa: BLE001 - the kubernetes client raises several config types
        console.print(f"[red]no Kubernetes access: {exc}[/red]")
        raise typer.Exit(2) from None
    return Rollout(api, namespace, name)


def _run(action):  # noqa: ANN001, ANN202
    """Run a rollout action, turning every expected failure into one clear line and exit code."""
    from voicecart.rollout import ManifestError, MetricsError, RolloutError

    try:
        return action()
    except (RolloutError, ManifestError, MetricsError, ValueError) as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    except Exception as exc:  # kubernetes.client.ApiException and transport errors
        status, reason = getattr(exc, "status", None), getattr(exc, "reason", None)
        if status is not None:
            console.print(f"[red]Kubernetes API refused: {status} {reason}[/red]")
            raise typer.Exit(1) from None
        raise


def _policy(min_requests: int, min_feedback: int, alpha: float, latency_bound_ms: float, max_duration_h: float):  # noqa: ANN202
    from voicecart.rollout import Policy

    try:
        return Policy(alpha=alpha, min_requests=min_requests, min_feedback=min_feedback,
                      latency_bound_ms=latency_bound_ms, max_duration_s=max_duration_h * 3600)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


@rollout_app.command("start")
def start_cmd(
    storage_uri: str = typer.Option(..., help="The new champion's bundle (e.g. gs://.../registry/voicecart/versions/v0008)."),
    percent: int = typer.Option(10, min=1, max=99, help="Share of requests for the canary."),
    canary_name: str | None = typer.Option(None, help="Standard mode: name of the canary predictor (default: version folder)."),
    namespace: str = _NS, name: str = _NAME, kubeconfig: Path | None = _KUBECONFIG, context: str | None = _CONTEXT,
    isvc_file: Path | None = _FILE,
) -> None:
    """Start a canary of a new bundle at PERCENT % of the traffic."""
    ro = _rollout(namespace, name, kubeconfig, context, isvc_file)
    _run(lambda: ro.start(storage_uri, percent, canary_name))
    console.print(f"canary {storage_uri} started at {percent}% on {ro.namespace}/{ro.name}"
                  + (" (patch printed, not sent)" if isvc_file else ""))


@rollout_app.command("promote")
def promote_cmd(namespace: str = _NS, name: str = _NAME, kubeconfig: Path | None = _KUBECONFIG,
                context: str | None = _CONTEXT, isvc_file: Path | None = _FILE) -> None:
    """Give the canary all traffic and make it the champion."""
    ro = _rollout(namespace, name, kubeconfig, context, isvc_file)
    _run(ro.promote)
    console.print(f"canary promoted on {ro.namespace}/{ro.name}")


@rollout_app.command("rollback")
def rollback_cmd(namespace: str = _NS, name: str = _NAME, kubeconfig: Path | None = _KUBECONFIG,
                 context: str | None = _CONTEXT, isvc_file: Path | None = _FILE) -> None:
    """Send all traffic back to the stable predictor and remove the canary."""
    ro = _rollout(namespace, name, kubeconfig, context, isvc_file)
    _run(ro.rollback)
    console.print(f"canary rolled back on {ro.namespace}/{ro.name}")


_PROM = typer.Option(None, "--prometheus", help="Prometheus base URL; without it status shows the rollout state only.")
_MIN_REQ = typer.Option(500, help="Requests per arm before a promotion can be decided.")
_MIN_FB = typer.Option(0, help="Feedback events per arm before a promotion can be decided; 0: the kept rate "
                       "only vetoes (needs feedback attributed per arm, see docs/deployment.md).")
_ALPHA = typer.Option(0.05, help="Error probability of the sequential test, per outcome, over all looks.")
_BOUND = typer.Option(50.0, help="A request slower than this (ms) counts as slow; a latency-histogram bucket bound.")
_MAXH = typer.Option(6.0, help="Hours after which a canary without a verdict is rolled back.")


def _print_look(look, as_json: bool) -> None:  # noqa: ANN001
    if as_json:
        typer.echo(json.dumps({
            "verdict": look.decision.verdict.value, "reasons": look.decision.reasons, "elapsed_s": look.elapsed_s,
            "percent": look.state.percent, "canary_uri": look.state.canary_uri, "stable_uri": look.state.stable_uri,
            "canary": look.canary.__dict__, "stable": look.stable.__dict__,
            "intervals": [{"outcome": i.outcome, "canary": i.canary_rate, "stable": i.stable_rate,
                           "low": i.low, "high": i.high} for i in look.decision.intervals]}, indent=2))
        return
    table = Table(title=f"canary {look.state.canary_uri} at {look.state.percent}% for {look.elapsed_s / 60:.0f} min")
    for col in ("", "canary", "stable", "canary - stable (always-valid 1-alpha interval)"):
        table.add_column(col)
    table.add_row("requests", f"{look.canary.requests:,.0f}", f"{look.stable.requests:,.0f}", "")
    table.add_row("feedback", f"{look.canary.feedback:,.0f}", f"{look.stable.feedback:,.0f}", "")
    table.add_row("p99 latency (ms)", _ms(look.canary.p99_ms), _ms(look.stable.p99_ms), "")
    for i in look.decision.intervals:
        table.add_row(i.outcome, f"{i.canary_rate:.4f}", f"{i.stable_rate:.4f}", f"[{i.low:+.4f}, {i.high:+.4f}]")
    Console().print(table)
    if look.canary.requests == 0 and look.elapsed_s > 300:
        Console().print("[yellow]no requests counted for the canary: is it receiving traffic, and do its pods report "
                        "voicecart_model_info with the canary's version (gpu variant: see docs/deployment.md)?[/yellow]")
    Console().print(f"verdict: [bold]{look.decision.verdict.value}[/bold]")
    for reason in look.decision.reasons:
        Console().print(f"  - {reason}")


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


@rollout_app.command("status")
def status_cmd(
    prometheus: str | None = _PROM, min_requests: int = _MIN_REQ, min_feedback: int = _MIN_FB, alpha: float = _ALPHA,
    latency_bound_ms: float = _BOUND, max_duration_h: float = _MAXH,
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    namespace: str = _NS, name: str = _NAME, kubeconfig: Path | None = _KUBECONFIG, context: str | None = _CONTEXT,
    isvc_file: Path | None = _FILE,
) -> None:
    """Show the canary and, with --prometheus, what the sequential test decides now (changes nothing)."""
    from voicecart.rollout import PrometheusClient, deployment_mode

    ro = _rollout(namespace, name, kubeconfig, context, isvc_file)
    live = _run(ro.get)
    state = _run(ro.state)
    if state is None:
        mode = _run(lambda: deployment_mode(live).value)
        message = {"canary": None, "mode": mode,
                   "champion": (live.get("metadata", {}).get("annotations") or {}).get("voicecart.io/champion-storage-uri")}
        typer.echo(json.dumps(message) if as_json else f"no canary running on {ro.namespace}/{ro.name} "
                   f"({mode} mode, champion {message['champion']})")
        return
    if prometheus is None:
        typer.echo(json.dumps(state.__dict__, default=str) if as_json else
                   f"canary {state.canary_uri} at {state.percent}% ({state.mode.value} mode) since {state.started_at}; "
                   "pass --prometheus URL for the verdict")
        return
    policy = _policy(min_requests, min_feedback, alpha, latency_bound_ms, max_duration_h)
    prom = PrometheusClient(prometheus)
    try:
        look = _run(lambda: ro.look(prom, policy))
    finally:
        prom.close()
    _print_look(look, as_json)


@rollout_app.command("watch")
def watch_cmd(
    prometheus: str = typer.Option(..., "--prometheus", help="Prometheus base URL."),
    registry: str | None = typer.Option(None, "--registry", help="The model registry: a canary the pipeline's gate "
                                        "requested there is started on the InferenceService, and its outcome "
                                        "recorded there (champion pointer)."),
    percent: int | None = typer.Option(None, min=1, max=99, help="Share for a requested canary (default: the request's)."),
    interval_s: float = typer.Option(60.0, min=1.0, help="Seconds between looks."),
    max_looks: int | None = typer.Option(None, min=1, help="Stop after this many looks."),
    min_requests: int = _MIN_REQ, min_feedback: int = _MIN_FB, alpha: float = _ALPHA,
    latency_bound_ms: float = _BOUND, max_duration_h: float = _MAXH,
    namespace: str = _NS, name: str = _NAME, kubeconfig: Path | None = _KUBECONFIG, context: str | None = _CONTEXT,
    isvc_file: Path | None = _FILE,
) -> None:
    """Look every INTERVAL seconds; promote or roll back as soon as the sequential test decides.

    With no canary running it says so and exits 0, so a CronJob can run ``watch --max-looks 1``
    every few minutes as a stateless controller (the chart's rollout CronJob does)."""
    from voicecart.rollout import PrometheusClient

    ro = _rollout(namespace, name, kubeconfig, context, isvc_file)
    reg = None
    if registry is not None:
        from voicecart.registry import Registry

        reg = Registry(registry)
        pointer = reg.canary()
        if pointer is not None and pointer.state == "requested" and _run(ro.state) is None:
            uri = reg.version_uri(pointer.version)
            _run(lambda: ro.start(uri, percent or pointer.percent, None))
            reg.mark_canary_running()
            console.print(f"started the requested canary {pointer.version} ({uri}) at {percent or pointer.percent}% "
                          f"on {ro.namespace}/{ro.name}")
    if _run(ro.state) is None:
        console.print(f"no canary running on {ro.namespace}/{ro.name}: nothing to decide")
        return
    policy = _policy(min_requests, min_feedback, alpha, latency_bound_ms, max_duration_h)
    prom = PrometheusClient(prometheus)
    try:
        look = _run(lambda: ro.watch(prom, policy, interval_s=interval_s, max_looks=max_looks,
                                     on_look=lambda lk: console.print(
                                         f"{lk.elapsed_s / 60:.0f} min: {lk.decision.verdict.value} "
                                         f"({'; '.join(lk.decision.reasons[:2])})")))
    finally:
        prom.close()
    _print_look(look, False)
    if reg is not None and look.decision.verdict is not Verdict.continue_ and reg.canary() is not None:
        reg.end_canary(look.decision.verdict is Verdict.promote, "; ".join(look.decision.reasons))
        console.print(f"registry {registry}: champion {reg.champion()}")


@rollout_app.command("local")
def local_cmd(
    registry: str = typer.Option(..., "--registry", help="The registry the local server serves (its canary pointer)."),
    url: str = typer.Option("http://127.0.0.1:8080", help="The local server (`voicecart serve --model-dir REGISTRY`)."),
    watch: bool = typer.Option(False, "--watch", help="Keep looking until the sequential test decides."),
    interval_s: float = typer.Option(5.0, min=0.1, help="Seconds between looks with --watch."),
    max_looks: int | None = typer.Option(None, min=1, help="Stop after this many looks."),
    min_requests: int = _MIN_REQ, min_feedback: int = _MIN_FB, alpha: float = _ALPHA,
    latency_bound_ms: float = _BOUND, max_duration_h: float = _MAXH,
) -> None:
    """The canary on this machine: read both arms from the local server, decide with the same sequential test
    as the cluster, and promote the canary to champion or roll it back in the registry (the server reloads)."""
    import time

    from voicecart.registry import Registry
    from voicecart.rollout import conclude, look_local

    policy = _policy(min_requests, min_feedback, alpha, latency_bound_ms, max_duration_h)
    looks = 0
    while True:
        look = _run(lambda: look_local(url, policy))
        looks += 1
        console.print(f"{look.canary_version} ({look.percent}%) vs {look.champion_version}: "
                      f"{look.canary.requests:.0f} / {look.stable.requests:.0f} requests, kept "
                      f"{look.canary.kept:.0f}/{look.canary.feedback:.0f} vs {look.stable.kept:.0f}/{look.stable.feedback:.0f} "
                      f"→ {look.decision.verdict.value} ({'; '.join(look.decision.reasons[:2])})")
        if look.decision.verdict is not Verdict.continue_:
            champion = _run(lambda: conclude(Registry(registry), look, reload_url=url))
            console.print(f"canary {look.canary_version} {look.decision.verdict.value}: champion is now {champion}")
            return
        if not watch or (max_looks is not None and looks >= max_looks):
            return
        time.sleep(interval_s)


def register(app: typer.Typer, evaluate: typer.Typer) -> None:
    app.add_typer(rollout_app, name="rollout")
