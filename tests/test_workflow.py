"""The Snakemake workflow (Snakefile, workflow/): lint, formatting, config validation at start-up,
the DAG of every experiment config, the rerun policy and interrupted jobs.

Nothing here trains or probes. The rerun-policy tests run the smoke DAG once with a stand-in
`nextvid` (tests/workflow_stub.py, which writes each command's promised files) in a temporary
directory holding a copy of the Snakefile, workflow/ and the package sources, so Snakemake records
real metadata and the tests may edit package files without touching the repository's."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import tomllib
import yaml

ROOT = Path(__file__).resolve().parents[1]
STUB = Path(__file__).with_name("workflow_stub.py")
SMOKE = "workflow/config/smoke.yaml"
PROFILE = "workflow/profiles/local"
SMOKE_RUNS = len(yaml.safe_load((ROOT / SMOKE).read_text())["experiments"]["smoke"]["variants"])  # 1 seed
SMOKE_PROBES = SMOKE_RUNS * 2 * 4  # 2 kept steps x 4 benchmarks
SMOKE_REFERENCES = 3 * 4  # (random, pixels, ceiling) x 4 benchmarks


def snakemake(*args, cwd, env=None, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "snakemake", *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def job_counts(out: str) -> dict[str, int]:
    """Rule -> jobs from the 'Job stats' table of a dry run; {} when nothing is to be done."""
    if "Nothing to be done" in out:
        return {}
    table = out[out.index("Job stats:") :]
    counts = {}
    for line in table.splitlines()[3:]:
        m = re.fullmatch(r"(\w+)\s+(\d+)", line.strip())
        if not m:
            break
        counts[m[1]] = int(m[2])
    counts.pop("total", None)
    return counts


def copy_sources(dest: Path) -> Path:
    """The workflow and the package sources, as the workflow reads them (the code-trigger inputs)."""
    dest.mkdir(parents=True)
    shutil.copy2(ROOT / "Snakefile", dest / "Snakefile")
    for name in ("workflow", "envs", "nextvid"):
        shutil.copytree(ROOT / name, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return dest


class Workdir:
    """A working directory with its own copy of the sources in ./repo (relative code paths, so a
    copy of the whole directory keeps its metadata valid) and a stub `nextvid` on PATH."""

    def __init__(self, path: Path):
        self.path = path
        self.repo = path / "repo"
        self.config = self.repo / SMOKE
        bin_dir = path / "bin"
        bin_dir.mkdir(exist_ok=True)
        shim = bin_dir / "nextvid"
        shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{STUB}" "$@"\n')
        shim.chmod(0o755)
        self.env = {
            **os.environ,
            "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            "NEXTVID_STUB_LOG": str(path / "calls.log"),
        }

    def args(self, *extra, profile=True):
        base = ["--snakefile", self.repo / "Snakefile", "--configfile", self.config]
        return base + (["--profile", self.repo / PROFILE] if profile else []) + list(extra)

    def run(self, *extra, profile=True, env=None, timeout=300):
        return snakemake(
            *self.args(*extra, profile=profile), "--cores", "2", cwd=self.path, env=env or self.env, timeout=timeout
        )

    def dry_run(self, *extra, profile=True):
        return snakemake(*self.args("-n", *extra, profile=profile), cwd=self.path, env=self.env)

    def edit_config(self, change) -> None:
        cfg = yaml.safe_load(self.config.read_text())
        change(cfg)
        self.config.write_text(yaml.safe_dump(cfg, sort_keys=False))


@pytest.fixture(scope="module")
def finished_tree(tmp_path_factory) -> Path:
    """The smoke DAG run to completion with the stub: every output present, with metadata."""
    path = tmp_path_factory.mktemp("finished")
    copy_sources(path / "repo")
    wd = Workdir(path)
    done = wd.run()
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    again = wd.dry_run()
    assert again.returncode == 0 and job_counts(again.stdout + again.stderr) == {}, again.stdout[-2000:]
    return path


@pytest.fixture
def tree(finished_tree, tmp_path) -> Workdir:
    """A private copy of the finished tree (mtimes, permissions and .snakemake metadata kept)."""
    dest = tmp_path / "w"
    shutil.copytree(finished_tree, dest, symlinks=True)
    return Workdir(dest)


def edit_source(wd: Workdir, module: str) -> None:
    path = wd.repo / module
    path.write_text(path.read_text() + "\n# changed\n")


# --- static checks -------------------------------------------------------------------------------


def test_lint_reports_nothing(tmp_path):
    for config in ("workflow/config/embedded.yaml", SMOKE):
        out = snakemake("--snakefile", ROOT / "Snakefile", "--configfile", ROOT / config, "--lint", cwd=tmp_path)
        assert out.returncode == 0, out.stdout + out.stderr
        assert "Congratulations" in out.stdout + out.stderr


def test_snakefmt_check():
    snakefmt = Path(sys.executable).with_name("snakefmt")
    out = subprocess.run([snakefmt, "--check", "Snakefile", "workflow"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_conda_env_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = set(project["dependencies"])
    for extra in ("workflow", "report", "vae", "tensorboard"):
        wanted |= {d for d in project["optional-dependencies"][extra] if not d.startswith("snakemake")}
    env = yaml.safe_load((ROOT / "envs/nextvid.yaml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert set(pip) == wanted
    assert (ROOT / "envs/nextvid.post-deploy.sh").is_file()  # installs the package itself


# --- the DAG of every experiment config ----------------------------------------------------------


def dry_counts(config: Path, cwd: Path) -> dict[str, int]:
    out = snakemake("--snakefile", ROOT / "Snakefile", "--configfile", config, "-n", cwd=cwd)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return job_counts(out.stdout)


def expected_counts(config: dict) -> dict[str, int]:
    """Jobs per rule as nextvid.plan's target lists imply them, on the config as the workflow validates it."""
    from plans import validated_plan

    from nextvid import layout
    from nextvid.catalog import REFERENCE_VARIANTS

    plan = validated_plan(config)
    runs = [f for name in plan.experiments for f in plan.run_done_files(name)]
    probes = [
        layout.parse_probe_metrics(f).variant for name in plan.experiments for f in plan.probe_metrics_files(name)
    ]
    refs = sum(v in REFERENCE_VARIANTS for v in probes)
    return {
        "pretrain": len(runs),
        "probe": len(probes) - refs,
        "probe_reference": refs,
        "vae": len(plan.vae_experiments()),
        "report_figure": sum(len(plan.experiment_figures(name)) for name in plan.experiments),
    }


