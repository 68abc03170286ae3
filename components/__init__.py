"""KFP components of the training pipeline: each a few lines over the voicecart library.

Every component runs in the project image (pinned below, built from docker/ by the deployment
work); kfp's own default image changes between releases, so it is never relied on.
"""

BASE_IMAGE = "ghcr.io/voicecart/voicecart-pipeline:0.1.0"
