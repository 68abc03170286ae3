"""`voicecart gateway serve|link|unlink|whois`: the voice gateways and the platform-user links they read."""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer
from rich.console import Console

console = Console(stderr=True)
gateway_app = typer.Typer(help="Voice gateways: Dialogflow CX webhook, Alexa skill endpoint, account links.",
                          no_args_is_help=True)

_CONFIG = typer.Option(None, "--config", help="voicecart settings YAML (else VOICECART_CONFIG / env vars).")
_PLATFORM = typer.Argument(..., help="alexa | dialogflow")
_USER = typer.Argument(..., help="The platform's user: an Alexa userId or linked accessToken, or the "
                       "Dialogflow session parameter the agent's account linking sets.")


def _settings(config: Path | None, **gateway_overrides: object):  # noqa: ANN202
    from voicecart.config import ConfigError, load_settings

    try:
        settings = load_settings(config).gateway
        overrides = {k: v for k, v in gateway_overrides.items() if v is not None}
        return settings.model_validate({**settings.model_dump(), **overrides}) if overrides else settings
    except (ConfigError, ValueError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(code=2) from None


def _identity(config: Path | None):  # noqa: ANN202
    from voicecart.gateway.identity import IdentityError, open_identity

    settings = _settings(config)
    try:
        return open_identity(settings.identity), settings.identity
    except IdentityError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(code=2) from None


def _run(coro_fn, config: Path | None):  # noqa: ANN001, ANN202
    from voicecart.gateway.identity import IdentityError

    store, where = _identity(config)

    async def go():  # noqa: ANN202
        try:
            return await coro_fn(store)
        finally:
            await store.close()

    try:
        return asyncio.run(go()), where
    except (IdentityError, ValueError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(code=2) from None


@gateway_app.command("serve")
def serve_cmd(
    port: int | None = typer.Option(None, help="HTTP port (gateway.port, default 8090)."),
    host: str | None = typer.Option(None, help="Bind address (gateway.host; 0.0.0.0 in a container)."),
    endpoint: str | None = typer.Option(None, help="Base URL of the resolve endpoint (gateway.endpoint.url)."),
    config: Path | None = _CONFIG,
) -> None:
    """Run the gateway: the platforms enabled in gateway.dialogflow / gateway.alexa, /healthz, /metrics."""
    overrides: dict[str, object] = {"port": port, "host": host}
    if endpoint is not None:
        overrides["endpoint"] = {**_settings(config).endpoint.model_dump(), "url": endpoint}
    settings = _settings(config, **overrides)
    platforms = [p for p in ("dialogflow", "alexa") if getattr(settings, p).enabled]
    if not platforms:
        console.print("[red]error:[/red] no platform enabled: set gateway.dialogflow.enabled and/or "
                      "gateway.alexa.enabled (VOICECART_GATEWAY__ALEXA__ENABLED=true, ...)")
        raise typer.Exit(code=2)
    from voicecart.gateway.app import serve

    console.print(f"gateway on http://{settings.host}:{settings.port} ({', '.join(platforms)}) -> "
                  f"{settings.endpoint.url} (identity: {settings.identity.type})")
    serve(settings)


@gateway_app.command("link")
def link_cmd(platform: str = _PLATFORM, user: str = _USER,
             customer_id: str = typer.Argument(..., help="The retailer's customer_id."),
             config: Path | None = _CONFIG) -> None:
    """Link a platform user to a customer (answers become personal from the next turn)."""
    if not customer_id.strip() or len(customer_id) > 128:
        console.print("[red]error:[/red] customer_id: 1 to 128 characters")
        raise typer.Exit(code=2)
    _, where = _run(lambda s: s.link(platform, user, customer_id.strip()), config)
    console.print(f"linked {platform} user to customer {customer_id.strip()} ({where.type} identity store)")


@gateway_app.command("unlink")
def unlink_cmd(platform: str = _PLATFORM, user: str = _USER, config: Path | None = _CONFIG) -> None:
    """Remove a link (the user's answers become non-personal)."""
    removed, _ = _run(lambda s: s.unlink(platform, user), config)
    console.print("unlinked" if removed else "no link for that user")


@gateway_app.command("whois")
def whois_cmd(platform: str = _PLATFORM, user: str = _USER, config: Path | None = _CONFIG) -> None:
    """Print the customer_id a platform user is linked to (exit 1 when none)."""
    customer, _ = _run(lambda s: s.customer_for(platform, user), config)
    if customer is None:
        console.print("no link for that user")
        raise typer.Exit(code=1)
    print(customer)


def register(app: typer.Typer, evaluate: typer.Typer) -> None:
    app.add_typer(gateway_app, name="gateway")
