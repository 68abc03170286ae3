"""Export the ranker (ONNX, TorchScript, Triton repository, TorchServe .mar) and prove it ranks like torch."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Model, Output

from components import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def export_bundle(model: Input[Model], snapshot: Input[Dataset], test_from: str, window_start: str, window_end: str,
                  bundle: Output[Model]):
    """A complete bundle folder; fails (and stops the run) when an export disagrees with torch."""
    from voicecart.export.model import export_model

    metadata = export_model(model.path, snapshot.path, bundle.path, test_from=test_from, window_start=window_start,
                            window_end=window_end)
    bundle.metadata.update(metadata)
