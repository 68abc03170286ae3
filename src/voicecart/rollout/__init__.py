"""Canary rollout of a new champion on KServe: the InferenceService patches for the deployment
mode in use, live outcome metrics from Prometheus, an always-valid sequential decision, and
offline validation of every manifest and patch against the pinned KServe CRDs.

    rollout = Rollout(KubernetesIsvcApi(), "voicecart", "voicecart")
    rollout.start("gs://models/registry/voicecart/versions/v0008", percent=10)
    look = rollout.step(PrometheusClient("http://prometheus:9090"), Policy())   # promote / rollback / continue
"""

from voicecart.rollout.controller import IsvcApi, KubernetesIsvcApi, Look, Rollout, version_of
from voicecart.rollout.decision import ArmCounts, Decision, Interval, Policy, Verdict, confidence_sequence, decide
from voicecart.rollout.isvc import (
    CanaryState,
    DeploymentMode,
    RolloutError,
    apply_merge_patch,
    canary_state,
    deployment_mode,
    promote_patch,
    rollback_patch,
    start_patch,
    traffic_patch,
)
from voicecart.rollout.local import LocalLook, conclude, look_local
from voicecart.rollout.manifests import KUBERNETES_VERSION, ManifestError, validate_document, validate_kserve
from voicecart.rollout.metrics import ArmQueries, MetricsError, PrometheusClient, read_arm

__all__ = [
    "KUBERNETES_VERSION", "ArmCounts", "ArmQueries", "CanaryState", "Decision", "DeploymentMode", "Interval",
    "IsvcApi", "KubernetesIsvcApi", "LocalLook", "Look", "ManifestError", "MetricsError", "Policy", "PrometheusClient",
    "Rollout", "RolloutError", "Verdict", "apply_merge_patch", "canary_state", "conclude", "confidence_sequence",
    "decide", "look_local",
    "deployment_mode", "promote_patch", "read_arm", "rollback_patch", "start_patch", "traffic_patch",
    "validate_document", "validate_kserve", "version_of",
]
