"""Run a local server in a child process (tests, the benchmark, the README demo): free port, readiness, stop."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout_s: float = 60.0, proc: subprocess.Popen | None = None) -> None:
    """Wait until GET url answers 200 (raise with the child's exit code if it died)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with code {proc.returncode} before {url} was ready")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} not ready after {timeout_s:.0f}s")


class LocalServer:
    """``voicecart serve ...`` in a child process on a free localhost port; a context manager."""

    ready_path = "/v2/health/ready"

    def __init__(self, model_dir: Path, *args: str, port: int | None = None, log_path: Path | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        exe = Path(sys.executable).parent / "voicecart"
        self.cmd = [str(exe), "serve", "--model-dir", str(model_dir), "--port", str(self.port), *args]
        self.log_path = log_path
        inherited = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}  # never a parent's
        self.env = {**inherited, "OMP_NUM_THREADS": "1", **(env or {})}
        self.proc: subprocess.Popen | None = None

    def start(self, timeout_s: float = 90.0) -> "LocalServer":
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.proc = subprocess.Popen(self.cmd, stdout=out, stderr=subprocess.STDOUT, env=self.env)
        try:
            wait_http(f"{self.url}{self.ready_path}", timeout_s, self.proc)
        except BaseException:
            self.stop()
            raise
        return self

    def kill(self) -> None:
        """kill -9: no shutdown hooks, no flush (the crash the feedback log must survive)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()

    def __enter__(self) -> "LocalServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
