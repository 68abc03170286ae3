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


@dataclass(frozen=True)
class Shopped:
    """A request a shopper makes and the product they really bought (the replay's ground truth)."""

    customer_id: str
    utterance: str
    bought: str


def shopper_feedback(answer: dict[str, Any], bought: str | tuple[str, ...]) -> tuple[str, str | None]:
    """What a shopper who bought ``bought`` (one product or several) does with the answer: (kind, substitute):
    ``kept`` when it is the answer, ``swapped`` to the first alternative bought, else ``removed``. The one rule
    of the demo's canary traffic and of ``voicecart simulate``."""
    wanted = (bought,) if isinstance(bought, str) else tuple(bought)
    if (answer.get("product") or {}).get("id") in wanted:
        return "kept", None
    taken = next((a.get("id") for a in answer.get("alternatives") or [] if a.get("id") in wanted), None)
    return ("swapped", taken) if taken is not None else ("removed", None)


def shop(url: str, requests: list[Shopped], model_name: str = "voicecart", timeout_s: float = 30.0,
         advance: Any = lambda: None) -> dict[str, dict[str, int]]:
    """Each request over HTTP, then the shopper's feedback on the answer (through the real intake); per arm,
    how many answers and which feedback kinds."""
    from datetime import datetime, timezone

    import httpx

    import uuid

    seen: dict[str, dict[str, int]] = {}
    replay = uuid.uuid4().hex[:12]  # ids unique to this replay: the feedback log keeps every earlier one
    with httpx.Client(base_url=url.rstrip("/"), timeout=timeout_s) as client:
        for i, req in enumerate(requests):
            rid = f"replay-{replay}-{i}"
            r = client.post(f"/v1/models/{model_name}:predict", json={"instances": [
                {"customer_id": req.customer_id, "utterance": req.utterance, "request_id": rid}]})
            r.raise_for_status()
            answer = r.json()["predictions"][0]
            arm = seen.setdefault(answer.get("arm") or "champion", {"answers": 0})
            arm["answers"] += 1
            if answer.get("product"):
                kind, substitute = shopper_feedback(answer, req.bought)
                event = {"event_id": f"{rid}-{kind}", "request_id": rid, "customer_id": req.customer_id,
                         "product_id": answer["product"]["id"], "kind": kind,
                         "timestamp": datetime.now(timezone.utc).isoformat(),
                         **({"substitute_id": substitute} if substitute else {})}
                client.post("/v1/feedback", json=event).raise_for_status()
                arm[kind] = arm.get(kind, 0) + 1
            advance()
    return seen
