"""The canary controller against a real Prometheus scraping two real exporters of the engine's
own metrics (``voicecart.serving.metrics``): one playing the stable pod, one the canary pod.
Proves the PromQL the controller sends is valid, counts the right series, and that a bad canary
read this way is rolled back."""

from __future__ import annotations

import copy
import os
import socket
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from voicecart.rollout import ArmQueries, Policy, PrometheusClient, Rollout, Verdict, apply_merge_patch, read_arm
from voicecart.rollout.manifests import load_documents, tool
from voicecart.rollout.metrics import MetricsError

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
PROMETHEUS = tool("prometheus")

# One engine pod: serve the real voicecart.serving.metrics on a port, then record the outcomes
# given on the command line through the functions the engine records with.
EXPORTER = textwrap.dedent("""
    import sys, time
    from prometheus_client import start_http_server
    from voicecart.serving import metrics as m
    from voicecart.serving.engine import observe_answer
    port, version, fast, slow, errors, kept, bought, removed, dups = sys.argv[1:]
    m.set_model_version(version)
    for reason in ("ranker_failed", "deadline", "profile_unavailable"):
        m.FALLBACKS.labels(reason=reason)
    for kind in ("kept", "bought", "removed"):
        for dup in ("false", "true"):
            m.FEEDBACK.labels(kind=kind, duplicate=dup)
    start_http_server(int(port), addr="127.0.0.1")
    sys.stdout.write("serving\\n"); sys.stdout.flush()
    sys.stdin.readline()  # the test says when the zero state has been scraped
    for _ in range(int(fast)):
        observe_answer(0.004, True, [])
    for i in range(int(slow)):
        observe_answer(0.2, True, ["deadline"] if i % 2 else [])
    for _ in range(int(errors)):
        observe_answer(0.004, False, ["ranker_failed"])
    for kind, n in (("kept", kept), ("bought", bought), ("removed", removed)):
        m.FEEDBACK.labels(kind=kind, duplicate="false").inc(int(n))
    m.FEEDBACK.labels(kind="kept", duplicate="true").inc(int(dups))
    sys.stdout.write("recorded\\n"); sys.stdout.flush()
    sys.stdin.readline()
""")

