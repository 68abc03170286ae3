"""Where torch work runs: ``auto`` is CUDA when the machine has it, else the CPU (settings ``ranking.device``
and ``trajectory.device``, env ``VOICECART_RANKING__DEVICE`` / ``VOICECART_TRAJECTORY__DEVICE``)."""

from __future__ import annotations

import torch


def resolve_device(name: str = "auto") -> torch.device:
    """``auto``: CUDA when this machine has it, else CPU; or an explicit torch device name."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)
