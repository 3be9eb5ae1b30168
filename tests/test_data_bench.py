"""`nextvid bench data` and `nextvid data cache` end to end, on a few small generated videos."""

from __future__ import annotations

import json

import torch

from nextvid.cli import main
from nextvid.data.shards import INDEX, ShardSource


def test_bench_data_reports_three_rates_from_one_run(tmp_path, capsys):
    out = tmp_path / "bench" / "data.json"
    torch.set_num_threads(2)  # the command decodes on one thread and gives the caller its count back
    rc = main(
        [
            "bench",
            "data",
            "--videos",
            "2",
            "--video-size",
            "64",
            "--video-frames",
            "30",
            "--frames",
            "4",
            "--frame-step",
            "2",
            "--resolution",
            "32",
            "--clips",
            "8",
            "--batch-size",
            "4",
            "--out",
            str(out),
            "--json",
        ]
    )
    assert rc == 0
    printed = capsys.readouterr().out.strip().splitlines()
    result = json.loads(printed[-1])  # the result, one JSON line, last
    assert result == json.loads(out.read_text())
    for key in ("raw_clips_per_s", "streaming_clips_per_s", "cached_clips_per_s"):
        assert result[key] > 0
    assert result["streaming_vs_raw"] == result["streaming_clips_per_s"] / result["raw_clips_per_s"]
    assert result["cached_vs_raw"] == result["cached_clips_per_s"] / result["raw_clips_per_s"]
    assert result["config"]["videos"] == 2 and result["environment"]["cpus"] >= 1
    assert any(line.startswith("cached") for line in printed)  # the table
    assert torch.get_num_threads() == 2


def test_data_cache_cli(tmp_path, capsys):
    from nextvid.bench.data import write_videos
    from nextvid.data.converters import from_folder

    write_videos(tmp_path / "v", 3, 32, 20, seed=0)
    from_folder(tmp_path / "v").write(tmp_path / "m.tsv")
    rc = main(
        ["data", "cache", str(tmp_path / "m.tsv"), "--out", str(tmp_path / "cache"), "--step", "2", "--workers", "2"]
    )
    assert rc == 0 and "3 samples, 30 frames of 32x32" in capsys.readouterr().out
    src = ShardSource(tmp_path / "cache")
    assert len(src) == 3 and src.step == 2 and (tmp_path / "cache" / INDEX).is_file()
