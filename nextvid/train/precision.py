"""Whether bf16 autocast runs natively on a device. Asked, not decided here: the config says bf16 or
not (a hardware-dependent default would make a run's hash depend on the machine); the trainer warns
when a config asks for bf16 where it would be emulated, i.e. much slower than fp32."""

from __future__ import annotations

import logging
from pathlib import Path

import torch

log = logging.getLogger(__name__)

CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def native_bf16(device: torch.device, cpuinfo: str | Path = "/proc/cpuinfo") -> bool:
    """CUDA: the GPU's own answer. CPU: AVX512-BF16 or AMX-BF16 in the kernel's CPU flags (oneDNN
    emulates bf16 without them); unknown (no /proc/cpuinfo) counts as native, so nothing is claimed."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    try:
        flags = Path(cpuinfo).read_text()
    except OSError:
        return True
    return any(flag in flags.split() for flag in CPU_BF16_FLAGS)


def warn_if_emulated(device: torch.device, setting: str, fix: str) -> None:
    """Log a warning when `setting` asks for bf16 on a device that would emulate it."""
    if not native_bf16(device):
        log.warning("%s is on but this %s has no native bf16 (CPU flags %s): autocast is emulated and slower than fp32; %s",
                    setting, device.type, "/".join(CPU_BF16_FLAGS), fix)
