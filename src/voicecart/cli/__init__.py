"""`voicecart`: the one command a person types.

Each module in this package owns one command group and exposes ``register(app, evaluate)``;
they are discovered here so adding a group never edits this file. Modules import heavy
libraries (torch, feast, kserve) inside their commands so ``voicecart --help`` stays fast.
"""

from __future__ import annotations

import importlib
import pkgutil

import typer

app = typer.Typer(help="voicecart: personalized voice shopping on Kubeflow, Feast and KServe.",
                  no_args_is_help=True, pretty_exceptions_show_locals=False)
evaluate = typer.Typer(help="Offline evaluation on a time split.", no_args_is_help=True)
app.add_typer(evaluate, name="evaluate")

for _info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    _module = importlib.import_module(f"{__name__}.{_info.name}")
    if hasattr(_module, "register"):
        _module.register(app, evaluate)


def main() -> None:  # pragma: no cover - console entry point
    app()
