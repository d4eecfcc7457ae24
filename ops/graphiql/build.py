"""Build GraphiQL's browser assets so the server can serve them without a CDN.

Strawberry's GraphiQL page loads React, GraphiQL, the explorer plugin and their CSS
from unpkg. Behind a firewall that page is blank, so ``make assets`` runs this script:

1. ``npm ci`` in ``.cache/graphiql`` installs the packages pinned in
   ``ops/graphiql/package.json``; npm checks every tarball against the integrity
   hash recorded in ``package-lock.json``.
2. The exact files the page needs are copied to ``app/static/graphiql/<pkg>@<ver>/<path>``
   (the same path the CDN URL has after its host).
3. ``app/static/graphiql/manifest.json`` records each file's sha384 in SRI form, which
   ``app.graphiql_page`` writes into the page's ``integrity`` attributes.

It is idempotent: when the manifest matches the lockfile and every file on disk, it only
says so. Standard library only, so it runs from a fresh clone with Python, node and npm.
"""

from __future__ import annotations

import argparse
import base64
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TypedDict

ROOT = Path(__file__).resolve().parents[2]
PACKAGE_DIR = ROOT / "ops" / "graphiql"
CACHE_DIR = ROOT / ".cache" / "graphiql"
OUT_DIR = ROOT / "app" / "static" / "graphiql"
MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1
INSTALL_STAMP = ".installed-lock-sha256"
NPM_CI = ("npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund")

# (npm package, path inside it): the files strawberry's graphiql.html loads.
ASSETS: tuple[tuple[str, str], ...] = (
    ("react", "umd/react.production.min.js"),
    ("react-dom", "umd/react-dom.production.min.js"),
    ("js-cookie", "dist/js.cookie.min.js"),
    ("graphiql", "graphiql.min.css"),
    ("graphiql", "graphiql.min.js"),
    ("@graphiql/plugin-explorer", "dist/style.css"),
    ("@graphiql/plugin-explorer", "dist/index.umd.js"),
)

_EXACT_VERSION = re.compile(r"^\d+\.\d+\.\d+$")


class FileEntry(TypedDict):
    """One manifest entry."""

    integrity: str
    bytes: int


class BuildError(Exception):
    """A problem the person running the build has to fix; printed without a traceback."""


def sri_sha384(data: bytes) -> str:
    """The Subresource Integrity string browsers check: ``sha384-<base64>``."""
    return "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode("ascii")


def lock_digest() -> str:
    """One digest over package.json and package-lock.json: what the build depends on."""
    h = hashlib.sha256()
    for name in ("package.json", "package-lock.json"):
        path = PACKAGE_DIR / name
        if not path.is_file():
            raise BuildError(f"{path} is missing")
        h.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def pinned_versions() -> dict[str, str]:
    """Package -> exact version from package.json; ranges are refused."""
    deps: dict[str, str] = json.loads((PACKAGE_DIR / "package.json").read_text())["dependencies"]
    for name, _ in ASSETS:
        version = deps.get(name)
        if version is None or not _EXACT_VERSION.match(version):
            raise BuildError(f"package.json must pin {name} to an exact version, got {version!r}")
    return deps


def asset_keys(versions: dict[str, str]) -> dict[str, tuple[str, str]]:
    """Manifest key (``pkg@ver/path``, as in the CDN URL) -> (package, path)."""
    return {f"{pkg}@{versions[pkg]}/{path}": (pkg, path) for pkg, path in ASSETS}


def manifest_is_current(digest: str, keys: set[str]) -> bool:
    """True when the manifest was built from this lockfile and every file still matches."""
    try:
        manifest = json.loads((OUT_DIR / MANIFEST_NAME).read_text())
    except (OSError, ValueError):
        return False
    files = manifest.get("files", {})
    if manifest.get("lock_sha256") != digest or set(files) != keys:
        return False
    for key, entry in files.items():
        try:
            data = (OUT_DIR / key).read_bytes()
        except OSError:
            return False
        if sri_sha384(data) != entry.get("integrity"):
            return False
    return True


def npm_install(digest: str) -> Path:
    """``npm ci`` into the cache dir, unless the cache already holds this lockfile."""
    modules = CACHE_DIR / "node_modules"
    stamp = CACHE_DIR / INSTALL_STAMP
    if modules.is_dir() and stamp.is_file() and stamp.read_text().strip() == digest:
        return modules
    if shutil.which("npm") is None:
        raise BuildError("npm is not on PATH; install node and npm to build the GraphiQL assets")
    stamp.unlink(missing_ok=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copyfile(PACKAGE_DIR / name, CACHE_DIR / name)
    print(f"graphiql assets: {' '.join(NPM_CI)} in {CACHE_DIR.relative_to(ROOT)}", flush=True)
    result = subprocess.run(NPM_CI, cwd=CACHE_DIR, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        sys.stderr.write(result.stdout + result.stderr)
        raise BuildError(f"npm ci failed with exit code {result.returncode}")
    stamp.write_text(digest + "\n")
    return modules


def copy_assets(modules: Path, versions: dict[str, str], digest: str) -> dict[str, FileEntry]:
    """Copy the needed files into a fresh directory, then swap it in place of OUT_DIR."""
    staging = OUT_DIR.with_name(OUT_DIR.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    files: dict[str, FileEntry] = {}
    for key, (pkg, path) in asset_keys(versions).items():
        try:
            installed = json.loads((modules / pkg / "package.json").read_text())["version"]
            data = (modules / pkg / path).read_bytes()
        except (OSError, ValueError, KeyError) as exc:
            raise BuildError(f"{pkg}/{path} is not in the npm install: {exc}") from exc
        if installed != versions[pkg]:
            raise BuildError(f"{pkg}: npm installed {installed}, package.json pins {versions[pkg]}")
        target = staging / key
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        files[key] = {"integrity": sri_sha384(data), "bytes": len(data)}
    manifest = {"version": MANIFEST_VERSION, "lock_sha256": digest, "files": files}
    (staging / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    shutil.rmtree(OUT_DIR, ignore_errors=True)
    staging.rename(OUT_DIR)
    return files


def build(force: bool = False) -> None:
    """Bring app/static/graphiql up to date with the lockfile."""
    digest = lock_digest()
    versions = pinned_versions()
    keys = asset_keys(versions)
    if not force and manifest_is_current(digest, set(keys)):
        os.utime(OUT_DIR / MANIFEST_NAME)  # newer than the lockfile, so make is satisfied
        print("graphiql assets: up to date", flush=True)
        return
    files = copy_assets(npm_install(digest), versions, digest)
    total = sum(entry["bytes"] for entry in files.values())
    print(f"graphiql assets: {len(files)} files, {total:,} bytes in {OUT_DIR.relative_to(ROOT)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--force", action="store_true", help="rebuild even when up to date")
    args = parser.parse_args(argv)
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with (CACHE_DIR / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # concurrent builds (two test runs) wait their turn
        try:
            build(force=args.force)
        except BuildError as exc:
            print(f"graphiql assets: {exc}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
