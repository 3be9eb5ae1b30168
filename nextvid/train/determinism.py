"""`train.deterministic` for the length of a run, not for the rest of the process.

torch.use_deterministic_algorithms is process-wide: a Trainer that switched it on and left it on
changed every later computation of the process (tests, a probe run after pretraining in one
interpreter), where ops without a deterministic kernel raise and others slow down.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch


@contextlib.contextmanager
def deterministic_algorithms(enabled: bool) -> Iterator[None]:
    """Deterministic kernels inside the block when `enabled`; the caller's setting restored after it."""
    if not enabled:
        yield
        return
    before = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before, warn_only=warn_only)
