"""The canary on one machine: the local server answers with the champion and the canary side by side
(``voicecart serve`` on a registry whose canary the gate requested), and the same sequential decision as in
the cluster reads both arms' counts from the server and ends the canary in the registry.

    look = look_local("http://127.0.0.1:8080", Policy(min_requests=200))
    if look.decision.verdict is not Verdict.continue_:
        conclude(Registry("runs/registry"), look, reload_url="http://127.0.0.1:8080")
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from voicecart.rollout.decision import ArmCounts, Decision, Policy, Verdict, decide
from voicecart.rollout.isvc import RolloutError


@dataclass(frozen=True)
class LocalLook:
    champion_version: str
    canary_version: str
    percent: int
    canary: ArmCounts
    stable: ArmCounts
    elapsed_s: float
    decision: Decision


def _counts(arm: dict[str, Any]) -> ArmCounts:
    return ArmCounts(requests=arm["requests"], errors=arm["errors"], slow=arm["slow"], feedback=arm["feedback"],
                     kept=arm["kept"])


def look_local(url: str, policy: Policy = Policy(), model_name: str = "voicecart", timeout_s: float = 10.0) -> LocalLook:
    """Both arms' counts from the server's ``:canary`` route, and what the sequential test decides."""
    import httpx

    try:
        state = httpx.get(f"{url.rstrip('/')}/v1/models/{model_name}:canary", timeout=timeout_s).raise_for_status().json()
    except httpx.HTTPError as exc:
        raise RolloutError(f"cannot read the canary state at {url}: {exc}") from None
    if state.get("canary") is None:
        raise RolloutError(f"the server at {url} runs no canary (serving the champion "
                           f"{state['champion']['version']} alone)")
    canary, stable = _counts(state["canary"]), _counts(state["champion"])
    return LocalLook(state["champion"]["version"], state["canary"]["version"], state["percent"], canary, stable,
                     float(state["since_s"]), decide(canary, stable, max(float(state["since_s"]), 1.0), policy))


def conclude(registry, look: LocalLook, reload_url: str | None = None, model_name: str = "voicecart") -> str:  # noqa: ANN001
    """Act on a decided look: promote the canary to champion or roll it back (the registry keeps the
    outcome in the champion's history), then make the server reload. Returns the serving champion."""
    import httpx

    if look.decision.verdict is Verdict.continue_:
        raise RolloutError("the canary is not decided yet: keep it running")
    pointer = registry.canary()
    if pointer is None or pointer.version != look.canary_version:
        raise RolloutError(f"the registry's canary is {getattr(pointer, 'version', None)}, the server's "
                           f"{look.canary_version}: reload the server first")
    promote = look.decision.verdict is Verdict.promote
    registry.end_canary(promote, "; ".join(look.decision.reasons) or look.decision.verdict.value)
    if reload_url:
        httpx.post(f"{reload_url.rstrip('/')}/v1/models/{model_name}:reload", timeout=120).raise_for_status()
    return registry.champion()
