"""The canary controller: start, look, decide, patch. State lives on the InferenceService itself
(annotations), so every command is safe to re-run and any machine can pick up a rollout."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from voicecart.rollout import isvc as patches
from voicecart.rollout.decision import ArmCounts, Decision, Policy, Verdict, decide
from voicecart.rollout.manifests import validate_kserve
from voicecart.rollout.metrics import ArmQueries, Querier, read_arm

GROUP, VERSION, PLURAL = "serving.kserve.io", "v1beta1", "inferenceservices"


class IsvcApi(Protocol):
    """Read and merge-patch one InferenceService (the Kubernetes API, or a recorded stand-in)."""

    def get(self, namespace: str, name: str) -> dict[str, Any]: ...

    def patch(self, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]: ...


class KubernetesIsvcApi:
    """The real API server through the ``kubernetes`` client (kubeconfig, or in-cluster token)."""

    def __init__(self, kubeconfig: str | None = None, context: str | None = None) -> None:
        from kubernetes import client, config

        try:
            config.load_kube_config(config_file=kubeconfig, context=context)
        except config.ConfigException:
            config.load_incluster_config()
        self._api = client.CustomObjectsApi()

    def get(self, namespace: str, name: str) -> dict[str, Any]:
        return self._api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)

    def patch(self, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        # the client sends a dict body as application/merge-patch+json (RFC 7386)
        return self._api.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name, body)


def utcnow() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def version_of(bundle_uri: str) -> str:
    """The model version a bundle URI names: its last path segment (registry layout ``.../versions/v0008``)."""
    return bundle_uri.rstrip("/").rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Look:
    """One look at a running canary: its state, both arms' counts and the decision."""

    state: patches.CanaryState
    canary: ArmCounts
    stable: ArmCounts
    elapsed_s: float
    decision: Decision


class Rollout:
    """Drive the canary of one InferenceService. Every patch is validated against the pinned
    KServe CRD (applied to the live object as the API server would) before it is sent."""

    def __init__(self, api: IsvcApi, namespace: str, name: str, *, validate: bool = True,
                 clock: Callable[[], str] = utcnow) -> None:
        self.api, self.namespace, self.name = api, namespace, name
        self.validate, self.clock = validate, clock
        self.sent: list[dict[str, Any]] = []

    def get(self) -> dict[str, Any]:
        return self.api.get(self.namespace, self.name)

    def _send(self, live: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        if self.validate:
            validate_kserve(patches.apply_merge_patch(live, body), source=f"patch of {self.namespace}/{self.name}")
        self.sent.append(body)
        return self.api.patch(self.namespace, self.name, body)

    def start(self, bundle_uri: str, percent: int, canary_name: str | None = None) -> dict[str, Any]:
        live = self.get()
        return self._send(live, patches.start_patch(live, bundle_uri, percent, now=self.clock(), name=canary_name))

    def set_traffic(self, percent: int) -> dict[str, Any]:
        live = self.get()
        return self._send(live, patches.traffic_patch(live, percent, now=self.clock()))

    def promote(self) -> dict[str, Any]:
        live = self.get()
        return self._send(live, patches.promote_patch(live))

    def rollback(self) -> dict[str, Any]:
        live = self.get()
        return self._send(live, patches.rollback_patch(live))

    def state(self) -> patches.CanaryState | None:
        return patches.canary_state(self.get())

    def look(self, prom: Querier, policy: Policy = Policy(), *, now: datetime | None = None,
             stable_version: str | None = None, canary_version: str | None = None) -> Look:
        """Read both arms since the canary started and decide (sends nothing)."""
        state = self.state()
        if state is None:
            raise patches.RolloutError(f"InferenceService {self.namespace}/{self.name} has no canary running")
        if not state.stable_uri or not state.canary_uri or not state.started_at:
            raise patches.RolloutError("the canary was not started by `voicecart rollout start` "
                                       f"(annotations {patches.CANARY_URI_ANNOTATION}, {patches.CANARY_STARTED_ANNOTATION} missing)")
        started = datetime.strptime(state.started_at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        now = now or datetime.now(UTC)
        elapsed = max((now - started).total_seconds(), 1.0)
        window = f"{int(elapsed)}s"
        bound = policy.latency_bound_ms / 1000.0
        at = now.timestamp()
        canary = read_arm(prom, ArmQueries(self.namespace, canary_version or version_of(state.canary_uri), window, bound), at)
        stable = read_arm(prom, ArmQueries(self.namespace, stable_version or version_of(state.stable_uri), window, bound), at)
        return Look(state, canary, stable, elapsed, decide(canary, stable, elapsed, policy))

    def step(self, prom: Querier, policy: Policy = Policy(), **kwargs: Any) -> Look:
        """Look once and act on the verdict: promote, roll back, or leave it running."""
        look = self.look(prom, policy, **kwargs)
        if look.decision.verdict is Verdict.promote:
            self.promote()
        elif look.decision.verdict is Verdict.rollback:
            self.rollback()
        return look

    def watch(self, prom: Querier, policy: Policy = Policy(), *, interval_s: float = 60.0, max_looks: int | None = None,
              on_look: Callable[[Look], None] | None = None, sleep: Callable[[float], None] = time.sleep,
              **kwargs: Any) -> Look:
        """Step until the canary is promoted or rolled back (or ``max_looks`` looks were taken)."""
        looks = 0
        while True:
            look = self.step(prom, policy, **kwargs)
            looks += 1
            if on_look:
                on_look(look)
            if look.decision.verdict is not Verdict.continue_ or (max_looks is not None and looks >= max_looks):
                return look
            sleep(interval_s)
