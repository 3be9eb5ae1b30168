"""`nextvid data convert-*`: a benchmark's own annotation files (Kinetics-400, SSv2, Diving-48, ImageNet
folders, V-JEPA lists, plain folders) -> a manifest with its label map and skip report beside it.
nextvid.commands.data lists these among its subcommands and runs them: their errors (a missing
file, too many bad rows) are reported there.
"""

from __future__ import annotations


def _common_convert(p, label_map: bool = True) -> None:
    p.add_argument("--out", required=True, help="manifest to write (.tsv); its label map and skip report go beside it")
    if label_map:
        p.add_argument(
            "--label-map",
            help="reuse this label map (a .labels.json or a manifest): convert val/test with the train split's ids",
        )
    p.add_argument(
        "--max-bad-fraction",
        type=float,
        default=0.05,
        help="fail (writing nothing) when more rows are skipped (default 0.05)",
    )


def _write(converted, args) -> int:
    from nextvid.data.converters import skips_path

    sha = converted.write(args.out)
    s = converted.skips
    print(f"{args.out}: {len(converted.rows)} samples, {len(converted.label_map)} classes, sha256 {sha}")
    if s.bad:
        print(f"skipped {s.bad}: {s.counts} (see {skips_path(args.out)})")
    return 0


def _label_map(args):
    from nextvid.data.converters import load_label_map

    return load_label_map(args.label_map) if args.label_map else None


def _configure_convert_k400(p) -> None:
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--csv", help="official annotation CSV (label,youtube_id,time_start,time_end,split)")
    src.add_argument("--list", help="V-JEPA style list instead of the CSV")
    p.add_argument(
        "--videos",
        help="folder with the videos (searched recursively; <youtube_id>_<start:06d>_<end:06d>.mp4); with --csv",
    )
    p.add_argument("--split", help="keep only rows of this `split` value (e.g. train, val)")
    p.add_argument("--root", help="with --list: folder that relative paths are relative to (default: the list's)")
    _common_convert(p)


def _run_convert_k400(args) -> int:
    from nextvid.data import converters

    if args.list:
        return _write(
            converters.from_list(
                args.list, root=args.root, label_map=_label_map(args), max_bad_fraction=args.max_bad_fraction
            ),
            args,
        )
    if not args.videos:
        raise FileNotFoundError("--videos: the folder of videos is required with --csv")
    return _write(
        converters.from_k400_csv(
            args.csv, args.videos, split=args.split, label_map=_label_map(args), max_bad_fraction=args.max_bad_fraction
        ),
        args,
    )


def _configure_convert_list(p) -> None:
    p.add_argument("list", help="text file: `path label` per line")
    p.add_argument("--root", help="folder that relative paths are relative to (default: the list's)")
    _common_convert(p)


def _run_convert_list(args) -> int:
    from nextvid.data import converters

    return _write(
        converters.from_list(
            args.list, root=args.root, label_map=_label_map(args), max_bad_fraction=args.max_bad_fraction
        ),
        args,
    )


def _configure_convert_ssv2(p) -> None:
    p.add_argument("--labels", required=True, help="labels.json (template without brackets -> id)")
    p.add_argument("--split-json", required=True, help="train.json or validation.json")
    p.add_argument("--videos", required=True, help="folder with <id>.webm")
    _common_convert(p, label_map=False)


def _run_convert_ssv2(args) -> int:
    from nextvid.data import converters

    return _write(
        converters.from_ssv2(args.labels, args.split_json, args.videos, max_bad_fraction=args.max_bad_fraction), args
    )


def _configure_convert_diving48(p) -> None:
    p.add_argument("--split-json", required=True, help="Diving48_V2_train.json or Diving48_V2_test.json")
    p.add_argument("--videos", required=True, help="folder with <vid_name>.mp4")
    p.add_argument("--vocab", help="Diving48_vocab.json, for class names")
    _common_convert(p, label_map=False)


def _run_convert_diving48(args) -> int:
    from nextvid.data import converters

    return _write(
        converters.from_diving48(
            args.split_json, args.videos, vocab=args.vocab, max_bad_fraction=args.max_bad_fraction
        ),
        args,
    )


def _configure_convert_imagefolder(p) -> None:
    p.add_argument("root", help="folder of class folders, e.g. imagenet/train")
    _common_convert(p)


def _run_convert_imagefolder(args) -> int:
    from nextvid.data import converters

    return _write(
        converters.from_image_folder(args.root, label_map=_label_map(args), max_bad_fraction=args.max_bad_fraction),
        args,
    )


def _configure_convert_folder(p) -> None:
    p.add_argument("root", help="folder searched recursively")
    p.add_argument("--images", action="store_true", help="include images (as frame-invariant videos)")
    _common_convert(p, label_map=False)


def _run_convert_folder(args) -> int:
    from nextvid.data import converters

    return _write(converters.from_folder(args.root, images=args.images, max_bad_fraction=args.max_bad_fraction), args)


# name -> (one-line help, configure, run), in the order `nextvid data --help` lists them
CONVERT_SUBCOMMANDS = {
    "convert-k400": (
        "Kinetics-400: official CSV + video folder, or a V-JEPA list -> manifest",
        _configure_convert_k400,
        _run_convert_k400,
    ),
    "convert-list": (
        "a V-JEPA style list (`/path/video.mp4 <int label>` per line) -> manifest",
        _configure_convert_list,
        _run_convert_list,
    ),
    "convert-ssv2": (
        "Something-Something-V2: labels.json + train/validation.json + <id>.webm -> manifest",
        _configure_convert_ssv2,
        _run_convert_ssv2,
    ),
    "convert-diving48": (
        "Diving-48 V2: Diving48_V2_{train,test}.json + <vid_name>.mp4 -> manifest",
        _configure_convert_diving48,
        _run_convert_diving48,
    ),
    "convert-imagefolder": (
        "ImageNet-style class folders (<root>/<class>/*.JPEG) -> manifest",
        _configure_convert_imagefolder,
        _run_convert_imagefolder,
    ),
    "convert-folder": (
        "every video under a folder, unlabelled (-1): a pretraining corpus -> manifest",
        _configure_convert_folder,
        _run_convert_folder,
    ),
}
