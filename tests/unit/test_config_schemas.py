"""Settings name the bad field; boundary models refuse bad input with the field named."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from pydantic import ValidationError

from voicecart.config import ConfigError, load_settings
from voicecart.schemas import CustomerProfile, FeedbackEvent, ResolveRequest


def test_defaults_load_and_env_overrides(monkeypatch):
    monkeypatch.delenv("VOICECART_CONFIG", raising=False)
    assert load_settings().serving.deadline_ms == 50.0
    monkeypatch.setenv("VOICECART_SERVING__DEADLINE_MS", "80")
    assert load_settings().serving.deadline_ms == 80.0


def test_yaml_file_then_env_then_flags(tmp_path, monkeypatch):
    monkeypatch.delenv("VOICECART_CONFIG", raising=False)
    cfg = tmp_path / "voicecart.yaml"
    cfg.write_text("serving:\n  port: 9000\n  deadline_ms: 70\ntrajectory:\n  embedding_dim: 32\n")
    settings = load_settings(cfg)
    assert (settings.serving.port, settings.trajectory.embedding_dim) == (9000, 32)
    monkeypatch.setenv("VOICECART_SERVING__PORT", "9100")
    assert load_settings(cfg).serving.port == 9100
    assert load_settings(cfg, registry={"uri": "gs://bucket/models"}).registry.uri == "gs://bucket/models"


def test_bad_field_is_named(tmp_path, monkeypatch):
    monkeypatch.delenv("VOICECART_CONFIG", raising=False)
    monkeypatch.setenv("VOICECART_SERVING__PORT", "70000")
    with pytest.raises(ConfigError, match=r"serving\.port"):
        load_settings()
    monkeypatch.delenv("VOICECART_SERVING__PORT")
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("features:\n  online: memcached\n")
    with pytest.raises(ConfigError, match=r"features\.online"):
        load_settings(cfg)
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "missing.yaml")


def test_resolve_request_refuses_control_characters_and_huge_utterances():
    with pytest.raises(ValidationError, match="utterance"):
        ResolveRequest(customer_id="c1", utterance="add \x00milk")
    with pytest.raises(ValidationError, match="utterance"):
        ResolveRequest(customer_id="c1", utterance="milk " * 1000)
    with pytest.raises(ValidationError, match="customer_id"):
        ResolveRequest(customer_id="", utterance="add milk")


def test_swap_feedback_needs_a_substitute():
    with pytest.raises(ValidationError, match="substitute_id"):
        FeedbackEvent(event_id="e", request_id="r", customer_id="c", product_id="p", kind="swapped",
                      timestamp=datetime.now(timezone.utc))


def test_profile_arrays_must_be_parallel():
    with pytest.raises(ValidationError, match="same length"):
        CustomerProfile(customer_id="c", product_ids=["a", "b"], product_counts=[1.0], product_last_ts=[1.0, 2.0])
