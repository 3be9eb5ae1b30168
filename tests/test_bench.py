"""`nextvid bench train | encoder | paper` run end to end on the nano preset and report their keys.
Benchmarks are not tests: nothing here asserts a time or a ratio's size, only that the numbers are
there, consistent with each other and written where promised."""

from __future__ import annotations

import json
import math

import pytest
import torch

from nextvid.bench.train import count_step_flops, flop_counter, setup_step
from nextvid.cli import main
from nextvid.presets import get_preset

pytestmark = pytest.mark.usefixtures("single_thread")  # see conftest.py


def run_bench(argv: list[str], out, capsys) -> dict:
    rc = main(["bench", *argv, "--out", str(out), "--json"])
    assert rc == 0
    printed = capsys.readouterr().out.strip().splitlines()
    result = json.loads(printed[-1])  # the result, one JSON line, last
    assert result == json.loads(out.read_text())
    assert len(printed) > 2  # a table came first
    return result


def test_bench_train_reports_mfu_and_bf16_speedup(tmp_path, capsys, native_bf16_cpu):
    r = run_bench(
        ["train", "--preset", "nano", "--steps", "1", "--rounds", "2", "--matmul-size", "256"],
        tmp_path / "train.json",
        capsys,
    )
    assert r["benchmark"] == "train" and r["preset"] == "nano" and r["threads"] == 1
    for d in ("fp32", "bf16"):
        assert 0 < r[f"mfu_{d}"] == pytest.approx(r["flops_per_step"] / r[d]["step_s"] / r[d]["matmul_flops_per_s"])
        assert len(r[d]["step_s_all"]) == 2 and r[d]["clips_per_s"] == pytest.approx(
            r["batch_size"] * r[d]["steps_per_s"]
        )
    assert r["bf16_speedup"] == pytest.approx(r["fp32"]["step_s"] / r["bf16"]["step_s"])
    # the same figures on process CPU time (robust to other jobs holding the cores)
    assert r["cpu_time"]["mfu_fp32"] > 0 and r["cpu_time"]["mfu_bf16"] > 0 and r["cpu_time"]["bf16_speedup"] > 0
    assert r["flops_per_step"] > 0 and r["environment"]["cpus"] >= 1 and "avx512_bf16" in r["cpu"]
    assert r["bf16_native"] is True and "bf16_note" not in r


def test_bench_train_gives_no_bf16_mfu_where_bf16_is_emulated(tmp_path, capsys, no_native_bf16):
    r = run_bench(
        ["train", "--preset", "nano", "--steps", "1", "--rounds", "1", "--matmul-size", "256"],
        tmp_path / "train.json",
        capsys,
    )
    assert r["bf16_native"] is False and r["cpu"]["avx512_bf16"] is False and "emulated" in r["bf16_note"]
    assert r["mfu_bf16"] is None and r["cpu_time"]["mfu_bf16"] is None
    assert r["bf16_speedup"] is None and r["bf16_matmul_speedup"] is None and r["cpu_time"]["bf16_speedup"] is None
    assert r["mfu_fp32"] > 0 and r["bf16"]["step_s"] > 0  # fp32 figures stay; the bf16 step is still timed
    table = tmp_path / "table.txt"
    from nextvid.bench.train import table as render

    table.write_text(render(r))
    assert (
        "bf16 native: False" in table.read_text() and "%" not in table.read_text().splitlines()[4]
    )  # the bf16 row: no MFU
    with pytest.raises(SystemExit, match="no bf16 MFU"):  # bench paper needs a real bf16 MFU
        main(["bench", "paper", "--presets", "nano", "--train-result", str(tmp_path / "train.json")])


def test_bench_train_counts_attention_flops():
    """torch's flop_counter knows only the CUDA SDPA kernels; ours adds the CPU flash kernels, so the
    count on CPU equals the meta-device count (where SDPA decomposes into counted matrix products)."""
    cfg = get_preset("nano")
    model, _, video, masks, seeds, p = setup_step(cfg, step=0, batch_size=2)
    cpu = count_step_flops(model, video, masks, p, seeds)
    q = torch.randn(2, 3, 16, 8, requires_grad=True)
    counter = flop_counter()
    with counter:
        torch.nn.functional.scaled_dot_product_attention(q, q, q).sum().backward()
    assert counter.get_total_flops() == 3 * 2 * (
        2 * 2 * 3 * 16 * 16 * 8
    )  # forward 2 products, backward 4 (model FLOPs)
    with torch.device("meta"):
        meta_model = type(model)(cfg)
    meta = count_step_flops(meta_model, video.to("meta"), [m.to("meta") for m in masks], p, None)
    assert cpu == meta


def test_bench_encoder_reports_ratio_vs_timm(tmp_path, capsys, native_bf16_cpu):
    r = run_bench(["encoder", "--preset", "nano", "--reps", "1", "--rounds", "1"], tmp_path / "encoder.json", capsys)
    assert r["tokens"] == 3 * 16 and r["width"] == 64
    assert r["ratio_vs_timm"] == pytest.approx(r["fp32"]["timm"]["s"] / r["fp32"]["ours"]["s"])
    assert r["ratio_vs_timm_bf16"] > 0 and r["causal_mask_cost"] > 0 and r["cpu_time"]["ratio_vs_timm"] > 0
    # timm's twin differs only by its absolute position embedding
    assert r["params_timm"] - r["params_ours"] == r["tokens"] * r["width"]
    assert r["bf16_native"] is True


