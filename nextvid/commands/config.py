"""`nextvid config`: print the resolved config (YAML) and its stable hash, or validate a file."""

from __future__ import annotations

from nextvid.config import add_config_arguments, resolve_config


def configure(parser) -> None:
    add_config_arguments(parser)
    parser.add_argument("--hash", action="store_true", help="print only the config's stable hash")
    parser.add_argument(
        "--schedule",
        action="store_true",
        help="print the stages the run goes through (LR, tau draws, frames, batch), cut where it stops",
    )


def run(args) -> int:
    import yaml

    cfg = resolve_config(args)
    if args.hash:
        print(cfg.stable_hash())
    elif args.schedule:
        from nextvid.train.schedule import describe_run

        sched = cfg.schedule
        stop = sched.end_step
        print(
            f"# {stop} of the {sched.total_steps}-step schedule"
            + (" (stopped early)" if stop < sched.total_steps else "")
        )
        rows = describe_run(sched)
        widths = {k: max(len(k), *(len(str(r[k])) for r in rows)) for k in rows[0]}
        print("  ".join(k.ljust(w) for k, w in widths.items()))
        for r in rows:
            print("  ".join(str(r[k]).ljust(w) for k, w in widths.items()))
    else:
        print(f"# hash: {cfg.stable_hash()}")
        print(f"# {precision_line(cfg)}")
        print(yaml.safe_dump(cfg.to_dict(), sort_keys=False), end="")
    return 0


def precision_line(cfg) -> str:
    """What `schedule.precision` resolves to on this machine, as a run started here would resolve it."""
    import torch

    from nextvid.train.distributed import pick_device
    from nextvid.train.precision import native_bf16, resolve, why_not_native

    if cfg.train.device == "cuda" and not torch.cuda.is_available():
        return f"schedule.precision: {cfg.schedule.precision} (train.device cuda: no GPU here to resolve it on)"
    device = pick_device(cfg.train.device, 0)
    resolved = resolve(cfg.schedule.precision, device, "schedule.precision")
    native = native_bf16(device)
    why = "" if native else f"; {why_not_native(device)}"
    return f"schedule.precision: {cfg.schedule.precision} -> {resolved} on this machine ({device.type}, bf16 native: {native}{why})"
