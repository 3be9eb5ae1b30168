"""`nextvid generate`: next-frame generations from a pretraining checkpoint's flow decoder (paper
Fig. 5) on deterministic validation clips -> OUT/samples.npz (uint8 frames: ground truth, masked
generation per mask view, autoregressive rollout; the masks; labels; meta) and OUT/samples.png.
See nextvid.generation."""

from __future__ import annotations

import json
import logging
import sys

log = logging.getLogger(__name__)


def configure(parser) -> None:
    parser.add_argument(
        "--checkpoint", required=True, help="a nextvid pretraining checkpoint (.pt) whose model has a flow decoder"
    )
    parser.add_argument("--manifest", required=True, help="validation manifest (.tsv) to take clips from")
    parser.add_argument("--out", required=True, help="output directory (samples.npz, samples.png)")
    parser.add_argument("--samples", type=int, default=4, help="clips, spread over the classes deterministically")
    parser.add_argument("--seed", type=int, default=0, help="masks and ODE noise")
    parser.add_argument(
        "--context", type=int, default=None, help="real token-frames before the AR rollout (default: half the clip)"
    )
    parser.add_argument(
        "--steps", type=int, default=None, help="Euler ODE steps (default: the config's decoder.sample_steps)"
    )
    parser.add_argument(
        "--frames", type=int, default=None, help="frames per clip (default: the config's model.encoder.frames)"
    )
    parser.add_argument("--label", help="name in the figure (default: variant/seed/step from the checkpoint's path)")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--backend", choices=["auto", "decord", "pyav"], default="auto", help="video decoder")


def run(args) -> int:
    import torch

    from nextvid.data.badinput import is_marker
    from nextvid.data.datasets import EvalClips, ManifestSource, pick_samples
    from nextvid.data.manifest import ManifestError, read_manifest
    from nextvid.generation import GenerationError, clip_spec, generate, load_generator, save_samples
    from nextvid.layout import checkpoint_label
    from nextvid.report import grids
    from nextvid.report.figures import save
    from nextvid.train.checkpoint import CheckpointError

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device)
    try:
        gen = load_generator(args.checkpoint, device)
        manifest = read_manifest(args.manifest)
    except (GenerationError, CheckpointError, ManifestError, FileNotFoundError) as err:
        print(f"nextvid generate: {err}", file=sys.stderr)
        return 1
    cfg = gen.cfg
    frames = args.frames or cfg.model.encoder.frames
    if frames % cfg.model.encoder.tubelet or frames < 2 * cfg.model.encoder.tubelet:
        print(
            f"nextvid generate: --frames {frames} must be a multiple of the tubelet {cfg.model.encoder.tubelet} and span two token-frames",
            file=sys.stderr,
        )
        return 2
    clips = EvalClips(
        ManifestSource(manifest, args.backend), clip_spec(cfg, frames), cfg.model.encoder.image_size, 1, 1
    )
    chosen = pick_samples(clips.labels, args.samples)
    items = [clips[i] for i in chosen]
    bad = [next(iter(item.values())) for item in items if is_marker(item)]
    good = [item for item in items if not is_marker(item)]
    if bad:
        log.warning(
            "%d of %d chosen clips could not be read and are left out: %s",
            len(bad),
            len(items),
            [b["path"] for b in bad],
        )
    if not good:
        print(
            f"nextvid generate: none of the {len(items)} chosen clips of {args.manifest} could be read", file=sys.stderr
        )
        return 1
    video = torch.stack([item["video"][0] for item in good]).to(device)  # (B, C, T, H, W): 1 segment x 1 view
    try:
        arrays = generate(gen, video, args.seed, args.context, args.steps)
    except GenerationError as err:
        print(f"nextvid generate: {err}", file=sys.stderr)
        return 2
    arrays["labels"] = torch.tensor([int(item["label"]) for item in good]).numpy()
    arrays["indices"] = torch.tensor([int(item["index"]) for item in good]).numpy()
    meta = {
        "label": args.label or checkpoint_label(args.checkpoint),
        "checkpoint": gen.record,
        "seed": args.seed,
        "ode_steps": args.steps or cfg.model.decoder.sample_steps,
        "frames": frames,
        "tubelet": cfg.model.encoder.tubelet,
        "masked_from": int(arrays["masked_from"]),
        "rollout_from": int(arrays["rollout_from"]),
        "masking": cfg.masking.kind,
        "manifest": str(args.manifest),
        "manifest_sha256": manifest.sha256,
        "clip": "EvalClips, 1 segment x 1 view, centre crop",
        "classes": sorted(manifest.label_map, key=manifest.label_map.get),
        "skipped": bad,
    }
    out = save_samples(f"{args.out}/samples.npz", arrays, meta)
    samples = {**arrays, "meta": meta}
    save(grids.draw(grids.sample_blocks(samples, meta["label"], len(good))), args.out, "samples", grids.caption(meta))
    print(
        json.dumps(
            {"out": str(out), "samples": len(good), "frames": frames, "mask_views": int(arrays["masked"].shape[1])}
        )
    )
    return 0