def test_bench_encoder_withholds_bf16_ratios_where_bf16_is_emulated(tmp_path, capsys, no_native_bf16):
    r = run_bench(["encoder", "--preset", "nano", "--reps", "1", "--rounds", "1"], tmp_path / "encoder.json", capsys)
    assert r["bf16_native"] is False and "emulated" in r["bf16_note"]
    assert (
        r["ratio_vs_timm_bf16"] is None
        and r["causal_mask_cost_bf16"] is None
        and r["cpu_time"]["ratio_vs_timm_bf16"] is None
    )
    assert r["ratio_vs_timm"] > 0 and r["bf16"]["ours"]["s"] > 0


def test_bench_paper_reports_implied_mfu_and_our_hours(tmp_path, capsys):
    train = tmp_path / "train.json"
    train.write_text(json.dumps({"mfu_bf16": 0.25, "preset": "nano"}))
    data = tmp_path / "data.json"
    data.write_text(
        json.dumps({"streaming_clips_per_s": 6.0, "config": {"workers": 2, "frames": 16, "resolution": 224}})
    )
    r = run_bench(
        [
            "paper",
            "--presets",
            "nano",
            "--train-result",
            str(train),
            "--gpu-result",
            str(tmp_path / "no-gpu.json"),
            "--data-result",
            str(data),
        ],
        tmp_path / "paper.json",
        capsys,
    )
    run = r["runs"]["nano"]
    assert [s["stage"] for s in run["stages"]] == ["warmup", "stable1", "stable2", "cooldown"]
    assert sum(s["steps"] for s in run["stages"]) == run["total_steps"]
    assert run["total_flops"] == sum(s["steps"] * s["flops_per_step"] for s in run["stages"])
    # more tau draws and more frames cost more per clip
    warmup, stable2, cooldown = run["stages"][0], run["stages"][2], run["stages"][3]
    assert (
        warmup["flops_per_clip"] > stable2["flops_per_clip"] and cooldown["flops_per_clip"] > stable2["flops_per_clip"]
    )
    rate, mfu = r["h100_bf16_flops_per_s"], r["our_mfu_bf16"]["nano"]
    assert mfu == 0.25 and "H100" in r["h100_rate_source"]
    assert r["paper_implied_mfu"]["nano"] == pytest.approx(run["total_flops"] / (146 * 3600 * 96 * rate))
    assert r["our_hours_estimate"]["nano"] == pytest.approx(run["total_flops"] / (96 * rate * mfu) / 3600)
    # the loader must deliver each GPU its share of a step's clips in the step's time, at 3 clips/s per core
    for stage, demand in zip(run["stages"], r["loader"]["nano"]):
        step_s = stage["flops_per_step"] / (96 * rate * mfu)
        assert demand["clips_per_s_per_gpu"] == pytest.approx(stage["batch_size"] / 96 / step_s)
        assert demand["decode_workers_per_gpu"] == math.ceil(demand["clips_per_s_per_gpu"] / 3.0)
    # a GPU measurement of the preset wins over the CPU one
    gpu = tmp_path / "gpu.json"
    gpu.write_text(
        json.dumps(
            {
                "device": "NVIDIA H100",
                "cases": [
                    {"preset": "nano", "kernel": "flex", "mfu": 0.4},
                    {"preset": "nano", "kernel": "sdpa", "error": "out of memory"},
                ],
            }
        )
    )
    r = run_bench(
        ["paper", "--presets", "nano", "--train-result", str(train), "--gpu-result", str(gpu)],
        tmp_path / "paper.json",
        capsys,
    )
    assert r["our_mfu_bf16"]["nano"] == 0.4 and "bench gpu" in r["our_mfu_source"]["nano"]
    # without a train result the command says what to run
    with pytest.raises(SystemExit, match="nextvid bench train"):
        main(
            [
                "bench",
                "paper",
                "--presets",
                "nano",
                "--train-result",
                str(tmp_path / "missing.json"),
                "--gpu-result",
                str(tmp_path / "none.json"),
                "--out",
                str(tmp_path / "p.json"),
            ]
        )


@pytest.mark.skipif(torch.cuda.is_available(), reason="the skip path needs a machine without CUDA")
def test_bench_gpu_skips_cleanly_without_cuda(tmp_path, capsys):
    assert main(["bench", "gpu", "--out", str(tmp_path / "gpu.json")]) == 0
    assert "skipped" in json.loads((tmp_path / "gpu.json").read_text())


def test_bench_gpu_code_path_runs_on_cpu(tmp_path, capsys):
    """The GPU check's step, FLOP count and memory estimate on a CPU preset: what a GPU run executes,
    minus the CUDA timers and memory statistics."""
    r = run_bench(
        [
            "gpu",
            "--device",
            "cpu",
            "--presets",
            "nano",
            "--gpus",
            "1",
            "--steps",
            "1",
            "--warmup",
            "0",
            "--kernels",
            "sdpa",
        ],
        tmp_path / "gpu.json",
        capsys,
    )
    (case,) = r["cases"]
    assert "error" not in case, case
    assert case["preset"] == "nano" and case["batch_per_gpu"] == 4 and case["tau_draws"] == 4
    assert case["flops_per_step"] > 0 and case["step_s"] > 0 and 0 < case["mfu"] < 1 and case["estimate_peak_gib"] > 0
