"""`voicecart serve`: the resolve endpoint (KServe ModelServer) on a model bundle."""

from __future__ import annotations

import functools
from pathlib import Path

import typer
from rich.console import Console

console = Console(stderr=True)


def serve_cmd(
    model_dir: Path = typer.Option(..., help="A model bundle folder, or a registry root (its champion is served)."),
    host: str | None = typer.Option(None, help="Address to bind (default 127.0.0.1; the container image sets "
                                    "0.0.0.0)."),
    port: int | None = typer.Option(None, help="HTTP port of the ModelServer (default 8080)."),
    workers: int | None = typer.Option(None, help="Server processes sharing the port (default 1; more than one "
                                       "needs conversations in Redis)."),
    triton_url: str | None = typer.Option(None, help="host:port of a Triton (V2 HTTP) predictor; "
                                          "default: the ranker in process (ONNX Runtime)."),
    triton_model: str | None = typer.Option(None, help="Model name in Triton (default: the bundle's name)."),
    profiles_from: Path | None = typer.Option(None, help="Serve profiles computed from this prepared dataset "
                                              "(in memory) instead of the Feast online store."),
    no_profiles: bool = typer.Option(False, "--no-profiles", help="No profile store: popularity answers only."),
    feedback_db: Path | None = typer.Option(None, help="SQLite file of the durable feedback log."),
    deadline_ms: float | None = typer.Option(None, help="Per-request deadline (ms)."),
    reload_poll_s: float | None = typer.Option(None, help="Check the model dir for a new champion every N s."),
    config: Path | None = typer.Option(None, help="voicecart YAML settings file."),
) -> None:
    """Start the server: V1 resolve, V2 ranker, feedback, health, /metrics. It binds once the model is loaded."""
    from voicecart.config import ConfigError, load_settings
    from voicecart.serving.errors import BundleError

    predictor = {"type": "triton", "url": triton_url, "model": triton_model} if triton_url else None
    overrides = {k: v for k, v in {"host": host, "port": port, "workers": workers, "predictor": predictor,
                                   "feedback_db": feedback_db, "deadline_ms": deadline_ms,
                                   "reload_poll_s": reload_poll_s}.items()
                 if v is not None}
    try:
        settings = load_settings(config)
        serving = settings.serving.model_validate({**settings.serving.model_dump(), **overrides})
    except (ConfigError, ValueError) as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    # relative paths are resolved once, here, against the working directory, and printed below
    serving = serving.model_copy(update={"feedback_db": serving.feedback_db.expanduser().resolve()})
    features = settings.features.model_copy(update={"store_dir": settings.features.store_dir.expanduser().resolve()})
    settings = settings.model_copy(update={"serving": serving, "features": features})
    model_dir = model_dir.expanduser().resolve()
    if serving.workers > 1 and serving.conversations.type == "memory":
        console.print(f"[yellow]warning: {serving.workers} workers with in-memory conversations: a follow-up may "
                      "land on a worker that never saw the first turn (set serving.conversations.type: redis)"
                      "[/yellow]")

    from voicecart.serving.bundle import stats_from_dataset, stats_from_feast
    from voicecart.features.online import FeastProfiles
    from voicecart.serving.profiles import profiles_from_dataset
    from voicecart.serving.server import Service, serve

    try:
        factory = stats = None
        if profiles_from is not None:
            data = profiles_from.expanduser().resolve()
            factory, stats = functools.partial(profiles_from_dataset, data), stats_from_dataset(data)
        elif not no_profiles:
            factory, stats = functools.partial(FeastProfiles, settings.features), stats_from_feast(settings.features)
        url = f"http://{serving.host}:{serving.port}"
        if serving.workers > 1:
            console.print(f"serving {model_dir} on {url} with {serving.workers} workers; "
                          f"feedback log: {serving.feedback_db}")
            serve(model_dir, settings, profiles_factory=factory, stats=stats)
            return
        with console.status(f"loading {model_dir}"):
            service = Service(model_dir, settings, factory() if factory else None, stats)
        console.print(f"serving {model_dir} (version {service.engine.model.version}) on {url}\n  {service.describe()}")
        serve(model_dir, settings, service=service)
    except BundleError as exc:
        console.print(f"[red]model-dir: {exc}[/red]")
        raise typer.Exit(2) from None


def register(app: typer.Typer, evaluate: typer.Typer) -> None:
    app.command("serve")(serve_cmd)
