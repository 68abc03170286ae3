"""The InferenceService patches a canary rollout sends, for the deployment mode the ISVC runs in.

KServe has two canary mechanisms and silently ignores the wrong one:

* **Standard** (``serving.kserve.io/deploymentMode: Standard`` or ``RawDeployment``, KServe's
  default): ``spec.canary`` is a list of named canary predictors with a ``trafficPercent`` each
  (KServe >= 0.20, kserve PR 5672). Promotion = the stable predictor takes the canary's spec and
  *name* (KServe retargets it, no pod restart) and the list is emptied; rollback = empty list.
* **Knative** (``Serverless``): ``spec.predictor.canaryTrafficPercent`` sends that share to the
  latest revision; promotion = drop the field (100 % to latest); rollback = restore the stable
  model and drop the field.

Every function here is pure: it takes the live ISVC (a dict) and returns a JSON merge patch
(RFC 7386, what ``kubectl patch --type merge`` sends). :func:`apply_merge_patch` gives the object
the API server would store, which the controller validates against the pinned CRD before sending.
"""

from __future__ import annotations

import copy
import hashlib
import re
from dataclasses import dataclass
from enum import Enum
from typing import Any

MODE_ANNOTATION = "serving.kserve.io/deploymentMode"
CHAMPION_ANNOTATION = "voicecart.io/champion-storage-uri"
CANARY_URI_ANNOTATION = "voicecart.io/canary-storage-uri"
CANARY_STARTED_ANNOTATION = "voicecart.io/canary-started-at"
CANARY_STEP_ANNOTATION = "voicecart.io/canary-last-change-at"
_AUTOSCALING = ("minReplicas", "maxReplicas", "scaleMetric", "scaleMetricType", "scaleTarget",
                "autoScaling", "canaryTrafficPercent")
_DNS = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


class RolloutError(ValueError):
    """A rollout step that cannot be applied to this InferenceService (the message says why)."""


class DeploymentMode(str, Enum):
    standard = "Standard"
    knative = "Knative"


def deployment_mode(isvc: dict[str, Any]) -> DeploymentMode:
    """The KServe mode of this ISVC from its annotation (absent = KServe's default, Standard)."""
    value = ((isvc.get("metadata") or {}).get("annotations") or {}).get(MODE_ANNOTATION, "Standard")
    if value in ("Standard", "RawDeployment"):
        return DeploymentMode.standard
    if value in ("Serverless", "Knative"):
        return DeploymentMode.knative
    raise RolloutError(f"annotation {MODE_ANNOTATION}={value!r} is not a KServe mode this controller supports "
                       "(Standard, RawDeployment, Serverless)")


@dataclass(frozen=True)
class CanaryState:
    """What is rolling out now, read back from the live ISVC (the controller keeps no other state)."""

    mode: DeploymentMode
    name: str | None
    percent: int
    stable_uri: str | None
    canary_uri: str | None
    started_at: str | None
    last_change_at: str | None


def _annotations(isvc: dict[str, Any]) -> dict[str, str]:
    return (isvc.get("metadata") or {}).get("annotations") or {}


def canary_state(isvc: dict[str, Any]) -> CanaryState | None:
    """The canary in flight, or None when all traffic goes to the stable predictor."""
    mode = deployment_mode(isvc)
    ann = _annotations(isvc)
    spec = isvc.get("spec") or {}
    if mode is DeploymentMode.standard:
        canaries = spec.get("canary") or []
        if not canaries:
            return None
        if len(canaries) > 1:
            raise RolloutError(f"{len(canaries)} canaries in spec.canary; this controller drives exactly one")
        c = canaries[0]
        return CanaryState(mode, c["predictor"].get("name"), int(c["trafficPercent"]), ann.get(CHAMPION_ANNOTATION),
                           ann.get(CANARY_URI_ANNOTATION) or bundle_uri(c["predictor"], ann.get(CHAMPION_ANNOTATION)),
                           ann.get(CANARY_STARTED_ANNOTATION), ann.get(CANARY_STEP_ANNOTATION))
    pct = (spec.get("predictor") or {}).get("canaryTrafficPercent")
    if pct is None or CANARY_URI_ANNOTATION not in ann:
        return None
    return CanaryState(mode, None, int(pct), ann.get(CHAMPION_ANNOTATION), ann.get(CANARY_URI_ANNOTATION),
                       ann.get(CANARY_STARTED_ANNOTATION), ann.get(CANARY_STEP_ANNOTATION))


