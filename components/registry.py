"""Register the bundle, deploy it as a canary beside the champion, and leave a record of every run."""

from kfp import dsl
from kfp.dsl import Artifact, Input, Model, PipelineTaskFinalStatus

from components import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def register_model(bundle: Input[Model], decision: Input[Artifact], registry_uri: str) -> str:
    """Publish the bundle as a new version (champion or not); returns the version."""
    from voicecart.promotion import register_challenger

    return register_challenger(bundle.path, decision.path, registry_uri)


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def deploy_canary(registry_uri: str, version: str, summary: str, canary_percent: int) -> str:
    """Deploy: the version the gate promoted takes ``canary_percent`` % of the traffic beside the champion
    (the registry's canary pointer: serving splits locally, the rollout controller patches the
    InferenceService in the cluster, and the live sequential test promotes or rolls it back). The first
    model ever has no champion to share with and becomes it directly. Returns the canary's state."""
    from voicecart.registry import Registry

    return Registry(registry_uri).start_canary(version, canary_percent, summary).state


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
