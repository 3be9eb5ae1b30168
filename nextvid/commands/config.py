"""`nextvid config`: print the resolved config (YAML) and its stable hash, or validate a file."""

from __future__ import annotations

from nextvid.commands.common import add_config_arguments, resolve_config


def configure(parser) -> None:
    add_config_arguments(parser)
    parser.add_argument("--hash", action="store_true", help="print only the config's stable hash")
    parser.add_argument("--schedule", action="store_true", help="print the stages the run goes through (LR, tau draws, frames, batch), cut where it stops")


def run(args) -> int:
    import yaml

    cfg = resolve_config(args)
    if args.hash:
        print(cfg.stable_hash())
    elif args.schedule:
        from nextvid.train.schedule import describe_run, end_step

        sched = cfg.schedule
        stop = end_step(sched)
        print(f"# {stop} of the {sched.total_steps}-step schedule" + (" (stopped early)" if stop < sched.total_steps else ""))
        rows = describe_run(sched)
        widths = {k: max(len(k), *(len(str(r[k])) for r in rows)) for k in rows[0]}
        print("  ".join(k.ljust(w) for k, w in widths.items()))
        for r in rows:
            print("  ".join(str(r[k]).ljust(w) for k, w in widths.items()))
    else:
        print(f"# hash: {cfg.stable_hash()}")
        print(yaml.safe_dump(cfg.to_dict(), sort_keys=False), end="")
    return 0
