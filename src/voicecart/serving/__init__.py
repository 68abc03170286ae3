"""The real-time engine: resolve (parse -> candidates -> profile -> features -> rank -> answer),
the ranker as a V2 predictor (ONNX Runtime in process, or Triton), feedback intake, fallbacks.

Only this package imports kserve, and only in :mod:`voicecart.serving.server`; the engine
(:mod:`voicecart.serving.engine`) runs in process without it.
"""
