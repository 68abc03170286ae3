"""Package the TorchScript export as a TorchServe ``.mar``, laid out for KServe's PyTorch runtime.

KServe's TorchServe runtime mounts ``storageUri`` at ``/mnt/models`` and expects::

    config/config.properties
    model-store/<model_name>.mar
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from voicecart.export.signature import ModelSignature

HANDLER = Path(__file__).with_name("torchserve_handler.py")
MAR_VERSION = "1.0"


class ArchiverMissingError(RuntimeError):
    """torch-model-archiver is not installed (scripts/tools/torchserve.sh installs it)."""


def archiver_command() -> list[str]:
    """The torch-model-archiver entry point next to this interpreter, or on PATH."""
    local = Path(sys.executable).with_name("torch-model-archiver")
    if local.exists():
        return [str(local)]
    found = shutil.which("torch-model-archiver")
    if found:
        return [found]
    raise ArchiverMissingError("torch-model-archiver is not installed: run `bash scripts/tools/torchserve.sh` "
                               "(pip install torch-model-archiver==0.12.0)")


def config_properties(name: str, *, model_store: str = "/mnt/models/model-store", port: int = 8085,
                      management_port: int = 8085, metrics_port: int = 8082, workers: int = 1,
                      batch_size: int = 1, max_batch_delay_ms: int = 10) -> str:
    """``config.properties`` as KServe's TorchServe runtime reads it (model_snapshot names the .mar)."""
    snapshot = {"name": "startup.cfg", "modelCount": 1, "models": {name: {MAR_VERSION: {
        "defaultVersion": True, "marName": f"{name}.mar", "minWorkers": workers, "maxWorkers": workers,
        "batchSize": batch_size, "maxBatchDelay": max_batch_delay_ms, "responseTimeout": 60}}}}
    return "\n".join([
        f"inference_address=http://0.0.0.0:{port}",
        f"management_address=http://0.0.0.0:{management_port}",
        f"metrics_address=http://0.0.0.0:{metrics_port}",
        "grpc_inference_port=7070",
        "grpc_management_port=7071",
        "enable_envvars_config=true",
        "install_py_dep_per_model=false",
        "enable_metrics_api=true",
        "metrics_mode=prometheus",
        "number_of_netty_threads=4",
        "job_queue_size=64",
        f"model_store={model_store}",
        f"model_snapshot={json.dumps(snapshot)}",
        "",
    ])


def build_mar(torchscript_path: Path, signature: ModelSignature, model_store: Path, name: str) -> Path:
    """Run torch-model-archiver; returns ``model_store/<name>.mar``."""
    model_store.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="voicecart-mar-") as tmp:
        sig = signature.save(Path(tmp) / "signature.json")
        cmd = [*archiver_command(), "--model-name", name, "--version", MAR_VERSION,
               "--serialized-file", str(torchscript_path), "--handler", str(HANDLER),
               "--extra-files", str(sig), "--export-path", str(model_store), "--force"]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"torch-model-archiver failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    return model_store / f"{name}.mar"


def write_kserve_layout(torchscript_path: Path, signature: ModelSignature, out: Path, name: str) -> Path:
    """Write ``out/config/config.properties`` and ``out/model-store/<name>.mar``; returns the .mar."""
    (out / "config").mkdir(parents=True, exist_ok=True)
    (out / "config" / "config.properties").write_text(config_properties(name))
    return build_mar(torchscript_path, signature, out / "model-store", name)
