"""Prepare the canonical tables of the data window (the pipeline's first step)."""

from kfp import dsl
from kfp.dsl import Dataset, Output

from components import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def prepare_data(source: str, source_path: str, window_start: str, test_from: str, window_end: str,
                 max_customers: int, seed: int, dataset: Output[Dataset]):
    """Canonical tables of [window_start, window_end) from a source (``prepared``: a prepared folder).

    Fails when the window, or either side of ``test_from``, has no orders (nothing to train or test on).
    """
    from voicecart.data.window import prepare_window

    summary = prepare_window(source, source_path or None, dataset.path, window_start=window_start,
                             window_end=window_end, test_from=test_from, max_customers=max_customers, seed=seed)
    dataset.metadata.update(summary)