@pytest.mark.parametrize("name", ["embedded", "smoke", "grid"])
def test_every_embedded_config_builds_its_dag(name, tmp_path):
    path = ROOT / f"workflow/config/{name}.yaml"
    counts = dry_counts(path, tmp_path)
    expected = expected_counts(yaml.safe_load(path.read_text()))
    assert {k: counts.get(k, 0) for k in expected} == expected
    assert counts["data_embedded"] == 1 and counts["report_table"] == 7
    assert counts.get("vae", 0) == (name == "grid")  # grid.yaml has target_vae


def test_smoke_dag_builds_tables_4_and_5_from_the_simplified_model():
    """Every paper row of Tables 4 and 5 has a variant in the smoke DAG, and each is the simplified model."""
    from nextvid.experiments import VARIANTS
    from nextvid.report.paper_numbers import ABLATIONS

    variants = yaml.safe_load((ROOT / SMOKE).read_text())["experiments"]["smoke"]["variants"]
    for table in ("table4_masking", "table5_decoder"):
        rows = {VARIANTS[v].tables[table]: v for v in variants if table in VARIANTS[v].tables}
        assert set(ABLATIONS[table]) <= set(rows), table
        assert all(VARIANTS[rows[key]].claims.base == "simplified" for key in ABLATIONS[table]), table


