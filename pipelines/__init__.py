"""Kubeflow Pipelines DAGs; ``training.yaml`` is the compiled IR of :mod:`pipelines.training`."""
