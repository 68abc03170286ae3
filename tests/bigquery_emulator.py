"""A local BigQuery for tests: bqemulator (scripts/tools/bqemulator.sh) in a subprocess, and a ready
``google.cloud.bigquery.Client`` pointed at it.

    from tests.bigquery_emulator import bigquery_emulator

    with bigquery_emulator() as client:          # skips the test when .venv-bqemulator is missing
        client.create_dataset("features")
        client.query("SELECT 1").result()

The emulator is ephemeral (in-memory DuckDB): every ``with`` starts an empty one (about 4 s). Known
limits of the emulator (bqemulator 1.4.0): uploads the client sends as *multipart* are refused
(``load_table_from_json``, ``load_table_from_dataframe``, ``load_table_from_file(..., size=n)`` for
small n: "multipart upload's second part has unsupported Content-Type '*/*'"), so load tables with
:func:`load_rows` (NDJSON through a resumable upload) or ``insert_rows_json``.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from google.cloud import bigquery

REPO = Path(__file__).resolve().parents[1]
VENV = REPO / ".venv-bqemulator"
EXECUTABLE = VENV / "bin" / "bqemulator"
STAMP = VENV / ".installed"
PROJECT = "voicecart-test"
INSTALL_HINT = "run `bash scripts/tools/bqemulator.sh` (or `make tools`)"


class EmulatorUnavailable(RuntimeError):
    """The emulator is not installed, or did not come up."""


def missing_reason() -> str | None:
    """Why the emulator cannot be started here (None when it is installed)."""
    if not EXECUTABLE.exists() or not STAMP.exists():
        return f"BigQuery emulator not installed at {VENV}: {INSTALL_HINT}"
    return None


class Emulator:
    """One emulator process: ephemeral (in memory) by default, or persistent in ``data_dir``, on ``port``
    (0: a free one). ``stop()`` then ``start()`` again on the same port and data dir is a restart."""

    def __init__(self, project: str = PROJECT, *, data_dir: Path | None = None, port: int = 0) -> None:
        self.project, self.data_dir, self.port = project, data_dir, port
        self.proc: subprocess.Popen | None = None
        self._tmp = tempfile.TemporaryDirectory(prefix="bqemulator-")
        self.log_path = Path(self._tmp.name) / "emulator.log"

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 90.0) -> "Emulator":
        reason = missing_reason()
        if reason:
            raise EmulatorUnavailable(reason)
        tmp = Path(self._tmp.name)
        env = {k: v for k, v in os.environ.items() if not k.startswith("BQEMU_")}
        # random ports unless given, nothing read from a .bqemu.toml (cwd is the temp dir); no attempt to
        # download DuckDB's avro extension at startup (no network needed; only Avro loads need it).
        env |= {"BQEMU_ENABLE_FORMAT_EXTENSIONS": "false", "BQEMU_UPLOAD_STAGING_DIR": str(tmp / "uploads")}
        env.pop("VIRTUAL_ENV", None)
        storage = ["--data-dir", str(self.data_dir)] if self.data_dir is not None else ["--ephemeral"]
        cmd = [str(EXECUTABLE), "start", *storage, "--rest-host", "127.0.0.1", "--rest-port", str(self.port),
               "--grpc-host", "127.0.0.1", "--grpc-port", "0", "--project", self.project,
               "--log-format", "json", "--log-level", "info"]  # info: the port comes in a log event
        self.log_path.write_bytes(b"")
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(cmd, cwd=tmp, env=env, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
        try:
            self.port = _wait_ready(self.proc, self.log_path, timeout_s)
        except BaseException:
            self.stop()
            raise
        return self

    def client(self) -> "bigquery.Client":
        return client_for(self.endpoint, self.project)

    def stop(self) -> None:
        if self.proc is not None:
            _stop(self.proc)
            self.proc = None

    def close(self) -> None:
        self.stop()
        self._tmp.cleanup()


@contextmanager
def bigquery_emulator(project: str = PROJECT, *, skip: bool = True,
                      timeout_s: float = 90.0) -> Iterator["bigquery.Client"]:
    """Start an empty emulator on a free localhost port and yield a client of ``project`` on it.

    When the emulator is not installed: ``pytest.skip`` (``skip=True``) or :class:`EmulatorUnavailable`.
    An installed emulator that fails to come up is an error either way (its log is in the message).
    """
    reason = missing_reason()
    if reason:
        if skip:
            import pytest

            pytest.skip(reason)
        raise EmulatorUnavailable(reason)
    emulator = Emulator(project).start(timeout_s)
    try:
        yield emulator.client()
    finally:
        emulator.close()


def client_for(endpoint: str, project: str = PROJECT) -> "bigquery.Client":
    """A client of ``project`` on a REST endpoint (no Google credentials involved)."""
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import bigquery

    return bigquery.Client(project=project, credentials=AnonymousCredentials(),
                           client_options=ClientOptions(api_endpoint=endpoint))


def load_rows(client: "bigquery.Client", table: str, schema: Sequence["bigquery.SchemaField"],
              rows: Iterable[dict[str, Any]]) -> int:
    """Replace ``table`` (``dataset.name`` or ``project.dataset.name``) with ``rows``: the offline engine's
    own NDJSON load job (the path the emulator accepts; ~50k rows/s). Rows loaded."""
    from voicecart.features.offline_bigquery import load_json_rows

    return load_json_rows(client, table, list(schema), rows)


def _wait_ready(proc: subprocess.Popen, log_path: Path, timeout_s: float) -> int:
    """The REST port once ``/readyz`` answers 200; EmulatorUnavailable (with the log) otherwise."""
    deadline = time.monotonic() + timeout_s
    port = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise EmulatorUnavailable(f"bqemulator exited with {proc.returncode}:\n{_tail(log_path)}")
        if port is None:
            port = _logged_port(log_path)
        if port is not None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as response:
                    if response.status == 200:
                        return port
            except OSError:
                pass
        time.sleep(0.2)
    raise EmulatorUnavailable(f"bqemulator not ready after {timeout_s:.0f} s:\n{_tail(log_path)}")


def _logged_port(log_path: Path) -> int | None:
    """The port of the emulator's ``rest.listen`` log event (it binds port 0: the OS picks a free one)."""
    try:
        text = log_path.read_text(errors="replace")
    except FileNotFoundError:
        return None
    for line in text.splitlines():
        if '"rest.listen"' not in line:
            continue
        try:
            return int(json.loads(line)["port"])
        except (ValueError, KeyError, TypeError):
            continue
    return None


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()  # SIGTERM: the emulator shuts its servers down and exits
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"
