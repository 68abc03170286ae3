"""Evaluation on update: challenger vs champion (or the strongest baseline) on the same fresh window."""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Markdown, Metrics, Model, Output

from components import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def evaluate_challenger(snapshot: Input[Dataset], model: Input[Model], bundle: Input[Model], registry_uri: str,
                        test_from: str,
                        window_end: str, promotion_margin: float, seed: int, metrics: Output[Metrics],
                        report: Output[Markdown],
                        decision: Output[Artifact]) -> NamedTuple("Gate", [("verdict", str), ("summary", str)]):
    """Score both on the snapshot's window after ``test_from``, run the gate, write the table (with the
    challenger's ablations from the train step's ``model``) and the decision."""
    from collections import namedtuple

    from voicecart.promotion import evaluate_update

    result = evaluate_update(snapshot.path, bundle.path, registry_uri, test_from=test_from, window_end=window_end,
                             margin=promotion_margin, seed=seed, report_path=report.path, decision_path=decision.path,
                             model_dir=model.path)
    for key, value in result["metrics"].items():
        metrics.log_metric(key, value)
    decision.metadata.update({"promote": result["promote"], "summary": result["summary"]})
    return namedtuple("Gate", ["verdict", "summary"])("promote" if result["promote"] else "keep", result["summary"])