def test_paper_ablations_stop_the_full_schedule_early():
    """paper.yaml's ablations: the 132K schedule stopped at 15K (and 30K) steps, as `nextvid config
    --schedule` shows: 4 tau draws at every step and stage 1's LR that of the 132K run."""
    from nextvid import config as nextvid_config
    from nextvid.experiments import budget_overrides
    from nextvid.train.schedule import plan

    experiments = yaml.safe_load((ROOT / "workflow/config/paper.yaml").read_text())["experiments"]
    full = nextvid_config.load("vit_l").schedule
    for name, stop in (("paper_ablations", 15_000), ("paper_ablations_30k", 30_000)):
        pre = experiments[name]["pretrain"]
        sets = budget_overrides(pre["total_steps"], pre.get("stop_at"), pre.get("keep_steps", []))
        sched = nextvid_config.load(experiments[name]["preset"], None, sets).schedule
        assert sched.end_step == stop and sched.total_steps == 132_000
        for step in range(stop):
            p, q = plan(sched, step), plan(full, step)
            assert p.tau_draws == 4 and p == q, step
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "nextvid",
                "config",
                "--preset",
                "vit_l",
                *[a for s in sets for a in ("--set", s)],
                "--schedule",
            ],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        assert out.returncode == 0, out.stderr
        lines = out.stdout.splitlines()
        assert lines[0] == f"# {stop} of the 132000-step schedule (stopped early)"
        rows = [line.split() for line in lines[2:]]
        assert rows[0][:6] == ["warmup", "[0,", "12000)", "0.0001", "->", "0.0005"] and rows[0][7:9] == ["main", "4"]
        assert rows[-1][:3] == ["stable1", "[12000,", f"{stop})"] and all(r[-3] == "4" for r in rows)


