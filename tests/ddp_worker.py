"""One rank of the two-process gloo DDP test: `python ddp_worker.py OUT` with RANK/WORLD_SIZE set."""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
import json  # noqa: E402

from clips import DriftingPatterns  # noqa: E402

from nextvid.config import Config, from_dict  # noqa: E402
from nextvid.train import distributed  # noqa: E402
from nextvid.train.loop import Trainer  # noqa: E402

torch.set_num_threads(1)
cfg = from_dict(Config, json.loads(Path(sys.argv[2]).read_text()))
env = distributed.init("cpu")
try:
    Trainer(cfg, sys.argv[1], DriftingPatterns, env).run()
finally:
    distributed.shutdown()
