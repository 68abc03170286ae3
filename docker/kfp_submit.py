"""Submit the compiled voicecart pipeline (KFP IR YAML) to Kubeflow Pipelines as one run.

Runs inside the pipeline image (``/opt/voicecart/bin/kfp_submit.py``): the chart's recurring-run
CronJob and manifests/pipeline-run.yaml call it. Parameters are checked against the pipeline's
own input definitions before anything is sent, so a typo or a bad value fails here naming the
parameter, not hours later inside a pipeline step. ``--dry-run`` prints the checked arguments.

In-cluster authentication: when ``KF_PIPELINES_SA_TOKEN_PATH`` points at a projected
ServiceAccount token (audience ``pipelines.kubeflow.org``), ``kfp.Client`` sends it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml


class SubmitError(ValueError):
    """A package or parameter that cannot be submitted; the message names it."""


def load_ir(path: Path) -> dict[str, Any]:
    """The pipeline spec: the first document of the compiled YAML (the second holds platform specs)."""
    if not path.is_file():
        raise SubmitError(f"--package: {path} does not exist")
    try:
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    except yaml.YAMLError as exc:
        raise SubmitError(f"--package: {path} is not YAML ({exc})") from None
    if not docs or "pipelineInfo" not in docs[0] or "root" not in docs[0]:
        raise SubmitError(f"--package: {path} is not a compiled KFP pipeline (no pipelineInfo/root)")
    return docs[0]


def _coerce(name: str, raw: str, kind: str) -> Any:
    try:
        if kind == "NUMBER_INTEGER":
            return int(raw)
        if kind == "NUMBER_DOUBLE":
            return float(raw)
        if kind == "BOOLEAN":
            if raw.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(raw)
            return raw.lower() in ("true", "1", "yes")
        if kind in ("STRUCT", "LIST"):
            return json.loads(raw)
        return raw
    except ValueError:
        raise SubmitError(f"--param {name}={raw!r}: expected {kind}") from None


def check_params(ir: dict[str, Any], pairs: list[str]) -> dict[str, Any]:
    """``name=value`` pairs → typed arguments, checked against the pipeline's inputs."""
    inputs: dict[str, Any] = ir["root"].get("inputDefinitions", {}).get("parameters", {})
    out: dict[str, Any] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep or not name:
            raise SubmitError(f"--param {pair!r}: expected name=value")
        if name not in inputs:
            raise SubmitError(f"--param {name}: the pipeline has no such parameter (known: {', '.join(sorted(inputs))})")
        out[name] = _coerce(name, raw, inputs[name].get("parameterType", "STRING"))
    missing = sorted(n for n, spec in inputs.items() if not spec.get("isOptional") and n not in out)
    if missing:
        raise SubmitError(f"missing required pipeline parameter(s): {', '.join(missing)} (pass --param NAME=VALUE)")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", required=True, help="KFP API, e.g. http://ml-pipeline.kubeflow.svc.cluster.local:8888")
    parser.add_argument("--package", required=True, type=Path, help="compiled pipeline YAML")
    parser.add_argument("--experiment", default="voicecart")
    parser.add_argument("--run-name", default=None)
    parser.add_argument("--param", action="append", default=[], help="NAME=VALUE, repeatable")
    parser.add_argument("--dry-run", action="store_true", help="check and print, submit nothing")
    args = parser.parse_args(argv)
    try:
        ir = load_ir(args.package)
        params = check_params(ir, args.param)
    except SubmitError as exc:
        print(f"kfp_submit: {exc}", file=sys.stderr)
        return 2
    run_name = args.run_name or ir["pipelineInfo"]["name"]
    if args.dry_run:
        print(json.dumps({"pipeline": ir["pipelineInfo"]["name"], "run_name": run_name,
                          "experiment": args.experiment, "arguments": params}, indent=2))
        return 0
    import kfp  # only the pipeline image has it

    client = kfp.Client(host=args.host)
    run = client.create_run_from_pipeline_package(str(args.package), arguments=params, run_name=run_name,
                                                  experiment_name=args.experiment, enable_caching=True)
    print(json.dumps({"run_id": run.run_id, "run_name": run_name, "experiment": args.experiment}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