def test_vae_target_runs_read_the_workflow_trained_vae(tmp_path):
    """A `vae`-target variant: the vae rule trains the experiment's VAE on the embedded mixture, and
    the variant's runs depend on it and get its directory, statistics and latent shape."""
    cfg = smoke_with(
        lambda c: c["experiments"]["smoke"].update(variants=["nextvid", "target_vae"], vae={"set": ["steps=500"]})
    )
    (tmp_path / "vae.yaml").write_text(yaml.safe_dump(cfg))
    out = snakemake(
        "--snakefile",
        ROOT / "Snakefile",
        "--configfile",
        tmp_path / "vae.yaml",
        "-n",
        "-p",
        "results/pretrain/smoke/target_vae/seed0/done.json",
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert job_counts(out.stdout) == {"data_embedded": 1, "vae": 1, "pretrain": 1}
    text = out.stdout
    assert (
        "nextvid vae train --mixture results/data/embedded_smoke/mixture.json --val-manifest "
        "results/data/embedded_smoke/images/val.tsv results/data/embedded_smoke/motion/val.tsv --set steps=500"
    ) in text
    pretrain = text[text.index("rule pretrain:") :]
    assert "results/vae/smoke/stats.json" in pretrain.split("output:")[0]  # an input of the run
    for s in (
        "target.kind=vae",
        "target.vae_path=results/vae/smoke",
        "target.vae_stats=results/vae/smoke/stats.json",
        "target.latent_channels=4",
        "target.latent_downsample=4",
    ):
        assert f"--set {s}" in pretrain


def test_paper_config_builds_its_dag_given_data_paths(tmp_path):
    """paper.yaml with its `/path/to/...` placeholders pointed at a fake data tree."""
    text = (ROOT / "workflow/config/paper.yaml").read_text().replace("/path/to", str(tmp_path / "data"))
    config = yaml.safe_load(text)
    for ds in config["data"]["datasets"].values():
        paths = [v for k, v in ds.items() if k in ("labels", "vocab")]
        paths += [v for split in ("train", "val") for v in ds.get(split, {}).values()]
        for p in map(Path, paths):
            if p.suffix:
                p.parent.mkdir(parents=True, exist_ok=True)
                p.touch()
            else:
                p.mkdir(parents=True, exist_ok=True)
    (tmp_path / "paper.yaml").write_text(text)
    counts = dry_counts(tmp_path / "paper.yaml", tmp_path)
    expected = expected_counts(config)
    assert expected["vae"] == 0  # paper_ablations' target_vae reads its own VA-VAE (pretrain.set)
    assert {k: counts.get(k, 0) for k in expected} == expected
    assert counts["data_convert"] == 10  # 4 benchmarks x (train, val) + 2 unlabelled corpora
    assert "data_embedded" not in counts


# --- config errors at start-up -------------------------------------------------------------------


def smoke_with(change):
    cfg = yaml.safe_load((ROOT / SMOKE).read_text())
    change(cfg)
    return cfg


CONFIG_ERRORS = {
    "unknown top-level key": (lambda c: c.update(experimentz={}), ["experimentz"]),
    "unknown nested key": (lambda c: c["experiments"]["smoke"]["pretrain"].update(totl_steps=5), ["totl_steps"]),
    "wrong type": (
        lambda c: c["experiments"]["smoke"]["pretrain"].update(total_steps="eight"),
        ["total_steps", "integer"],
    ),
    "wrong enum": (lambda c: c["data"]["embedded"].update(scale="huge"), ["scale", "huge"]),
    "unknown variant": (
        lambda c: c["experiments"]["smoke"]["variants"].append("nextvid_xl"),
        [f"variants.{SMOKE_RUNS}", "nextvid_xl"],
    ),
    "unknown nextvid key": (
        lambda c: c["experiments"]["smoke"]["pretrain"]["set"].append("model.encoder.dpth=3"),
        ["model.encoder.dpth"],
    ),
    "wrong nextvid type": (
        lambda c: c["experiments"]["smoke"]["pretrain"]["set"].append("model.encoder.depth=deep"),
        ["model.encoder.depth"],
    ),
    "negative learning rate": (
        lambda c: c["experiments"]["smoke"]["pretrain"]["set"].append("schedule.stages.0.lr_start=-0.1"),
        ["schedule.stages.0.lr_start", "> 0"],
    ),
    "YAML syntax error in an override": (
        lambda c: c["experiments"]["smoke"]["pretrain"]["set"].append("model.encoder.depth=[2"),
        ["model.encoder.depth=[2", "not valid YAML"],
    ),
    "probe betas of 1": (lambda c: c["experiments"]["smoke"]["probe"]["set"].append("betas=[0.9, 1.0]"), ["betas.1"]),
    "unknown probe key": (lambda c: c["experiments"]["smoke"]["probe"]["set"].append("epochz=3"), ["epochz"]),
    "variant undone by the experiment": (
        lambda c: c["experiments"]["smoke"]["pretrain"]["set"].append("masking.kind=multiblock"),
        ["pretrain.set", "masking.kind", "simplified_no_masking"],
    ),
    "probe step not kept": (lambda c: c["experiments"]["smoke"]["probe"].update(steps=[5]), ["probe.steps", "[5]"]),
    "unknown vae key": (lambda c: c["experiments"]["smoke"].update(vae={"set": ["stepz=3"]}), ["vae.set", "stepz"]),
    "vae key undone by the experiment": (
        lambda c: (
            c["experiments"]["smoke"]["variants"].append("target_vae"),
            c["experiments"]["smoke"]["pretrain"]["set"].append("target.latent_channels=8"),
        ),
        ["pretrain.set", "target.latent_channels"],
    ),
    "findings page outside the repository": (
        lambda c: c["experiments"]["smoke"]["report"].update(findings_doc="../findings.md"),
        ["report.findings_doc", "../findings.md"],
    ),
}


def test_findings_doc_is_the_published_findings_page(tmp_path):
    (tmp_path / "cfg.yaml").write_text(
        yaml.safe_dump(smoke_with(lambda c: c["experiments"]["smoke"]["report"].update(findings_doc="docs/f.md")))
    )
    out = snakemake(
        "--snakefile", ROOT / "Snakefile", "--configfile", tmp_path / "cfg.yaml", "-n", "-p", "all", cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "output: docs/f.md" in out.stdout and "input: results/findings/smoke/findings.md" in out.stdout
    assert job_counts(out.stdout)["publish_findings"] == 1


@pytest.mark.parametrize("case", sorted(CONFIG_ERRORS))
def test_bad_config_fails_at_start_naming_the_key(case, tmp_path):
    change, needles = CONFIG_ERRORS[case]
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(smoke_with(change)))
    out = snakemake("--snakefile", ROOT / "Snakefile", "--configfile", tmp_path / "bad.yaml", "-n", cwd=tmp_path)
    text = out.stdout + out.stderr
    assert out.returncode != 0
    assert "Building DAG" not in text  # stopped at start-up, before any job
    for needle in needles:
        assert needle in text, text[-2000:]


# --- the SLURM profile ---------------------------------------------------------------------------


# Rules that do compute go to SLURM; the rest stay on the submit host (pretrain submits its own jobs
# through submitit). tests/test_slurm.py checks the same split on a real cluster.
CLUSTER_RULES = {"data_embedded", "data_cache_mixture", "data_convert", "vae", "probe", "probe_reference"}
CLUSTER_RULES |= {"report_features", "generate"}


def local_rules(snakefile: Path, config: Path, workdir: Path) -> tuple[set[str], set[str]]:
    """(rules run locally under a cluster executor, all rules) as the loaded workflow declares them."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import ConfigSettings, ResourceSettings

    with SnakemakeApi() as api:
        workflow = api.workflow(
            resource_settings=ResourceSettings(),
            config_settings=ConfigSettings(configfiles=[config]),
            snakefile=snakefile,
            workdir=workdir,
        )._workflow
        return set(workflow._localrules) | {"all"}, {rule.name for rule in workflow.rules}


def test_compute_rules_go_to_the_cluster_and_the_rest_stay_local(tmp_path):
    """Which rules leave the submit host, as the loaded workflow says (a `use rule X as Y with:` block
    resets `localrule` in snakemake 9.27: Figs. 5-7 once went to SLURM that way)."""
    local, rules = local_rules(ROOT / "Snakefile", ROOT / SMOKE, tmp_path)
    assert CLUSTER_RULES <= rules
    assert rules - local == CLUSTER_RULES


def test_profile_slurm_resolves_from_the_repository_root(tmp_path):
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "cfg")}
    install = ROOT / "workflow/profiles/install.sh"
    for _ in range(2):  # idempotent
        assert subprocess.run(["bash", install], env=env).returncode == 0
    link = tmp_path / "cfg/snakemake/slurm"
    assert link.resolve() == (ROOT / "workflow/profiles/slurm").resolve()
    out = snakemake(
        "--profile",
        "slurm",
        "--directory",
        tmp_path / "w",
        "--configfile",
        ROOT / SMOKE,
        "-n",
        "all",
        cwd=ROOT,
        env=env,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "Using profile slurm" in out.stderr
    assert "launcher=slurm" in out.stdout  # pretraining goes through submitit's SLURM launcher
    # someone else's profile of that name is left alone
    link.unlink()
    link.mkdir()
    assert subprocess.run(["bash", install], env=env, capture_output=True).returncode == 1
    assert link.is_dir() and not link.is_symlink()


def test_bootstrap_links_the_slurm_profile_idempotently(tmp_path):
    """The setup both README commands run (envs/bootstrap.sh) makes `--profile slurm` resolve, with
    install.sh's care: run twice it changes nothing; someone else's profile of that name is left
    alone and the setup still succeeds (the main command does not need the profile)."""
    venv = tmp_path / "venv"  # an up-to-date environment, so bootstrap installs nothing
    (venv / "bin").mkdir(parents=True)
    (venv / "bin/python").write_text(f'#!/bin/sh\nexec {sys.executable} "$@"\n')
    (venv / "bin/python").chmod(0o755)
    want = subprocess.run(
        f"cat {ROOT}/pyproject.toml {ROOT}/envs/bootstrap.sh | sha256sum | cut -d' ' -f1",
        shell=True,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (venv / ".nextvid-installed").write_text(want + "\n")
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "cfg"), "NEXTVID_VENV": str(venv), "PYTHONPATH": str(ROOT)}
    link = tmp_path / "cfg/snakemake/slurm"
    for _ in range(2):
        proc = subprocess.run(["bash", ROOT / "envs/bootstrap.sh"], env=env, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        assert "installing" not in proc.stderr
        assert link.is_symlink() and link.resolve() == (ROOT / "workflow/profiles/slurm").resolve()
    assert proc.stderr == ""  # the second run had nothing to do
    out = snakemake(
        "--profile",
        "slurm",
        "--directory",
        tmp_path / "w",
        "--configfile",
        ROOT / SMOKE,
        "-n",
        "all",
        cwd=ROOT,
        env=env,
    )
    assert out.returncode == 0 and "Using profile slurm" in out.stderr, out.stderr[-2000:]
    link.unlink()
    link.mkdir()
    proc = subprocess.run(["bash", ROOT / "envs/bootstrap.sh"], env=env, capture_output=True, text=True)
    assert proc.returncode == 0 and "left alone" in proc.stderr and "--profile " in proc.stderr
    assert link.is_dir() and not link.is_symlink()


# --- rerun policy --------------------------------------------------------------------------------

REPORT_RULES = {"report_table", "report_figure", "report_findings"}


@pytest.mark.slow
def test_probe_code_change_reruns_probes_and_reports_never_pretraining(tree):
    edit_source(tree, "nextvid/probe/heads.py")
    out = tree.dry_run()
    counts = job_counts(out.stdout)
    assert counts["probe"] == SMOKE_PROBES and counts["probe_reference"] == SMOKE_REFERENCES
    assert set(counts) <= {"probe", "probe_reference", "report_features", "all"} | REPORT_RULES
    assert "pretrain" not in counts and "data_embedded" not in counts and "generate" not in counts


@pytest.mark.slow
def test_touching_probe_code_without_changing_it_reruns_nothing(tree):
    path = tree.repo / "nextvid/probe/heads.py"
    later = time.time() + 60
    os.utime(path, (later, later))
    assert job_counts(tree.dry_run().stdout) == {}


@pytest.mark.slow
def test_code_only_pretraining_or_data_use_reruns_nothing(tree):
    for module in ("nextvid/train/loop.py", "nextvid/data/embedded.py", "nextvid/launch.py"):
        edit_source(tree, module)
    assert job_counts(tree.dry_run().stdout) == {}


@pytest.mark.slow
def test_report_code_change_reruns_only_reports(tree):
    edit_source(tree, "nextvid/report/tables.py")
    counts = job_counts(tree.dry_run().stdout)
    assert "report_table" in counts
    assert not {"pretrain", "data_embedded", "probe", "probe_reference", "report_features"} & set(counts)


@pytest.mark.slow
def test_pretrain_parameter_change_reruns_that_pretraining_and_downstream(tree):
    tree.edit_config(lambda c: c["experiments"]["smoke"]["pretrain"]["set"].append("objective.ema_momentum=0.95"))
    out = tree.dry_run()
    counts = job_counts(out.stdout)
    assert counts["pretrain"] == SMOKE_RUNS and counts["probe"] == SMOKE_PROBES and counts["generate"] == 1
    assert (
        counts["report_features"] == SMOKE_RUNS
    )  # every run's (t-SNE, RankMe); the random-init reference's is unchanged
    assert "probe_reference" not in counts and "data_embedded" not in counts
    assert "Params have changed" in out.stdout
    # a finished run is write-protected: snakemake refuses to replace it (unless run as root, which
    # os.access lets write anything) and `nextvid pretrain` refuses to resume another config's run
    done = tree.path / "results/pretrain/smoke/nextvid/seed0/done.json"
    assert done.stat().st_mode & 0o222 == 0


@pytest.mark.slow
def test_variant_change_reruns_only_that_variant(tree):
    tree.edit_config(lambda c: c["experiments"]["smoke"].update(variants=["nextvid", "no_ema"]))
    counts = job_counts(tree.dry_run().stdout)
    assert counts["pretrain"] == 1 and counts["probe"] == 8  # no_ema: 2 steps x 4 benchmarks
    assert "generate" not in counts and "probe_reference" not in counts


@pytest.mark.slow
def test_probe_parameter_change_reruns_probes_not_pretraining(tree):
    tree.edit_config(lambda c: c["experiments"]["smoke"]["probe"]["set"].append("epochs=3"))
    counts = job_counts(tree.dry_run().stdout)
    assert counts["probe"] == SMOKE_PROBES and counts["probe_reference"] == SMOKE_REFERENCES
    assert not {"pretrain", "data_embedded", "generate"} & set(counts)


@pytest.mark.slow
def test_ceiling_parameter_change_reruns_only_the_ceiling(tree):
    tree.edit_config(lambda c: c["experiments"]["smoke"]["probe"].update(ceiling={"set": ["epochs=1"]}))
    out = tree.dry_run("--printshellcmds")
    counts = job_counts(out.stdout)
    assert counts["probe_reference"] == 4 and "probe" not in counts  # one ceiling per benchmark
    assert out.stdout.count("--encoder convnet --finetune") == 4 and "--set epochs=1" in out.stdout
    assert not {"pretrain", "data_embedded", "generate", "report_features"} & set(counts)


@pytest.mark.slow
def test_launch_settings_rerun_nothing(tree):
    tree.edit_config(lambda c: c["experiments"]["smoke"]["pretrain"]["launch"].append("launch.timeout_min=120"))
    assert job_counts(tree.dry_run("--set-resources", "pretrain:site='--set launch.qos=high'").stdout) == {}


@pytest.mark.slow
def test_findings_page_is_published_byte_for_byte_at_a_path_with_spaces_and_quotes(tree):
    """publish_findings copies in Python: a path no shell could take unquoted is fine."""
    doc = 'docs/it\'s a "findings" page; $(x).md'
    tree.edit_config(lambda c: c["experiments"]["smoke"]["report"].update(findings_doc=doc))
    out = tree.run()
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert (tree.path / doc).read_bytes() == (tree.path / "results/findings/smoke/findings.md").read_bytes()
    assert job_counts(tree.dry_run().stdout) == {}


@pytest.mark.slow
def test_html_report_collects_tables_and_figures_with_captions(tree):
    out = snakemake(*tree.args("--report", "report.html"), cwd=tree.path, env=tree.env)
    assert out.returncode == 0, out.stderr[-2000:]
    html = (tree.path / "report.html").read_text()
    assert "fig4_probe_vs_step.png" in html and "table2_design.csv" in html
    # one caption template for every figure (workflow/report/figure.rst): the experiment, then the
    # figure's own caption file (the stub writes "caption of <figure>")
    figures = re.findall(r'"caption": "<p>Experiment <[^>]*>smoke</[^>]*>\.</p>\\n<p>caption of (\w+)</p>', html)
    assert sorted(figures) == sorted(re.findall(r'"wildcards": "config=smoke, figure=(\w+)"', html))
    assert {"fig4_probe_vs_step", "fig6_losses"} <= set(figures)


# --- interruption --------------------------------------------------------------------------------


def wait_for(path: Path, log: Path, timeout: float = 120) -> None:
    end = time.time() + timeout
    while not path.exists():
        assert time.time() < end, f"{path} never appeared; snakemake said:\n{log.read_text()[-3000:]}"
        time.sleep(0.2)


@pytest.mark.slow
def test_killed_job_is_rerun_never_accepted(tree):
    """kill -9 of the whole snakemake process group while a probe job has written half its output:
    the next run knows the output is incomplete, reruns exactly that job, and finishes."""
    metrics = tree.path / "results/probe/smoke/nextvid/seed0/step8/motion/metrics.json"
    metrics.unlink()  # to be recomputed: a missing intermediate alone reruns nothing, so it is the target
    env = {**tree.env, "NEXTVID_STUB_HANG": "probe"}
    target = metrics.relative_to(tree.path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "snakemake", *map(str, tree.args("--cores", "1", target))],
        cwd=tree.path,
        env=env,
        stdout=open(tree.path / "killed.log", "w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_for(metrics, tree.path / "killed.log")
        time.sleep(0.5)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert metrics.read_text() == "{"  # the partial output is still there
    strict = tree.dry_run(profile=False)  # without the profile's rerun-incomplete: refuses to go on
    assert strict.returncode != 0 and "IncompleteFilesException" in strict.stdout + strict.stderr
    assert str(metrics.relative_to(tree.path)) in strict.stdout + strict.stderr
    out = tree.dry_run()
    counts = job_counts(out.stdout)
    assert counts.get("probe") == 1 and "pretrain" not in counts
    assert "reason: Forced execution" in out.stdout  # rerun-incomplete (the profile) forces it
    assert tree.run().returncode != 0  # kill -9 left snakemake's lock behind: the run says so ...
    assert snakemake(*tree.args("--unlock"), cwd=tree.path, env=tree.env).returncode == 0  # ... and this lifts it
    assert tree.run().returncode == 0
    assert metrics.read_text() == "{}\n"
    assert job_counts(tree.dry_run().stdout) == {}


@pytest.mark.slow
def test_killed_pretraining_resumes_and_leaves_no_completion_record(tree):
    """A run killed mid-way has no done.json: nothing downstream can take it as finished, and the
    next call runs `nextvid pretrain` again (which resumes from its latest checkpoint)."""
    run = tree.path / "results/pretrain/smoke/simplified_no_masking/seed0"
    done = run / "done.json"
    done.chmod(0o644)
    done.unlink()
    (run / "checkpoints/latest.pt").unlink()
    env = {**tree.env, "NEXTVID_STUB_HANG": "pretrain"}
    target = done.relative_to(tree.path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "snakemake", *map(str, tree.args("--cores", "2", target))],
        cwd=tree.path,
        env=env,
        stdout=open(tree.path / "killed.log", "w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_for(run / "checkpoints/latest.pt", tree.path / "killed.log")
        time.sleep(0.5)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert not done.exists()  # nothing can take the run as finished
    assert job_counts(tree.dry_run(target).stdout) == {"pretrain": 1}
    calls = (tree.path / "calls.log").read_text().splitlines()
    before = sum(c.startswith("pretrain") for c in calls)
    assert snakemake(*tree.args("--unlock"), cwd=tree.path, env=tree.env).returncode == 0
    assert tree.run(target).returncode == 0
    calls = (tree.path / "calls.log").read_text().splitlines()
    assert sum(c.startswith("pretrain") for c in calls) == before + 1
    assert done.is_file()


def test_the_schemas_name_lists_are_the_packages():
    """The schema must list the embedded scales and dataset kinds to describe them (each kind has its
    own keys); the package owns the lists. A name added on one side only fails here, not at run time."""
    from nextvid.commands.data_convert import CONVERT_SUBCOMMANDS
    from nextvid.data.embedded_catalogue import SCALES
    from nextvid.plan.data import CONVERTERS

    schema = yaml.safe_load((ROOT / "workflow/schemas/config.schema.yaml").read_text())
    assert schema["properties"]["data"]["properties"]["embedded"]["properties"]["scale"]["enum"] == list(SCALES)
    dataset = schema["$defs"]["dataset"]
    kinds = [case["if"]["properties"]["kind"]["const"] for case in dataset["allOf"]]
    assert dataset["properties"]["kind"]["enum"] == kinds == list(CONVERTERS)
    assert set(CONVERTERS.values()) <= set(CONVERT_SUBCOMMANDS)
