"""The training pipeline: fresh data in, a model that has *earned* its traffic out.

    prepare ─► C-STAR ─► snapshot ─┬► train ranker ─► export (checked vs torch) ─┐
       (embeddings at each cut) ─┘ └───────────────────────────────────────► evaluate vs champion ─► register
                                                                                   └─ If promote: deploy as a canary
                                                                                      (the first model: champion)
                                                                                      Else: champion keeps serving

Every edge carries data its consumer reads: the prepared window feeds C-STAR and the snapshot; the
embeddings join the snapshot; the snapshot (profiles, product statistics, embeddings as of each
query's day) is the only source of features for training, the export checks and the evaluation.
    ExitHandler: every run leaves a record in the registry (failed step and message included).

Runs unchanged on Kubeflow (compiled IR: ``training.yaml``) and on one machine through
``kfp.local.SubprocessRunner`` (``voicecart pipeline run --local``).
"""

from pathlib import Path

from kfp import compiler, dsl, kubernetes

from components.data import prepare_data
from components.evaluation import evaluate_challenger
from components.export import export_bundle
from components.features import build_snapshot
from components.ranking import train_ranker
from components.registry import deploy_canary, keep_champion, record_run, register_model
from components.trajectory import pretrain_cstar

COMPILED = Path(__file__).with_name("training.yaml")

# Cluster placement (kfp-kubernetes): training steps on GPU nodes, BigQuery credentials from a secret
# (keys `credentials.json` and `project`, see manifests/secrets.example.yaml).
GPU_RESOURCE = "nvidia.com/gpu"
GPU_NODE_LABEL = ("cloud.google.com/gke-accelerator", "nvidia-l4")
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
BIGQUERY_SECRET = "voicecart-bigquery"
BIGQUERY_MOUNT = "/var/secrets/google"
FEATURE_STORE_CONFIG = "voicecart-feature-store"
"""The chart's feature-store ConfigMap (release ``voicecart``): it switches the offline engine to BigQuery."""


def _on_gpu(task: dsl.PipelineTask) -> dsl.PipelineTask:
    task.set_accelerator_type(GPU_RESOURCE).set_accelerator_limit(1)
    task.set_cpu_limit("4").set_memory_limit("16G")
    kubernetes.add_node_selector(task, label_key=GPU_NODE_LABEL[0], label_value=GPU_NODE_LABEL[1])
    kubernetes.add_toleration(task, **GPU_TOLERATION)
    return task


def _with_bigquery(task: dsl.PipelineTask) -> dsl.PipelineTask:
    kubernetes.use_secret_as_volume(task, secret_name=BIGQUERY_SECRET, mount_path=BIGQUERY_MOUNT, optional=True)
    kubernetes.use_secret_as_env(task, secret_name=BIGQUERY_SECRET, optional=True,
                                 secret_key_to_env={"project": "VOICECART_FEATURES__OFFLINE__PROJECT"})
    task.set_env_variable("GOOGLE_APPLICATION_CREDENTIALS", f"{BIGQUERY_MOUNT}/credentials.json")
    kubernetes.use_config_map_as_env(task, config_map_name=FEATURE_STORE_CONFIG, optional=True, config_map_key_to_env={
        key: key for key in ("VOICECART_FEATURES__OFFLINE__TYPE", "VOICECART_FEATURES__OFFLINE__DATASET")})
    return task


@dsl.pipeline(name="voicecart-training",
              description="Prepare data, features and C-STAR, train the ranker, export it, and promote it only "
                          "if it beats the champion on the same fresh window.")
def training_pipeline(
    registry_uri: str,
    source: str = "tafeng",
    source_path: str = "",
    window_start: str = "2000-11-01",
    test_from: str = "2001-02-01",
    window_end: str = "2001-03-01",
    max_customers: int = 0,
    seed: int = 0,
    use_embeddings: bool = False,
    cstar_epochs: int = 2,
    embedding_dim: int = 64,
    epochs: int = 6,
    hidden: str = "64,32",
    lr: float = 0.003,
    promotion_margin: float = 0.0,
    canary_percent: int = 10,
    feedback_store: str = "",
    run_name: str = "",
):
    outcome = record_run(registry_uri=registry_uri, run_name=run_name).set_caching_options(False)
    outcome.set_display_name("record run")
    with dsl.ExitHandler(outcome, name="training"):
        data = prepare_data(source=source, source_path=source_path, window_start=window_start,
                            test_from=test_from, window_end=window_end, max_customers=max_customers, seed=seed)
        data.set_display_name("prepare data").set_retry(num_retries=1, backoff_duration="5s")
        _with_bigquery(data)

        cstar = pretrain_cstar(dataset=data.outputs["dataset"], test_from=test_from, window_end=window_end,
                               epochs=cstar_epochs, embedding_dim=embedding_dim, seed=seed)
        cstar.set_display_name("pre-train C-STAR")
        _on_gpu(cstar)

        features = build_snapshot(dataset=data.outputs["dataset"], embeddings=cstar.outputs["embeddings"],
                                  test_from=test_from, window_end=window_end, feedback_store=feedback_store)
        features.set_display_name("feature snapshot")
        _with_bigquery(features)

        ranker = train_ranker(snapshot=features.outputs["snapshot"], test_from=test_from,
                              use_embeddings=use_embeddings, epochs=epochs, hidden=hidden, lr=lr, seed=seed)
        ranker.set_display_name("train ranker")
        _on_gpu(ranker)

        bundle = export_bundle(model=ranker.outputs["model"], snapshot=features.outputs["snapshot"],
                               test_from=test_from, window_start=window_start, window_end=window_end)
        bundle.set_display_name("export")

        gate = evaluate_challenger(snapshot=features.outputs["snapshot"], model=ranker.outputs["model"],
                                   bundle=bundle.outputs["bundle"],
                                   registry_uri=registry_uri, test_from=test_from, window_end=window_end,
                                   promotion_margin=promotion_margin, seed=seed)
        gate.set_display_name("evaluate vs champion").set_caching_options(False)

        registered = register_model(bundle=bundle.outputs["bundle"], decision=gate.outputs["decision"],
                                    registry_uri=registry_uri)
        registered.set_display_name("register").set_caching_options(False).set_retry(num_retries=2,
                                                                                       backoff_duration="10s")

        with dsl.If(gate.outputs["verdict"] == "promote", name="gate-promotes"):
            deploy = deploy_canary(registry_uri=registry_uri, version=registered.output,
                                   summary=gate.outputs["summary"], canary_percent=canary_percent)
            deploy.set_display_name("deploy (canary)").set_caching_options(False)
            deploy.set_retry(num_retries=2, backoff_duration="10s")
        with dsl.Else(name="gate-refuses"):
            keep = keep_champion(registry_uri=registry_uri, version=registered.output,
                                 summary=gate.outputs["summary"])
            keep.set_display_name("keep champion").set_caching_options(False)


def compile_pipeline(path: Path = COMPILED) -> Path:
    """Write the IR YAML that Kubeflow runs (and that is checked in)."""
    compiler.Compiler().compile(training_pipeline, package_path=str(path))
    return path


if __name__ == "__main__":
    print(compile_pipeline())
