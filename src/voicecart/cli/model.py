"""`voicecart model list|show|promote|rollback`: the registry's versions and its champion pointer."""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.table import Table

console = Console(stderr=True)
model_app = typer.Typer(help="Versioned model bundles and the champion pointer.", no_args_is_help=True)

_REGISTRY = typer.Option(None, "--registry", help="Registry folder or URI (default: settings registry.uri).")
_NAME = typer.Option("voicecart", "--name", help="Model name inside the registry.")


def _registry(uri: str | None, name: str):  # noqa: ANN202
    from voicecart.config import load_settings
    from voicecart.registry import Registry

    return Registry(uri or load_settings().registry.uri, name=name)


def _fail(exc: Exception) -> None:
    console.print(f"[red]error:[/red] {exc}")
    raise typer.Exit(code=2)


@model_app.command("list")
def list_cmd(registry: str | None = _REGISTRY, name: str = _NAME,
             as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Every version, newest last; the champion is starred."""
    from voicecart.registry import BundleError, RegistryError

    try:
        reg = _registry(registry, name)
        infos = reg.list()
    except (RegistryError, BundleError, OSError) as exc:
        _fail(exc)
        return
    if as_json:
        typer.echo(json.dumps([{"version": i.version, "champion": i.champion,
                                **i.metadata.model_dump(mode="json")} for i in infos], indent=2))
        return
    table = Table(title=f"{reg.uri} ({name}): {len(infos)} version(s), champion {reg.champion() or 'none'}")
    for col in ("", "version", "created", "HR@1", "gate", "parent", "data window"):
        table.add_column(col)
    for i in infos:
        m = i.metadata
        window = f"{m.data_window.start:%Y-%m-%d}..{m.data_window.end:%Y-%m-%d}" if m.data_window else "–"
        hr1 = f"{m.metrics['hr@1']:.4f}" if "hr@1" in m.metrics else "–"
        table.add_row("*" if i.champion else "", i.version, f"{m.created_at:%Y-%m-%d %H:%M}", hr1,
                      str(m.extra.get("gate", "–")), m.parent_version or "–", window)
    Console().print(table)


@model_app.command("show")
def show_cmd(version: str = typer.Argument(None, help="Version (default: the champion)."),
             registry: str | None = _REGISTRY, name: str = _NAME) -> None:
    """Metadata of one version and where its exports are."""
    from voicecart.registry import BundleError, RegistryError

    try:
        reg = _registry(registry, name)
        version = version or reg.champion()
        if version is None:
            raise RegistryError(f"{reg.uri} has no champion yet; name a version")
        meta = reg.metadata(version)
    except (RegistryError, BundleError, OSError) as exc:
        _fail(exc)
        return
    typer.echo(json.dumps({"version": version, "champion": version == reg.champion(), "uri": reg.version_uri(version),
                           "metadata": meta.model_dump(mode="json")}, indent=2))


@model_app.command("promote")
def promote_cmd(version: str = typer.Argument(..., help="Version to make the champion."),
                reason: str = typer.Option("manual promotion", help="Recorded in the champion history."),
                registry: str | None = _REGISTRY, name: str = _NAME) -> None:
    """Make a version the champion (it must open cleanly: checksums are verified)."""
    from voicecart.registry import BundleError, RegistryError

    try:
        pointer = _registry(registry, name).promote(version, reason)
    except (RegistryError, BundleError, OSError) as exc:
        _fail(exc)
        return
    console.print(f"champion is now {pointer.version}")


@model_app.command("rollback")
def rollback_cmd(reason: str = typer.Option("manual rollback", help="Recorded in the champion history."),
                 registry: str | None = _REGISTRY, name: str = _NAME) -> None:
    """Point the champion back at the previous one."""
    from voicecart.registry import BundleError, RegistryError

    try:
        pointer = _registry(registry, name).rollback(reason)
    except (RegistryError, BundleError, OSError) as exc:
        _fail(exc)
        return
    console.print(f"champion rolled back to {pointer.version}")


def register(app: typer.Typer, evaluate: typer.Typer) -> None:
    app.add_typer(model_app, name="model")
