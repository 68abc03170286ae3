"""Validate Kubernetes documents offline: KServe kinds against the pinned KServe CRDs (jsonschema),
core kinds against the ``kubernetes-validate`` schemas of one stated Kubernetes version.

The CRDs live in the repository's ``kserve/crds/`` (copied unchanged from kserve/kserve); every
InferenceService the chart renders, every standalone manifest and every patch the canary
controller would send goes through :func:`validate_document`.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

KUBERNETES_VERSION = "1.35"
"""The Kubernetes version whose schemas core kinds are checked against (kubectl from the tools is 1.35)."""

KSERVE_GROUP = "serving.kserve.io"
_CRD_FILES = {
    "InferenceService": "serving.kserve.io_inferenceservices.yaml",
    "ServingRuntime": "serving.kserve.io_servingruntimes.yaml",
    "ClusterServingRuntime": "serving.kserve.io_clusterservingruntimes.yaml",
}


class ManifestError(ValueError):
    """A document does not validate; the message names the document and the offending field path."""


def crd_dir() -> Path:
    """Where the pinned KServe CRDs are: ``$VOICECART_KSERVE_CRDS`` or the checkout's ``kserve/crds``."""
    env = os.environ.get("VOICECART_KSERVE_CRDS")
    candidates = [Path(env)] if env else []
    candidates += [Path(__file__).resolve().parents[3] / "kserve" / "crds", Path.cwd() / "kserve" / "crds"]
    for path in candidates:
        if (path / _CRD_FILES["InferenceService"]).is_file():
            return path
    raise ManifestError("KServe CRDs not found: set VOICECART_KSERVE_CRDS to a folder holding "
                        f"{_CRD_FILES['InferenceService']} (the repository keeps them in kserve/crds/)")


def _strict(schema: Any) -> Any:
    """Forbid unknown fields wherever the CRD lists properties (what the API server's strict field
    validation does; a plain JSON Schema validator would silently accept a misspelt field)."""
    if isinstance(schema, dict):
        out = {k: _strict(v) for k, v in schema.items()}
        if ("properties" in out and "additionalProperties" not in out
                and not out.get("x-kubernetes-preserve-unknown-fields")):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


@functools.cache
def kserve_schema(kind: str, version: str = "v1beta1") -> dict[str, Any]:
    """The openAPIV3Schema of one KServe kind and version from the pinned CRD, unknown fields forbidden."""
    if kind not in _CRD_FILES:
        raise ManifestError(f"no KServe CRD pinned for kind {kind!r} (known: {sorted(_CRD_FILES)})")
    with open(crd_dir() / _CRD_FILES[kind], "rb") as fh:
        crd = yaml.load(fh, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    for v in crd["spec"]["versions"]:
        if v["name"] == version:
            return _strict(v["schema"]["openAPIV3Schema"])
    raise ManifestError(f"the pinned {kind} CRD has no version {version!r}")


def _where(doc: dict[str, Any], source: str | None) -> str:
    meta = doc.get("metadata") or {}
    name = f"{doc.get('kind', '?')}/{meta.get('name', '?')}"
    return f"{source}: {name}" if source else name


def _path(parts: Iterable[Any]) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "<root>"


def validate_kserve(doc: dict[str, Any], source: str | None = None) -> None:
    """Validate a KServe document against its CRD schema; raise :class:`ManifestError` naming the field."""
    import jsonschema

    group, _, version = str(doc.get("apiVersion", "")).partition("/")
    if group != KSERVE_GROUP:
        raise ManifestError(f"{_where(doc, source)}: apiVersion {doc.get('apiVersion')!r} is not {KSERVE_GROUP}/*")
    schema = kserve_schema(doc.get("kind", ""), version)
    validator = jsonschema.Draft7Validator(schema)
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [f"{_path(e.absolute_path)}: {e.message}" for e in errors[:10]]
        raise ManifestError(f"{_where(doc, source)} does not match the KServe CRD: " + "; ".join(lines))
    _check_names(doc, source)


def _check_names(doc: dict[str, Any], source: str | None) -> None:
    """What the CRD schema leaves to the API server: metadata.name must be a DNS-1123 label."""
    import re

    name = (doc.get("metadata") or {}).get("name")
    if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name) or len(name) > 63:
        raise ManifestError(f"{_where(doc, source)}: metadata.name {name!r} is not a DNS-1123 label")


def validate_core(doc: dict[str, Any], source: str | None = None, kubernetes_version: str = KUBERNETES_VERSION) -> None:
    """Validate a built-in kind against the Kubernetes schemas (strict: unknown fields are errors)."""
    import kubernetes_validate

    try:
        kubernetes_validate.validate(doc, kubernetes_version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        raise ManifestError(f"{_where(doc, source)} is not a valid Kubernetes {kubernetes_version} object: "
                            f"{_path(exc.path)}: {exc.message}") from None
    except kubernetes_validate.SchemaNotFoundError:
        raise ManifestError(f"{_where(doc, source)}: no Kubernetes {kubernetes_version} schema for "
                            f"{doc.get('apiVersion')} {doc.get('kind')} (a CRD we do not pin?)") from None


def validate_document(doc: dict[str, Any], source: str | None = None,
                      kubernetes_version: str = KUBERNETES_VERSION) -> str:
    """Validate one document by its apiVersion; returns which schema checked it."""
    if not isinstance(doc, dict) or "apiVersion" not in doc or "kind" not in doc:
        raise ManifestError(f"{source or 'document'}: not a Kubernetes object (apiVersion and kind are required)")
    if str(doc["apiVersion"]).startswith(KSERVE_GROUP + "/"):
        validate_kserve(doc, source)
        return f"kserve-crd:{doc['apiVersion']}"
    validate_core(doc, source, kubernetes_version)
    return f"kubernetes-{kubernetes_version}"


def load_documents(text: str) -> list[dict[str, Any]]:
    """All non-empty YAML documents of a multi-document stream."""
    return [d for d in yaml.safe_load_all(text) if d]


def tool(name: str) -> Path | None:
    """A binary installed by ``scripts/tools/k8s.sh`` (``tools/bin/helm``, ``tools/bin/kubectl``), or None."""
    path = Path(__file__).resolve().parents[3] / "tools" / "bin" / name
    return path if path.is_file() and os.access(path, os.X_OK) else None


def helm_template(chart: Path, *, release: str = "voicecart", namespace: str = "voicecart",
                  values: Iterable[Path] = (), set_values: Iterable[str] = (), helm: Path | None = None,
                  extra: Iterable[str] = ()) -> list[dict[str, Any]]:
    """``helm template`` with real helm; raises :class:`ManifestError` with helm's own message on failure."""
    import subprocess

    helm = helm or tool("helm")
    if helm is None:
        raise ManifestError("helm is not installed in tools/bin (run: bash scripts/tools/k8s.sh)")
    # render for the Kubernetes version the core schemas are checked against (.Capabilities, kubeVersion)
    cmd = [str(helm), "template", release, str(chart), "--namespace", namespace,
           "--kube-version", f"{KUBERNETES_VERSION}.0"]
    for v in values:
        cmd += ["-f", str(v)]
    for s in set_values:
        cmd += ["--set", s]
    cmd += list(extra)
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "KUBECONFIG": os.devnull})
    if proc.returncode != 0:
        raise ManifestError(f"helm template failed: {proc.stderr.strip()}")
    return load_documents(proc.stdout)
