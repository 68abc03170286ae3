"""Build the offline feature tables (point in time) of the window: the Feast offline source."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Output

from components import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def build_features(dataset: Input[Dataset], as_of: str, features: Output[Dataset]):
    """Feature tables as of ``as_of`` (the test cut-off: nothing after it leaks into training)."""
    from datetime import datetime

    from voicecart.features import build_features as build

    summary = build(dataset.path, features.path, as_of=datetime.fromisoformat(as_of))
    features.metadata.update({k: v for k, v in vars(summary).items() if isinstance(v, (int, float, str))})