# -- where a predictor keeps its model ---------------------------------------------------------

def _engine_container(predictor: dict[str, Any]) -> dict[str, Any] | None:
    for c in predictor.get("containers") or []:
        if c.get("name") == "kserve-container":
            return c
    return None


def predictor_storage_uri(predictor: dict[str, Any]) -> str:
    """The storage URI a predictor serves: ``model.storageUri`` (Triton) or the engine's STORAGE_URI env."""
    model = predictor.get("model")
    if model and model.get("storageUri"):
        return model["storageUri"]
    container = _engine_container(predictor)
    for env in (container or {}).get("env") or []:
        if env.get("name") == "STORAGE_URI" and env.get("value"):
            return env["value"]
    raise RolloutError("the predictor has neither model.storageUri nor a kserve-container with STORAGE_URI")


def bundle_uri(predictor: dict[str, Any], champion_uri: str | None) -> str:
    """The bundle a predictor serves: its storage URI minus the sub-folder (``triton/gpu``) below the bundle."""
    uri = predictor_storage_uri(predictor)
    if champion_uri and uri.startswith(champion_uri.rstrip("/") + "/"):
        return champion_uri
    return uri


def with_bundle(predictor: dict[str, Any], stable_bundle: str | None, new_bundle: str) -> dict[str, Any]:
    """A copy of ``predictor`` serving ``new_bundle``, keeping the sub-folder it uses below the bundle."""
    out = copy.deepcopy(predictor)
    current = predictor_storage_uri(predictor)
    suffix = ""
    if stable_bundle and current.startswith(stable_bundle.rstrip("/") + "/"):
        suffix = current[len(stable_bundle.rstrip("/")):]
    target = new_bundle.rstrip("/") + suffix
    if out.get("model") and out["model"].get("storageUri"):
        out["model"]["storageUri"] = target
        return out
    container = _engine_container(out)
    for env in container.get("env") or []:  # type: ignore[union-attr]
        if env.get("name") == "STORAGE_URI":
            env["value"] = target
    return out


def canary_name(new_bundle: str, taken: str | None = None) -> str:
    """A DNS-1123 name for the canary predictor, from the bundle's version folder (e.g. ``v0008``)."""
    base = re.sub(r"[^a-z0-9-]+", "-", new_bundle.rstrip("/").rsplit("/", 1)[-1].lower()).strip("-")[:20]
    if not base or not _DNS.fullmatch(base):
        base = "canary"
    if base == taken:
        base = f"{base[:12]}-{hashlib.sha1(new_bundle.encode()).hexdigest()[:6]}"
    return base


def _check_percent(percent: int) -> None:
    if isinstance(percent, bool) or not isinstance(percent, int) or not 1 <= percent <= 99:
        raise RolloutError(f"canary percent must be an integer from 1 to 99, got {percent!r}")


# -- the patches -------------------------------------------------------------------------------

def start_patch(isvc: dict[str, Any], new_bundle: str, percent: int, *, now: str, name: str | None = None) -> dict[str, Any]:
    """Start a canary of ``new_bundle`` at ``percent`` %."""
    _check_percent(percent)
    if canary_state(isvc) is not None:
        raise RolloutError("a canary is already running: promote or roll it back first")
    spec = isvc.get("spec") or {}
    stable = spec.get("predictor") or {}
    champion = _annotations(isvc).get(CHAMPION_ANNOTATION) or predictor_storage_uri(stable)
    if new_bundle.rstrip("/") == champion.rstrip("/"):
        raise RolloutError(f"{new_bundle} is already the champion")
    annotations = {CHAMPION_ANNOTATION: champion, CANARY_URI_ANNOTATION: new_bundle,
                   CANARY_STARTED_ANNOTATION: now, CANARY_STEP_ANNOTATION: now}
    if deployment_mode(isvc) is DeploymentMode.standard:
        predictor = {k: v for k, v in with_bundle(stable, champion, new_bundle).items() if k not in _AUTOSCALING}
        predictor["name"] = name or canary_name(new_bundle, taken=stable.get("name"))
        if not _DNS.fullmatch(predictor["name"]) or predictor["name"] == stable.get("name"):
            raise RolloutError(f"canary name {predictor['name']!r} must be a DNS-1123 label different from the stable predictor's")
        return {"metadata": {"annotations": annotations},
                "spec": {"canary": [{"trafficPercent": percent, "predictor": predictor}]}}
    predictor = with_bundle(stable, champion, new_bundle)
    patch_predictor = _diff(stable, predictor)
    patch_predictor["canaryTrafficPercent"] = percent
    return {"metadata": {"annotations": annotations}, "spec": {"predictor": patch_predictor}}


