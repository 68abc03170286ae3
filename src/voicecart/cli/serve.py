"""`voicecart serve`: the resolve endpoint (KServe ModelServer) on a model bundle, on localhost."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

console = Console(stderr=True)


def serve_cmd(
    model_dir: Path = typer.Option(..., help="A model bundle folder, or a registry root (its champion is served)."),
    port: int = typer.Option(8080, help="HTTP port of the ModelServer."),
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
    """Start the local server: V1 resolve, V2 ranker, feedback, /metrics. Ready once the model is loaded."""
    from voicecart.config import ConfigError, load_settings
    from voicecart.serving.errors import BundleError

    predictor = {"type": "triton", "url": triton_url, "model": triton_model} if triton_url else None
    overrides = {k: v for k, v in {"port": port, "predictor": predictor,
                                   "feedback_db": feedback_db, "deadline_ms": deadline_ms,
                                   "reload_poll_s": reload_poll_s}.items() if v is not None}
    try:
        settings = load_settings(config)
        serving = settings.serving.model_validate({**settings.serving.model_dump(), **overrides})
        settings = settings.model_copy(update={"serving": serving})
    except ConfigError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None

    from voicecart.serving.bundle import stats_from_dataset, stats_from_feast
    from voicecart.serving.profiles import FeastProfiles, profiles_from_dataset
    from voicecart.serving.server import serve

    profiles = stats = None
    try:
        if profiles_from is not None:
            with console.status(f"building profiles from {profiles_from}"):
                profiles = profiles_from_dataset(profiles_from)
            stats = stats_from_dataset(profiles_from)
        elif not no_profiles:
            profiles = FeastProfiles(settings.features)
            stats = stats_from_feast(settings.features)
        console.print(f"serving {model_dir} on http://127.0.0.1:{settings.serving.port} "
                      f"(predictor: {_describe(settings.serving.predictor)})")
        serve(model_dir, settings, profiles, stats=stats)
    except BundleError as exc:
        console.print(f"[red]model-dir: {exc}[/red]")
        raise typer.Exit(2) from None


def _describe(predictor) -> str:  # noqa: ANN001
    return f"Triton at {predictor.url}" if predictor.type == "triton" else "in-process ONNX Runtime"


def register(app: typer.Typer, evaluate: typer.Typer) -> None:
    app.command("serve")(serve_cmd)
