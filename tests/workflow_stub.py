"""A stand-in for the `nextvid` command in workflow tests: it writes the files each subcommand's
contract promises (placeholder content), so Snakemake runs the real rules, records real metadata
(params, code, input checksums) and the rerun policy can be tested in seconds. The real commands
are exercised end to end by the smoke configuration (workflow/README.md).

Environment: NEXTVID_STUB_LOG (append one line per call), NEXTVID_STUB_HANG=<command> (write a
partial output for that command, then sleep: a job to kill mid-way)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

EMBEDDED_BENCHMARKS = ("images", "appearance", "motion", "motion_sequence")
FIGURES = {
    "--metrics": "fig4_probe_vs_step",
    "--generations": "fig5_generations",
    "--runs": "fig6_losses",
    "--features": "fig7_tsne",
}


def option(args: list[str], name: str) -> str | None:
    return args[args.index(name) + 1] if name in args else None


def values(args: list[str], name: str) -> list[str]:
    if name not in args:
        return []
    out = []
    for a in args[args.index(name) + 1 :]:
        if a.startswith("--"):
            break
        out.append(a)
    return out


def write(path: str | Path, text: str = "stub\n") -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def hang(command: str, partial: Path) -> None:
    if os.environ.get("NEXTVID_STUB_HANG") == command:
        write(partial, "{")  # half-written
        time.sleep(600)


def main(args: list[str]) -> int:
    if os.environ.get("NEXTVID_STUB_LOG"):
        with open(os.environ["NEXTVID_STUB_LOG"], "a") as fh:
            fh.write(" ".join(args) + "\n")
    command = " ".join(args[:2]) if args[0] in ("data", "report") else args[0]
    out = option(args, "--out")
    if command == "data fetch":
        return 0
    if command == "data embedded":
        for name in ("info.json", "mixture.json"):
            write(Path(out) / name)
        for benchmark in EMBEDDED_BENCHMARKS:
            for split in ("train", "val"):
                write(Path(out) / benchmark / f"{split}.tsv")
    elif command == "data cache-mixture":
        write(Path(out) / "mixture.json")
    elif command.startswith("data convert-"):
        stem = out.removesuffix(".tsv")
        for suffix in (".tsv", ".labels.json", ".skips.json"):
            write(stem + suffix)
    elif command == "pretrain":
        hang("pretrain", Path(out) / "checkpoints" / "latest.pt")
        write(Path(out) / "checkpoints" / "latest.pt")
        write(Path(out) / "done.json", "{}\n")
    elif command == "probe":
        hang("probe", Path(out) / "metrics.json")
        write(Path(out) / "metrics.json", "{}\n")
    elif command == "generate":
        write(Path(out) / "samples.npz")
        write(Path(out) / "samples.png")
    elif command == "report publish":
        write(args[3], Path(args[2]).read_text())
    elif command in ("report features", "report findings"):
        write(out)
    elif command == "report tables":
        for table in values(args, "--tables"):
            for ext in ("md", "tex", "csv", "sources.csv", "caption.rst"):
                write(Path(out) / f"{table}.{ext}")
    elif command == "report figures":
        for flag, name in FIGURES.items():
            if values(args, flag):
                write(Path(out) / f"{name}.png")
                write(Path(out) / f"{name}.caption.rst", f"caption of {name}\n")
    else:
        print(f"workflow stub: unknown command {args}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
