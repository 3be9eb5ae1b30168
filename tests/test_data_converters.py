"""Converters, on small fixture files in each benchmark's real on-disk format, and the manifest."""

from __future__ import annotations

import json

import pytest

from nextvid.cli import main
from nextvid.data import converters as C
from nextvid.data.badinput import TooManyBadInputs
from nextvid.data.manifest import ManifestError, read_manifest


def touch(path):
    """Converters only check existence, so a placeholder file stands in for a video."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x00")
    return path


def rows(manifest_path):
    m = read_manifest(manifest_path)
    return [
        (
            str(m.resolve(s).relative_to(manifest_path.parent))
            if m.resolve(s).is_relative_to(manifest_path.parent)
            else str(m.resolve(s)),
            s.label,
            s.start_frame,
            s.end_frame,
        )
        for s in m.samples
    ]


K400_CSV = """label,youtube_id,time_start,time_end,split
abseiling,--07WQ2iBlw,1,11,train
zumba,-0Ggo5F8x3s,25,35,train
abseiling,a_b-c_d_e_f,0,10,train
"air drumming",xyz12345678,5,15,train
zumba,gone1234567,0,10,train
abseiling,--07WQ2iBlw,1,11,val
"""


def test_k400_csv(tmp_path):
    (tmp_path / "k400.csv").write_text(K400_CSV)
    v = tmp_path / "videos"
    touch(v / "abseiling" / "--07WQ2iBlw_000001_000011.mp4")  # per-class folders, official naming
    touch(v / "zumba" / "-0Ggo5F8x3s_000025_000035.mp4")
    touch(v / "a_b-c_d_e_f_000000_000010.mp4")  # an id with underscores, flat
    touch(v / "xyz12345678.mp4")  # only the id: matched by id alone
    conv = C.from_k400_csv(tmp_path / "k400.csv", v, split="train", max_bad_fraction=0.5)
    assert conv.label_map == {"abseiling": 0, "air drumming": 1, "zumba": 2}  # sorted names
    assert conv.skips.counts == {"missing_file": 1} and conv.skips.records[0].index == 6
    out = tmp_path / "k400_train.tsv"
    conv.write(out)
    assert rows(out) == [
        ("videos/abseiling/--07WQ2iBlw_000001_000011.mp4", 0, None, None),
        ("videos/zumba/-0Ggo5F8x3s_000025_000035.mp4", 2, None, None),
        ("videos/a_b-c_d_e_f_000000_000010.mp4", 0, None, None),
        ("videos/xyz12345678.mp4", 1, None, None),
    ]
    assert json.loads((tmp_path / "k400_train.skips.json").read_text())["counts"] == {"missing_file": 1}
    assert json.loads((tmp_path / "k400_train.labels.json").read_text()) == conv.label_map
    with pytest.raises(TooManyBadInputs, match="1 of 5"):  # 20% missing > the default 5%: nothing written
        C.from_k400_csv(tmp_path / "k400.csv", v, split="train").write(tmp_path / "no.tsv")
    assert not (tmp_path / "no.tsv").exists()
    # another split with the train split's label map
    val = C.from_k400_csv(tmp_path / "k400.csv", v, split="val", label_map=C.load_label_map(out))
    assert val.label_map == conv.label_map and [r[1] for r in val.rows] == [0]


def test_vjepa_list(tmp_path):
    a = touch(tmp_path / "data" / "a b.mp4")  # a space in the path
    touch(tmp_path / "lists" / "rel" / "c.mp4")
    (tmp_path / "lists" / "train.csv").write_text(f"{a} 3\nrel/c.mp4 0\n\n{tmp_path}/missing.mp4 1\n")
    conv = C.from_list(tmp_path / "lists" / "train.csv", max_bad_fraction=0.5)
    assert conv.label_map == {"0": 0, "1": 1, "2": 2, "3": 3}
    assert [(p.name, label) for p, label, *_ in conv.rows] == [("a b.mp4", 3), ("c.mp4", 0)]
    assert conv.skips.counts == {"missing_file": 1}
    conv.write(tmp_path / "lists" / "m.tsv")
    assert read_manifest(tmp_path / "lists" / "m.tsv").samples[0].path == str(a)  # outside the folder: absolute
    (tmp_path / "bad.csv").write_text("only-a-path.mp4\n")
    with pytest.raises(ManifestError, match="bad.csv:1"):
        C.from_list(tmp_path / "bad.csv")
    capped = C.from_list(tmp_path / "lists" / "train.csv", label_map={"0": 0, "1": 1}, max_bad_fraction=1.0)
    assert capped.skips.counts == {"label_out_of_range": 1, "missing_file": 1}


def test_ssv2(tmp_path):
    (tmp_path / "labels.json").write_text(
        json.dumps(
            {
                "Approaching something with your camera": "0",
                "Putting something on a surface": "1",
                "Pushing something from left to right": "2",
            }
        )
    )
    (tmp_path / "train.json").write_text(
        json.dumps(
            [
                {
                    "id": "78687",
                    "label": "putting a cup on a table",
                    "template": "Putting [something] on a surface",
                    "placeholders": ["a cup"],
                },
                {
                    "id": "42326",
                    "label": "pushing pen from left to right",
                    "template": "Pushing [something] from left to right",
                    "placeholders": ["pen"],
                },
                {
                    "id": "100",
                    "label": "approaching tree with your camera",
                    "template": "Approaching [something] with your camera",
                    "placeholders": ["tree"],
                },
                {
                    "id": "5",
                    "label": "?",
                    "template": "Spinning [something] that quickly stops spinning",
                    "placeholders": ["x"],
                },
            ]
        )
    )
    for vid in ("78687", "42326", "5"):
        touch(tmp_path / "videos" / f"{vid}.webm")
    conv = C.from_ssv2(tmp_path / "labels.json", tmp_path / "train.json", tmp_path / "videos", max_bad_fraction=1.0)
    assert [(p.name, label) for p, label, *_ in conv.rows] == [("78687.webm", 1), ("42326.webm", 2)]
    assert conv.skips.counts == {"missing_file": 1, "label_out_of_range": 1}
    assert conv.label_map["Putting something on a surface"] == 1
    assert C.ssv2_class("Moving [something] and [something] closer") == "Moving something and something closer"


def test_diving48(tmp_path):
    (tmp_path / "Diving48_V2_train.json").write_text(
        json.dumps(
            [
                {"vid_name": "-mmq0PT-u8k_00155", "label": 0, "start_frame": 0, "end_frame": 184},
                {"vid_name": "-mmq0PT-u8k_00164", "label": 47, "start_frame": 10, "end_frame": 90},
                {"vid_name": "bad_label", "label": 48, "start_frame": 0, "end_frame": 10},
            ]
        )
    )
    for name in ("-mmq0PT-u8k_00155", "-mmq0PT-u8k_00164", "bad_label"):
        touch(tmp_path / "rgb" / f"{name}.mp4")
    (tmp_path / "vocab.json").write_text(json.dumps([["Back", f"{i:02d}som", "NoTwis", "PIKE"] for i in range(48)]))
    conv = C.from_diving48(
        tmp_path / "Diving48_V2_train.json", tmp_path / "rgb", vocab=tmp_path / "vocab.json", max_bad_fraction=0.5
    )
    conv.write(tmp_path / "d48.tsv")
    assert rows(tmp_path / "d48.tsv") == [
        ("rgb/-mmq0PT-u8k_00155.mp4", 0, 0, 184),
        ("rgb/-mmq0PT-u8k_00164.mp4", 47, 10, 90),
    ]
    assert conv.skips.counts == {"label_out_of_range": 1}
    assert len(conv.label_map) == 48 and conv.label_map["Back/47som/NoTwis/PIKE"] == 47
    (tmp_path / "dup.json").write_text(json.dumps([["Back", "15som", "05Twis", "FREE"]] * 48))
    with pytest.raises(ManifestError, match="1 distinct classes"):
        C.from_diving48(tmp_path / "Diving48_V2_train.json", tmp_path / "rgb", vocab=tmp_path / "dup.json")


def test_image_folder(tmp_path):
    for cls, names in {
        "n01440764": ["a.JPEG", "b.jpeg"],
        "n01443537": ["c.JPEG", "notes.txt"],
        "n09999999": ["z.png"],
    }.items():
        for n in names:
            touch(tmp_path / "train" / cls / n)
    conv = C.from_image_folder(tmp_path / "train")
    assert conv.label_map == {"n01440764": 0, "n01443537": 1, "n09999999": 2}
    assert [(p.name, label) for p, label, *_ in conv.rows] == [
        ("a.JPEG", 0),
        ("b.jpeg", 0),
        ("c.JPEG", 1),
        ("z.png", 2),
    ]
    val = C.from_image_folder(tmp_path / "train", label_map={"n01440764": 0, "n01443537": 1}, max_bad_fraction=0.5)
    assert val.skips.counts == {"label_out_of_range": 1}


def test_unlabelled_folder(tmp_path):
    touch(tmp_path / "corpus" / "b" / "x.MP4")
    touch(tmp_path / "corpus" / "a.webm")
    touch(tmp_path / "corpus" / "still.jpg")
    conv = C.from_folder(tmp_path / "corpus")
    assert [(p.name, label) for p, label, *_ in conv.rows] == [("a.webm", -1), ("x.MP4", -1)]
    assert len(C.from_folder(tmp_path / "corpus", images=True).rows) == 3
    (tmp_path / "empty").mkdir()
    with pytest.raises(ManifestError, match="no files"):
        C.from_folder(tmp_path / "empty")


def test_manifest_errors_name_file_and_line(tmp_path):
    p = tmp_path / "m.tsv"
    p.write_text("path\tlabel\tstart_frame\tend_frame\na.mp4\tx\t\t\n")
    with pytest.raises(ManifestError, match="m.tsv:2"):
        read_manifest(p)


def test_convert_cli(tmp_path, capsys):
    (tmp_path / "labels.json").write_text(json.dumps({"Holding something": "0"}))
    (tmp_path / "validation.json").write_text(
        json.dumps([{"id": "1", "template": "Holding [something]", "placeholders": ["x"]}])
    )
    touch(tmp_path / "v" / "1.webm")
    out = tmp_path / "ssv2_val.tsv"
    assert (
        main(
            [
                "data",
                "convert-ssv2",
                "--labels",
                str(tmp_path / "labels.json"),
                "--split-json",
                str(tmp_path / "validation.json"),
                "--videos",
                str(tmp_path / "v"),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert rows(out) == [("v/1.webm", 0, None, None)] and "1 samples, 1 classes" in capsys.readouterr().out
    assert main(["data", "convert-folder", str(tmp_path / "v"), "--out", str(tmp_path / "pre.tsv")]) == 0
    assert (
        main(
            [
                "data",
                "convert-k400",
                "--csv",
                str(tmp_path / "none.csv"),
                "--videos",
                str(tmp_path),
                "--out",
                str(tmp_path / "k.tsv"),
            ]
        )
        == 1
    )
