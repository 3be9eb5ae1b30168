"""How the CPU benchmarks time (`nextvid bench train`, `bench encoder`; `bench gpu`'s CPU matrix
product): the thread budget, variants interleaved round by round so a change of load hits them alike,
the reference matrix product an MFU divides by, and the machine facts a timing depends on (bf16
support, load average).
"""

from __future__ import annotations

import os
import statistics
import time
from typing import Callable

DTYPES = ("fp32", "bf16")


def add_timing_arguments(parser, matmul: bool = True) -> None:
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch intra-op threads (default %(default)s: on 2 cores shared with other jobs, 2 threads "
        "spin against each other and run several times slower; see docs/performance.md)",
    )
    if matmul:
        parser.add_argument(
            "--matmul-size",
            type=int,
            default=2048,
            help="side of the reference square matrix product (default %(default)s)",
        )
    parser.add_argument(
        "--dtypes", default=",".join(DTYPES), help="comma-separated subset of fp32,bf16 (default %(default)s)"
    )


def parse_dtypes(text: str) -> list[str]:
    dtypes = [d.strip() for d in text.split(",") if d.strip()]
    bad = [d for d in dtypes if d not in DTYPES]
    if bad or not dtypes:
        raise SystemExit(f"nextvid bench: --dtypes must be a subset of {','.join(DTYPES)}, got {text!r}")
    return dtypes


def torch_dtype(name: str):
    import torch

    return {"fp32": torch.float32, "bf16": torch.bfloat16}[name]


class threads:
    """Context manager: run with `n` torch intra-op threads, restore the previous count afterwards."""

    def __init__(self, n: int):
        self.n = n

    def __enter__(self):
        import torch

        self.before = torch.get_num_threads()
        torch.set_num_threads(self.n)

    def __exit__(self, *exc):
        import torch

        torch.set_num_threads(self.before)


def cpu_flags() -> dict:
    """The CPU's bf16 support: AVX512-BF16 (dot products) and AMX-BF16 (tiles) make bf16 matrix
    products faster than fp32; without them bf16 is emulated and slower. Read from the file
    nextvid.train.precision reads (NEXTVID_CPUINFO fakes another machine)."""
    from nextvid.train.precision import cpuinfo_path

    flags: set[str] = set()
    model = None
    try:
        lines = cpuinfo_path().read_text().splitlines()
    except OSError:
        lines = []
    for line in lines:
        if line.startswith("flags") and not flags:
            flags = set(line.split(":", 1)[1].split())
        elif line.startswith("model name") and model is None:
            model = line.split(":", 1)[1].strip()
    return {"model": model, **{f: f in flags for f in ("avx512f", "avx512_bf16", "amx_bf16", "amx_tile")}}


def bf16_verdict(result: dict, dtypes: list[str]) -> bool:
    """Record whether this CPU runs bf16 natively; where it does not, a `bf16_note` saying why the
    bf16 figures that compare against a peak (MFU, speed-ups) are withheld. Returns the answer."""
    import torch

    from nextvid.train.precision import native_bf16, why_not_native

    cpu = torch.device("cpu")
    result["bf16_native"] = native = native_bf16(cpu)
    if "bf16" in dtypes and not native:
        result["bf16_note"] = (
            f"bf16 is emulated here ({why_not_native(cpu)}): no bf16 MFU or speed-up is given; "
            "the bf16 times show what a bf16 run would cost on this machine"
        )
    return native


def interleaved(
    variants: dict[str, Callable[[], None]], rounds: int, reps: dict[str, int]
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Wall-clock and process CPU seconds per call of every variant: each round times `reps[name]`
    calls of each variant, the variant order reversed every other round, so a change of load hits
    every variant alike. CPU time does not count the time other jobs hold the cores, so its ratios
    stay meaningful at loads where wall-clock ratios scatter."""
    wall: dict[str, list[float]] = {name: [] for name in variants}
    cpu: dict[str, list[float]] = {name: [] for name in variants}
    names = list(variants)
    for r in range(rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            fn = variants[name]
            for _ in range(reps[name]):
                t0, c0 = time.perf_counter(), time.process_time()
                fn()
                wall[name].append(time.perf_counter() - t0)
                cpu[name].append(time.process_time() - c0)
    return wall, cpu


def matmul(dtype, n: int) -> Callable[[], None]:
    """One n x n x n matrix product in `dtype` (2 n^3 FLOPs)."""
    import torch

    g = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=g).to(dtype)
    b = torch.randn(n, n, generator=g).to(dtype)
    out = torch.empty(n, n, dtype=dtype)

    def run() -> None:
        torch.mm(a, b, out=out)

    run()  # first call: allocation, oneDNN/MKL kernel selection
    return run


def matmul_reps(n: int) -> int:
    """Products per round: about 3e10 FLOPs (a quarter of a second on one modern core in fp32)."""
    return max(2, round(3e10 / (2 * n**3)))


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None
