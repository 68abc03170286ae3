"""The point-in-time feature snapshot of the window: what training, evaluation and serving all read."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Output

from components import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def build_snapshot(dataset: Input[Dataset], embeddings: Input[Dataset], test_from: str, window_end: str,
                   feedback_store: str, snapshot: Output[Dataset]):
    """The training weeks before ``test_from`` and the evaluation window after it, each line as of its day,
    on the configured offline engine (DuckDB here, BigQuery with ``VOICECART_FEATURES__OFFLINE``)."""
    from voicecart.features.snapshot import snapshot_step

    summary = snapshot_step(dataset.path, embeddings.path, snapshot.path, test_from=test_from,
                            window_end=window_end, feedback_store=feedback_store or None)
    snapshot.metadata.update(summary)