def traffic_patch(isvc: dict[str, Any], percent: int, *, now: str) -> dict[str, Any]:
    """Move the running canary to ``percent`` %."""
    _check_percent(percent)
    state = _require_canary(isvc)
    ann = {CANARY_STEP_ANNOTATION: now}
    if state.mode is DeploymentMode.standard:
        canaries = copy.deepcopy(isvc["spec"]["canary"])
        canaries[0]["trafficPercent"] = percent
        return {"metadata": {"annotations": ann}, "spec": {"canary": canaries}}
    return {"metadata": {"annotations": ann}, "spec": {"predictor": {"canaryTrafficPercent": percent}}}


def promote_patch(isvc: dict[str, Any]) -> dict[str, Any]:
    """Give the canary all traffic and make it the champion."""
    state = _require_canary(isvc)
    cleared = {CHAMPION_ANNOTATION: state.canary_uri, CANARY_URI_ANNOTATION: None,
               CANARY_STARTED_ANNOTATION: None, CANARY_STEP_ANNOTATION: None}
    if state.mode is DeploymentMode.standard:
        stable = isvc["spec"]["predictor"]
        promoted = copy.deepcopy(isvc["spec"]["canary"][0]["predictor"])
        for key in _AUTOSCALING:  # the stable predictor keeps its replicas and autoscaling
            if key in stable and key != "canaryTrafficPercent":
                promoted[key] = stable[key]
        # a merge patch merges maps: fields only the old stable had must be nulled explicitly
        patch_predictor = {k: None for k in stable if k not in promoted}
        patch_predictor.update(promoted)
        spec_patch = {"predictor": patch_predictor, "canary": None}
    else:
        spec_patch = {"predictor": {"canaryTrafficPercent": None}}
    transformer = _transformer_patch(isvc, state)
    if transformer:
        spec_patch["transformer"] = transformer
    return {"metadata": {"annotations": cleared}, "spec": spec_patch}


def _transformer_patch(isvc: dict[str, Any], state: CanaryState) -> dict[str, Any] | None:
    """After promotion the transformer (catalogue, parser, features) loads the new bundle too."""
    transformer = (isvc.get("spec") or {}).get("transformer")
    if not transformer or not state.stable_uri or not state.canary_uri or _engine_container(transformer) is None:
        return None
    try:
        if predictor_storage_uri(transformer) != state.stable_uri:
            return None
    except RolloutError:
        return None
    moved = with_bundle(transformer, state.stable_uri, state.canary_uri)
    return {"containers": moved["containers"]}


def rollback_patch(isvc: dict[str, Any]) -> dict[str, Any]:
    """Send all traffic back to the stable predictor and drop the canary."""
    state = _require_canary(isvc)
    cleared = {CANARY_URI_ANNOTATION: None, CANARY_STARTED_ANNOTATION: None, CANARY_STEP_ANNOTATION: None}
    if state.mode is DeploymentMode.standard:
        return {"metadata": {"annotations": cleared}, "spec": {"canary": None}}
    if not state.stable_uri:
        raise RolloutError(f"cannot roll back: annotation {CHAMPION_ANNOTATION} (the stable bundle) is missing")
    predictor = isvc["spec"]["predictor"]
    restored = with_bundle(predictor, state.canary_uri, state.stable_uri)
    patch_predictor = _diff(predictor, restored)
    patch_predictor["canaryTrafficPercent"] = None
    return {"metadata": {"annotations": cleared}, "spec": {"predictor": patch_predictor}}


def _require_canary(isvc: dict[str, Any]) -> CanaryState:
    state = canary_state(isvc)
    if state is None:
        name = (isvc.get("metadata") or {}).get("name", "?")
        raise RolloutError(f"InferenceService {name} has no canary running")
    return state


def _diff(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """The merge patch turning ``old`` into ``new`` (lists are replaced whole, as RFC 7386 does)."""
    out: dict[str, Any] = {}
    for key in old.keys() | new.keys():
        if key not in new:
            out[key] = None
        elif key not in old or old[key] != new[key]:
            if isinstance(old.get(key), dict) and isinstance(new[key], dict):
                out[key] = _diff(old[key], new[key])
            else:
                out[key] = copy.deepcopy(new[key])
    return out


def apply_merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: the object the API server stores after ``patch``."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = apply_merge_patch(result.get(key), value)
    return result
