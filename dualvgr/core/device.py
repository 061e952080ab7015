"""Device and numeric-precision selection, from the spec, never hard-coded (original bugs B2, B4, B40)."""

from __future__ import annotations

import torch

from dualvgr.core.errors import SpecError

DEVICE_CHOICES = ("auto", "cpu", "cuda")


def resolve_device(name: str) -> torch.device:
    """Map a spec value (``auto``, ``cpu``, ``cuda``, ``cuda:K``) to a device that exists here."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise SpecError(
                f"device '{name}' requested but CUDA is not available on this machine; "
                f"set train.device: cpu (or auto)"
            )
        device = torch.device(name)
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise SpecError(
                f"device '{name}' does not exist: this machine has {torch.cuda.device_count()} CUDA device(s) "
                f"(the original hard-coded cuda:1, bug B2); use cuda or cuda:0"
            )
        return device
    raise SpecError(f"unknown device '{name}': expected one of {', '.join(DEVICE_CHOICES)} or cuda:K")


def set_tf32(enabled: bool) -> None:
    """TF32 changes conv/matmul results at ~1e-3 relative on Ampere+ (B40); faithful runs keep it off."""
    torch.backends.cuda.matmul.allow_tf32 = enabled
    torch.backends.cudnn.allow_tf32 = enabled
