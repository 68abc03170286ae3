"""Pre-train the C-STAR trajectory encoder and embed every customer as of the cut-off."""

from kfp import dsl
from kfp.dsl import HTML, Dataset, Input, Model, Output

from components import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def pretrain_cstar(dataset: Input[Dataset], as_of: str, epochs: int, embedding_dim: int, seed: int,
                   encoder: Output[Model], embeddings: Output[Dataset], loss_curves: Output[HTML]):
    """Encoder checkpoint, one embedding per customer, and the loss curves."""
    from voicecart.registry.update import pretrain_encoder

    summary = pretrain_encoder(dataset.path, encoder.path, embeddings.path, loss_curves.path, as_of=as_of,
                               epochs=epochs, embedding_dim=embedding_dim, seed=seed)
    encoder.metadata.update(summary)
