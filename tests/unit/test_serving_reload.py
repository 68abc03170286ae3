"""Hot reload of a registry's new champion, by call and by the polling watcher (no server needed)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from voicecart.config import Settings
from voicecart.data.store import write_dataset
from voicecart.data.synthetic import SyntheticConfig, generate
from voicecart.registry import Registry
from voicecart.schemas import ResolveRequest
from voicecart.export.model import bundle_from_dataset
from voicecart.serving.errors import BundleError
from voicecart.serving.server import Service


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("reload")
    tables, _ = generate(SyntheticConfig(n_customers=100, seed=2))
    write_dataset(tables, root / "data", source="synthetic")
    return bundle_from_dataset(root / "data", root / "bundle", epochs=1)


def _service(registry_root: Path, tmp_path: Path, poll_s: float = 0.0) -> Service:
    settings = Settings()
    settings = settings.model_copy(update={"serving": settings.serving.model_copy(
        update={"feedback_db": tmp_path / "fb.sqlite", "reload_poll_s": poll_s})})
    return Service(registry_root, settings, profiles=None)


def test_reload_swaps_in_the_new_champion_and_a_broken_one_keeps_the_old(bundle, tmp_path):
    registry = Registry(tmp_path / "registry")
    registry.promote(registry.publish(bundle), "first")
    service = _service(tmp_path / "registry", tmp_path)
    assert service.engine.model.version == "v0001"
    registry.promote(registry.publish(bundle), "better")
    assert service.reload() == "v0002"
    answer = service.engine.resolve(ResolveRequest(customer_id="c", utterance="add milk"))
    assert answer.model_version == "v0002"
    (tmp_path / "registry" / "voicecart" / "champion.json").write_text("{not json")
    with pytest.raises(BundleError):
        service.reload()
    assert service.engine.model.version == "v0002"


def test_watcher_picks_up_a_promotion(bundle, tmp_path):
    registry = Registry(tmp_path / "registry")
    registry.promote(registry.publish(bundle), "first")
    service = _service(tmp_path / "registry", tmp_path)
    service.watch(0.05)
    registry.promote(registry.publish(bundle), "better")
    for _ in range(200):
        if service.engine.model.version == "v0002":
            break
        time.sleep(0.05)
    assert service.engine.model.version == "v0002"


def test_the_resolve_pool_has_the_configured_size(bundle, tmp_path, monkeypatch):
    monkeypatch.setenv("VOICECART_SERVING__RESOLVE_THREADS", "3")
    settings = Settings()
    settings = settings.model_copy(update={"serving": settings.serving.model_copy(
        update={"feedback_db": tmp_path / "fb.sqlite"})})
    service = Service(bundle, settings, profiles=None)
    assert settings.serving.resolve_threads == 3 and service.pool._max_workers == 3


def test_each_worker_gets_its_own_socket_of_the_one_port():
    """serving.workers > 1: one SO_REUSEPORT socket per worker (the kernel spreads connections over them),
    all on the same port; a connection to the port is accepted by one of them."""
    import socket

    from voicecart.serving.local import free_port
    from voicecart.serving.server import reuse_port_socket

    port = free_port()
    socks = [reuse_port_socket("127.0.0.1", port) for _ in range(2)]
    try:
        assert {s.getsockname()[1] for s in socks} == {port}
        for s in socks:
            s.settimeout(0.2)
        clients = [socket.create_connection(("127.0.0.1", port), timeout=2) for _ in range(16)]
        accepted, per_socket = [], []
        for s in socks:
            before = len(accepted)
            while True:
                try:
                    conn, _ = s.accept()
                except (TimeoutError, OSError):
                    break
                accepted.append(conn)
            per_socket.append(len(accepted) - before)
        assert len(accepted) == 16, "every connection reached one of the sockets"
        assert min(per_socket) > 0, f"the kernel spread them ({per_socket}; all on one has odds 2 in 65,536)"
        for c in clients + accepted:
            c.close()
    finally:
        for s in socks:
            s.close()


@pytest.mark.parametrize("workers, allowed, mode, expected", [
    (2, {0, 1}, "auto", [0, 1]),          # one worker per CPU: each pinned to its own
    (4, {0, 1}, "auto", [0, 1, 0, 1]),    # more workers than CPUs: round robin
    (2, {3, 5}, "auto", [3, 5]),          # the CPUs this process may use, not 0..n-1
    (1, {0, 1}, "auto", [None]),          # fewer workers than CPUs: free to use the idle core
    (3, {0, 1, 2, 3}, "auto", [None] * 3),
    (3, {0, 1}, "auto", [None] * 3),       # uneven: one CPU would carry two of three equally fed workers
    (2, {0, 1}, "off", [None, None]),
    (2, set(), "auto", [None, None]),
])
def test_worker_cpu_pins_only_when_the_workers_cover_the_cpus(workers, allowed, mode, expected):
    from voicecart.serving.server import worker_cpu

    assert [worker_cpu(i, workers, allowed, mode) for i in range(workers)] == expected
