"""`train.tensorboard: true`: the metrics.csv scalars as TensorBoard events in <run>/tensorboard/,
on rank 0, one value per (tag, step) across an interrupted and resumed run."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from nextvid.config import merge
from nextvid.presets import get_preset
from nextvid.train.loop import Trainer
from nextvid.train.metrics import COLUMNS, TensorBoardLog, read_metrics

sys.path.insert(0, str(Path(__file__).parent))
from clips import DriftingPatterns  # noqa: E402

pytest.importorskip("tensorboard")
pytestmark = pytest.mark.usefixtures("single_thread")


def events(run_dir: Path) -> dict[str, dict[int, float]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"scalars": 0})
    acc.Reload()
    out = {}
    for tag in acc.Tags()["scalars"]:
        values = acc.Scalars(tag)
        assert len({v.step for v in values}) == len(values), f"{tag}: a step logged twice"
        out[tag] = {v.step: v.value for v in values}
    return out


def csv_values(run_dir: Path) -> dict[str, dict[int, float]]:
    out: dict[str, dict[int, float]] = {}
    for row in read_metrics(run_dir / "metrics.csv"):
        for column, tag in TensorBoardLog.TAGS.items():
            if row[column] != "":
                out.setdefault(tag, {})[int(row["step"])] = float(row[column])
    return out


def nano(**train):
    return merge(
        get_preset("nano"),
        {
            "data": {"num_workers": 0},
            "schedule": {"total_steps": 10},
            "train": {"log_every": 2, "checkpoint_every": 4, "tensorboard": True, **train},
        },
    )


def test_every_csv_column_has_a_tag():
    assert set(TensorBoardLog.TAGS) == set(COLUMNS) - {"step", "stage"}


def test_event_file_holds_the_metrics_csv_scalars(tmp_path):
    Trainer(nano(), tmp_path, DriftingPatterns).run()
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    got, want = events(tmp_path), csv_values(tmp_path)
    for tag in (
        "loss/loss",
        "loss/flow",
        "loss/align",
        "schedule/lr",
        "schedule/grad_norm",
        "speed/clips_per_s",
        "collapse/feature_std",
        "collapse/effective_rank",
    ):
        assert tag in got, sorted(got)
    assert got.keys() == want.keys()
    for tag in want:
        assert got[tag].keys() == want[tag].keys(), tag
        for step, value in want[tag].items():  # the CSV keeps 6 significant digits, events float32
            assert got[tag][step] == pytest.approx(value, rel=1e-5, abs=1e-12), (tag, step)


def test_resumed_run_logs_each_step_once(tmp_path):
    """Killed after logging step 6 but with its latest checkpoint at step 4: the resumed process
    purges the events past step 4 and logs them again, once, as metrics.csv does."""
    from nextvid.train import checkpoint as ckpt

    cfg = nano(keep_steps=[4])
    Trainer(cfg, tmp_path, DriftingPatterns).run(stop_at=6)
    kept = tmp_path / "checkpoints" / ckpt.step_name(4)
    (tmp_path / "checkpoints" / ckpt.LATEST).write_bytes(kept.read_bytes())  # as if killed before step 6's checkpoint
    assert 6 in events(tmp_path)["loss/loss"]
    Trainer(cfg, tmp_path, DriftingPatterns).run()
    got, want = events(tmp_path), csv_values(tmp_path)  # events() fails on a step logged twice
    assert got.keys() == want.keys() and got["loss/loss"].keys() == want["loss/loss"].keys() >= {4, 6, 10}
    assert got["loss/loss"] == pytest.approx(want["loss/loss"], rel=1e-5)


def test_off_by_default_writes_nothing(tmp_path):
    Trainer(nano(tensorboard=False), tmp_path, DriftingPatterns).run()
    assert not (tmp_path / "tensorboard").exists()
