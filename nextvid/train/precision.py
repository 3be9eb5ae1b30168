"""Which precision a run computes in: `auto`, `bf16` or `fp32`, resolved once when a run starts.

bf16 autocast pays only where the hardware runs it natively (CUDA GPUs with bf16; CPUs with
AVX512-BF16 or AMX-BF16). Elsewhere torch emulates it: on an AVX2-only CPU the tiny preset's step
takes ~10x as long as in fp32. `auto` (the CPU presets' and embedded probe protocols' default) is
bf16 where native and fp32 elsewhere; `bf16` and `fp32` are taken as asked (bf16 with a warning
where emulated). The requested setting is what names a run (its training hash), the resolved one is
recorded beside it (docs/decisions.md: a run moved to another machine is found, not rerun, and
keeps the precision it started with).

To see what `auto` does on a machine without native bf16, point NEXTVID_CPUINFO at a copy of
/proc/cpuinfo without the flags (the tests do): `NEXTVID_CPUINFO=/path/to/cpuinfo nextvid config
--preset tiny`. A oneDNN ISA cap below AVX512_CORE_BF16 (`ONEDNN_MAX_CPU_ISA=AVX2`) also makes bf16
emulated on a CPU that has the flags (measured: the tiny step 0.11x fp32), and counts as not native.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Literal, Optional

import torch

log = logging.getLogger(__name__)

Precision = Literal["auto", "bf16", "fp32"]
CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
CPUINFO_ENV = "NEXTVID_CPUINFO"
ISA_CAP_ENV = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")
# oneDNN ISA names (a cap's value) at or above the first with native bf16 dot products
ONEDNN_BF16_ISAS = ("AVX512_CORE_BF16", "AVX512_CORE_FP16", "AVX512_CORE_AMX", "AVX10", "ALL", "DEFAULT")


def cpuinfo_path() -> Path:
    """/proc/cpuinfo, or the file NEXTVID_CPUINFO names (to act as another machine)."""
    return Path(os.environ.get(CPUINFO_ENV) or "/proc/cpuinfo")


def native_bf16(device: torch.device, cpuinfo: str | Path | None = None) -> bool:
    """CUDA: the GPU's own answer. CPU: AVX512-BF16 or AMX-BF16 in the kernel's CPU flags (oneDNN
    emulates bf16 without them), and oneDNN not capped below them (`isa_cap`); unknown (no cpuinfo
    file) counts as native, so nothing is claimed."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if isa_cap() is not None:
        return False
    try:
        flags = Path(cpuinfo or cpuinfo_path()).read_text()
    except OSError:
        return True
    return any(flag in flags.split() for flag in CPU_BF16_FLAGS)


def isa_cap() -> str | None:
    """The `ONEDNN_MAX_CPU_ISA=...` setting when it caps oneDNN below native bf16, else None."""
    for name in ISA_CAP_ENV:
        value = os.environ.get(name, "").strip().upper()
        if value:
            return None if value.startswith(ONEDNN_BF16_ISAS) else f"{name}={value}"
    return None


def why_not_native(device: torch.device) -> str:
    """One phrase for logs and benchmark output: why bf16 would be emulated on `device`."""
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} does not support bf16"
    if isa_cap() is not None:
        return f"{isa_cap()} caps oneDNN below AVX512_CORE_BF16: torch emulates bf16, slower than fp32"
    return (
        f"this CPU has neither {' nor '.join(CPU_BF16_FLAGS)} ({cpuinfo_path()}): torch emulates bf16, slower than fp32"
    )


def resolve(requested: Precision, device: torch.device, setting: str = "precision") -> Literal["bf16", "fp32"]:
    """The precision a run computes in: `auto` -> bf16 where native, fp32 elsewhere; `bf16`/`fp32` as
    asked (bf16 with a warning naming `setting` where it would be emulated)."""
    if requested not in ("auto", "bf16", "fp32"):
        raise ValueError(f"{setting}: {requested!r} is not one of auto, bf16, fp32")
    native = native_bf16(device)
    if requested == "auto":
        resolved = "bf16" if native else "fp32"
        log.info(
            "%s auto -> %s on this %s%s",
            setting,
            resolved,
            device.type,
            "" if native else f" ({why_not_native(device)})",
        )
        return resolved
    if requested == "bf16" and not native:
        log.warning("%s is bf16 but %s; %s=auto or fp32 would be faster here", setting, why_not_native(device), setting)
    return requested


def keep(
    recorded: str, requested: Precision, device: torch.device, setting: str = "precision"
) -> Literal["bf16", "fp32"]:
    """A resumed run computes in the precision it started with (`recorded`, from its checkpoint),
    whatever this machine would resolve `requested` to: never two precisions in one run."""
    if recorded not in ("bf16", "fp32"):
        raise ValueError(f"recorded precision {recorded!r} is not bf16 or fp32")
    if requested != "auto" and requested != recorded:
        raise ValueError(f"{setting} is {requested} but the run was started in {recorded}")
    if recorded == "bf16" and not native_bf16(device):
        log.warning(
            "this run started in bf16 and resumes in bf16, but %s; it will be slower here (a run never mixes precisions: "
            "to train in fp32, start a new run with %s=fp32)",
            why_not_native(device),
            setting,
        )
    return recorded  # type: ignore[return-value]


def describe(requested: str, resolved: str, device: torch.device) -> dict:
    """What a run records: asked, used, and whether bf16 is native where it ran."""
    return {"requested": requested, "resolved": resolved, "bf16_native": native_bf16(device), "device": device.type}


def autocast(device: torch.device, precision: Optional[str]):
    """torch.autocast for a resolved precision: bf16 autocast, or a disabled context for fp32."""
    if precision not in ("bf16", "fp32"):
        raise ValueError(f"autocast: precision {precision!r} is not resolved (bf16 or fp32)")
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")