# (fast, slow, errors, kept, bought, removed, duplicates)
STABLE = (1900, 20, 10, 500, 100, 150, 30)
CANARY = (150, 10, 40, 40, 10, 50, 5)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_exporter(version: str, counts: tuple[int, ...]) -> tuple[subprocess.Popen, int]:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.Popen([sys.executable, "-c", EXPORTER, str(port), version, *map(str, counts)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout.readline().strip() == "serving"
    return proc, port


def wait_for(what: str, check, timeout_s: float = 60.0):  # noqa: ANN001, ANN202
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.5)


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    if PROMETHEUS is None:
        pytest.skip("prometheus not installed in tools/bin (run: bash scripts/tools/prometheus.sh)")
    tmp = tmp_path_factory.mktemp("prometheus")
    stable, stable_port = start_exporter("v0001", STABLE)
    canary, canary_port = start_exporter("v0002", CANARY)
    port = free_port()
    (tmp / "prometheus.yml").write_text(textwrap.dedent(f"""
        global: {{scrape_interval: 1s, evaluation_interval: 1s}}
        scrape_configs:
          - job_name: voicecart
            static_configs:
              - targets: ["127.0.0.1:{stable_port}"]
                labels: {{namespace: shop, pod: voicecart-predictor-7d9f-abcde}}
              - targets: ["127.0.0.1:{canary_port}"]
                labels: {{namespace: shop, pod: voicecart-v0002-predictor-5c4b-fghij}}
    """))
    server = subprocess.Popen([str(PROMETHEUS), f"--config.file={tmp / 'prometheus.yml'}",
                               f"--storage.tsdb.path={tmp / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    prom = PrometheusClient(url)
    try:
        def scraped_twice() -> bool:
            try:
                return prom.query('sum(count_over_time(up{job="voicecart"}[1m]))') >= 4
            except MetricsError:
                return False
        wait_for("two scrapes of both exporters", scraped_twice)
        for proc in (stable, canary):
            proc.stdin.write("go\n"); proc.stdin.flush()
            assert proc.stdout.readline().strip() == "recorded"
        total = sum(STABLE[:3]) + sum(CANARY[:3])
        wait_for("the recorded outcomes to be scraped",
                 lambda: prom.query('sum(voicecart_resolve_latency_seconds_count{namespace="shop"})') == total)
        time.sleep(2.5)  # a couple more scrapes so increase() sees the final values twice
        yield prom
    finally:
        prom.close()
        for proc in (server, stable, canary):
            proc.terminate()
        for proc in (server, stable, canary):
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


def test_arm_counts_from_real_prometheus_match_what_the_pods_recorded(prometheus: PrometheusClient) -> None:
    window = "5m"
    for version, (fast, slow, errors, kept, bought, removed, _dups) in (("v0001", STABLE), ("v0002", CANARY)):
        arm = read_arm(prometheus, ArmQueries("shop", version, window, latency_bound_s=0.05))
        requests = fast + slow + errors
        # increase() extrapolates to the window's edges: compare rates, and counts loosely
        assert arm.requests == pytest.approx(requests, rel=0.25)
        assert arm.errors / arm.requests == pytest.approx((errors + slow // 2) / requests, rel=0.02)
        assert arm.slow / arm.requests == pytest.approx(slow / requests, rel=0.02)
        assert arm.feedback == pytest.approx(kept + bought + removed, rel=0.25)  # duplicates excluded
        assert arm.kept / arm.feedback == pytest.approx((kept + bought) / (kept + bought + removed), rel=0.02)
        assert arm.p99_ms is not None and 0 < arm.p99_ms <= 250


def test_an_unknown_version_reads_as_no_traffic(prometheus: PrometheusClient) -> None:
    arm = read_arm(prometheus, ArmQueries("shop", "v9999", "5m"))
    assert (arm.requests, arm.errors, arm.feedback) == (0, 0, 0)


def test_a_bad_query_is_reported_with_prometheus_reason(prometheus: PrometheusClient) -> None:
    with pytest.raises(MetricsError, match="bad_data"):
        prometheus.query("sum(rate(voicecart_resolves_total[5m]")


def test_unreachable_prometheus_is_a_clear_error() -> None:
    prom = PrometheusClient(f"http://127.0.0.1:{free_port()}", timeout_s=2)
    with pytest.raises(MetricsError, match="unreachable"):
        prom.query("up")


class Cluster:
    def __init__(self, isvc: dict) -> None:
        self.isvc = isvc

    def get(self, namespace: str, name: str) -> dict:
        return copy.deepcopy(self.isvc)

    def patch(self, namespace: str, name: str, body: dict) -> dict:
        self.isvc = apply_merge_patch(self.isvc, body)
        return copy.deepcopy(self.isvc)


def test_the_controller_rolls_back_a_canary_with_many_more_errors(prometheus: PrometheusClient) -> None:
    isvc = load_documents((REPO / "kserve" / "inferenceservice-cpu.yaml").read_text())[0]
    isvc["metadata"]["namespace"] = "shop"
    cluster = Cluster(isvc)
    started = datetime.now(UTC) - timedelta(minutes=4)
    rollout = Rollout(cluster, "shop", "voicecart", clock=lambda: started.strftime("%Y-%m-%dT%H:%M:%SZ"))
    rollout.start("gs://voicecart-models/registry/voicecart/versions/v0002", 10)
    look = rollout.step(prometheus, Policy(min_requests=100, min_feedback=50))
    assert look.decision.verdict is Verdict.rollback
    assert look.decision.reasons[0].startswith("error_rate is worse")
    assert look.canary.errors / look.canary.requests > 0.15 > look.stable.errors / look.stable.requests
    assert "canary" not in cluster.isvc["spec"]  # the rollback patch went out


def test_cli_status_reads_the_verdict_from_real_prometheus(prometheus: PrometheusClient, tmp_path: Path) -> None:
    import json

    import yaml
    from typer.testing import CliRunner

    from voicecart.cli import app
    from voicecart.rollout import start_patch

    isvc = load_documents((REPO / "kserve" / "inferenceservice-cpu.yaml").read_text())[0]
    isvc["metadata"]["namespace"] = "shop"
    started = (datetime.now(UTC) - timedelta(minutes=4)).strftime("%Y-%m-%dT%H:%M:%SZ")
    running = apply_merge_patch(isvc, start_patch(isvc, "gs://voicecart-models/registry/voicecart/versions/v0002",
                                                  10, now=started))
    path = tmp_path / "isvc.yaml"
    path.write_text(yaml.safe_dump(running))
    result = CliRunner().invoke(app, ["rollout", "status", "--isvc-file", str(path), "--prometheus", prometheus.url,
                                      "--min-requests", "100", "--min-feedback", "50", "--json"])
    assert result.exit_code == 0, result.output
    look = json.loads(result.stdout)
    assert look["verdict"] == "rollback" and look["reasons"][0].startswith("error_rate is worse")
    assert look["canary"]["requests"] > 0 and look["stable"]["requests"] > look["canary"]["requests"]
