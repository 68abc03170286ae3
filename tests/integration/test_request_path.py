"""The request path, traced: from KServe's ``preprocess``/``predict`` to the answer, the files of ours whose
code runs for one warm request on the served stack (the bundle's ONNX ranker, the real Feast online store on
SQLite, the memory conversation store) — a new request, and a follow-up to it. No more than 8, and the list in
docs/serving.md is the traced one."""

from __future__ import annotations

import asyncio
import re
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import voicecart
from voicecart.config import FeatureSettings, Settings
from voicecart.data.store import write_dataset
from voicecart.data.synthetic import SyntheticConfig, generate
from voicecart.export.model import bundle_from_dataset
from voicecart.schemas.times import from_epoch

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PACKAGE = Path(voicecart.__file__).resolve().parent
DOC = Path(__file__).resolve().parents[2] / "docs" / "serving.md"
MOST_FILES = 8


class Tracer:
    """Records the voicecart files whose Python code runs while ``active``, in every thread started after it."""

    def __init__(self) -> None:
        self.active = False
        self.files: set[str] = set()

    def __call__(self, frame, event, arg):  # noqa: ANN001, ANN204 - sys.setprofile's hook
        if self.active and event == "call":
            name = frame.f_code.co_filename
            if name.startswith(str(PACKAGE)):
                self.files.add(Path(name).relative_to(PACKAGE).as_posix())

    def run(self, fn):  # noqa: ANN001, ANN201
        self.files = set()
        sys.setprofile(self)
        self.active = True
        try:
            return fn()
        finally:
            self.active = False
            sys.setprofile(None)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    from voicecart.features.online import FeastProfiles
    from voicecart.features.store import publish
    from voicecart.serving.bundle import load_serving_model, stats_from_feast
    from voicecart.serving.server import ResolveModel, Service

    root = tmp_path_factory.mktemp("request-path")
    tables, _ = generate(SyntheticConfig(n_customers=150, seed=7))
    write_dataset(tables, root / "data", source="synthetic")
    bundle = bundle_from_dataset(root / "data", root / "bundle", epochs=1)
    features = FeatureSettings(store_dir=root / "store")
    publish(root / "data", features, from_epoch(load_serving_model(bundle).now))
    settings = Settings(features=features).model_copy(deep=True)
    settings.serving.feedback_db = root / "feedback.sqlite"
    settings.serving.deadline_ms = 10_000  # a slow first call must not take the popularity fallback here
    tracer = Tracer()
    threading.setprofile(tracer)  # every thread started from here on (the request pools) is traced when active
    try:
        service = Service(bundle, settings, FeastProfiles(features), stats_from_feast(features))
        model = ResolveModel("voicecart", service.engine, ThreadPoolExecutor(4, thread_name_prefix="traced"))
        customer = next(p for p in tables.customers.column("customer_id").to_pylist()
                        if service.engine.profiles.get(str(p)) is not None)
        yield model, tracer, str(customer)
        service.engine.close()
        service.feedback_log.close()
    finally:
        threading.setprofile(None)


def _ask(model, customer: str, utterance: str, conversation: str) -> dict:  # noqa: ANN001
    async def call() -> dict:
        body = {"instances": [{"customer_id": customer, "utterance": utterance, "conversation_id": conversation}]}
        return await model.predict(await model.preprocess(body))

    return asyncio.run(call())["predictions"][0]


def _documented() -> set[str]:
    """The files docs/serving.md lists between its request-path markers."""
    text = DOC.read_text()
    block = text.split("<!-- request-path -->")[1].split("<!-- /request-path -->")[0]
    return set(re.findall(r"`([a-z_/]+\.py)`", block))


def test_a_request_and_its_follow_up_run_no_more_than_8_of_our_files(served) -> None:
    model, tracer, customer = served
    _ask(model, customer, "add two milk", "warm")  # warm: first calls allocate (ONNX Runtime, BM25, Feast)
    _ask(model, customer, "the other one", "warm")
    first = tracer.run(lambda: _ask(model, customer, "add two milk", "traced"))
    new_request = set(tracer.files)
    assert first["product"] is not None and first["personalized"], first
    assert first["fallbacks"] == [], first  # the whole path ran: profile read, features, the ranker
    follow = tracer.run(lambda: _ask(model, customer, "the other one", "traced"))
    follow_up = set(tracer.files)
    assert follow["product"]["id"] != first["product"]["id"], follow
    for name, files in (("a new request", new_request), ("a follow-up", follow_up)):
        assert len(files) <= MOST_FILES, f"{name} ran {len(files)} files: {sorted(files)}"
    assert {"serving/server.py", "serving/engine.py", "features/online.py", "serving/predictor_onnx.py",
            "ranking/features.py"} <= new_request  # it did trace the path (not an empty set)
    assert new_request | follow_up == _documented(), (
        f"docs/serving.md lists {sorted(_documented())}, the trace ran {sorted(new_request | follow_up)}")
