"""`nextvid vae train`: train the small VAE of the `vae` generation target on a pretraining mixture
and write OUT (diffusers directory, stats.json, metrics.json with held-out reconstruction PSNR beside
a bilinear down-up baseline), as a whole. See nextvid.vae and docs/vae.md."""

from __future__ import annotations

import sys

from nextvid.config_engine import add_overrides_argument


def configure(parser) -> None:
    sub = parser.add_subparsers(dest="vae_command", metavar="SUBCOMMAND", required=True)
    p = sub.add_parser("train", help="train a VAE on a mixture's frames", description=__doc__)
    p.add_argument("--mixture", required=True, help="mixture file (`nextvid data embedded` or `cache-mixture` output)")
    p.add_argument("--out", required=True, help="output directory (replaced as a whole when the run finishes)")
    add_overrides_argument(p, "override a VAE setting (nextvid.vae.config.VaeConfig), e.g. steps=200 (repeatable)")
    p.add_argument(
        "--val-manifest",
        dest="val_manifests",
        action="extend",
        nargs="+",
        default=[],
        metavar="TSV",
        help="held-out manifests for the reconstruction metrics, e.g. the embedded images/val.tsv motion/val.tsv",
    )
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    p.add_argument("--workers", type=int, default=0, help="data loader processes (the result does not depend on it)")
    p.add_argument("--backend", choices=["auto", "decord", "pyav"], default="auto", help="video decoder")


def run(args) -> int:
    import torch

    from nextvid.data.badinput import TooManyBadInputs
    from nextvid.data.manifest import ManifestError
    from nextvid.vae.config import load_vae_config

    cfg = load_vae_config(args.overrides)  # a ConfigError reaches `nextvid`, which prints it
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    try:
        from nextvid.vae.train import train_vae

        metrics = train_vae(args.mixture, args.out, cfg, args.val_manifests, backend=args.backend, workers=args.workers)
    except ImportError as err:
        print(
            f"nextvid vae: needs the optional dependency diffusers (pip install 'nextvid[vae]'): {err}", file=sys.stderr
        )
        return 1
    except (ValueError, ManifestError, TooManyBadInputs, FileNotFoundError) as err:
        print(f"nextvid vae {args.vae_command}: {err}", file=sys.stderr)
        return 1
    held = metrics["held_out"]["all"]
    print(f"{args.out}: {cfg.steps} steps on {metrics['train']['frames']} frames in {metrics['wall_s']['total']:.0f} s")
    if held["vae"]["frames"]:
        print(
            f"held-out PSNR {held['vae']['psnr_db']:.2f} dB (MSE {held['vae']['mse']:.5f}) on {held['vae']['frames']} frames; "
            f"bilinear down-up x{cfg.downsample}: {held['bilinear_down_up']['psnr_db']:.2f} dB (MSE {held['bilinear_down_up']['mse']:.5f})"
        )
    return 0
