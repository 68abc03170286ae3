"""Register the bundle, move the champion pointer (deploy), and leave a record of every run."""

from kfp import dsl
from kfp.dsl import Artifact, Input, Model, PipelineTaskFinalStatus

from components import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def register_model(bundle: Input[Model], decision: Input[Artifact], registry_uri: str) -> str:
    """Publish the bundle as a new version (champion or not); returns the version."""
    from voicecart.promotion import register_challenger

    return register_challenger(bundle.path, decision.path, registry_uri)


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def promote_champion(registry_uri: str, version: str, summary: str) -> str:
    """Deploy: the new version becomes the champion that serving loads (hot reload)."""
    from voicecart.registry import Registry

    Registry(registry_uri).promote(version, summary)
    return version


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def keep_champion(registry_uri: str, version: str, summary: str) -> str:
    """The gate refused: the champion keeps serving; say so in the log and return it."""
    from voicecart.registry import Registry

    champion = Registry(registry_uri).champion()
    print(f"challenger {version} refused; champion {champion} keeps serving: {summary}")
    return champion or ""


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def record_run(registry_uri: str, run_name: str, status: PipelineTaskFinalStatus):
    """Exit handler: one record per run in the registry, failed runs included (which step, why)."""
    from voicecart.promotion import record_outcome

    record_outcome(registry_uri, run_name or status.pipeline_job_resource_name, state=status.state,
                   error_code=status.error_code, error_message=status.error_message,
                   pipeline_task_name=status.pipeline_task_name)
