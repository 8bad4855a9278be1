"""Read once, verify what was read: a bundle replaced while it loads is one version or a clean error.

Another process swaps a bundle folder between two versions (different weights and
metadata) as fast as it can, three ways: an atomic symlink flip, a pair of directory
renames, and non-atomic in-place rewrites of every file. Meanwhile this process loads it
again and again: every load must be exactly one version (metadata version matches the
weights' predictions) or a BundleError, never a mix.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gitml.errors import BundleError
from gitml.package.bundle import load_bundle
from tests.tiny_bundles import rows, tiny_bundle

pytestmark = pytest.mark.slow
SECONDS_PER_MODE, MAX_LOADS = 4.0, 400

WRITER = r"""
import os, sys, time
from pathlib import Path

mode, work = sys.argv[1], Path(sys.argv[2])
live, versions = work / "live", ["v1", "v2"]
i = 0
while True:
    now, other = versions[i % 2], versions[(i + 1) % 2]
    if mode == "symlink":  # atomic: one rename of a link
        os.symlink(work / other, work / "next")
        os.replace(work / "next", live)
    elif mode == "rename":  # two renames: the folder is briefly absent
        os.rename(live, work / f"park-{now}")
        os.rename(work / f"park-{other}", live)
    else:  # in place, file by file, no temp files: readers see torn files
        for file in sorted((work / other).rglob("*")):
            if file.is_file():
                (live / file.relative_to(work / other)).write_bytes(file.read_bytes())
    i += 1
    time.sleep(0.02 if mode == "inplace" else 0.002)  # a rewrite takes ms: leave some loads a whole version
"""


@pytest.fixture(scope="module")
def versions(tmp_path_factory) -> dict[str, Path]:
    work = tmp_path_factory.mktemp("race-versions")
    return {"v1": tiny_bundle(work / "v1", version="v1", rule=0),
            "v2": tiny_bundle(work / "v2", version="v2", rule=1)}


def prepare(mode: str, versions: dict[str, Path], work: Path) -> Path:
    for name, source in versions.items():
        shutil.copytree(source, work / name)
    live = work / "live"
    if mode == "symlink":
        live.symlink_to(work / "v1")
    elif mode == "rename":
        shutil.copytree(work / "v1", live)
        shutil.copytree(work / "v2", work / "park-v2")
    else:
        shutil.copytree(work / "v1", live)
    return live


@pytest.mark.parametrize("mode", ["symlink", "rename", "inplace"])
def test_every_load_during_a_replace_is_one_version_or_a_clean_error(mode, versions, tmp_path):
    probe = rows(40, seed=7)
    expected = {name: load_bundle(path).predict(probe) for name, path in versions.items()}
    assert not expected["v1"].equals(expected["v2"]), "the two versions must predict differently"
    live = prepare(mode, versions, tmp_path)
    writer = subprocess.Popen([sys.executable, "-c", WRITER, mode, str(tmp_path)])
    seen: dict[str, int] = {"v1": 0, "v2": 0, "refused": 0}
    try:
        time.sleep(0.3)
        assert writer.poll() is None, "the writer stopped early"
        deadline = time.monotonic() + SECONDS_PER_MODE
        while time.monotonic() < deadline and sum(seen.values()) < MAX_LOADS:
            try:
                bundle = load_bundle(live)
            except BundleError:
                seen["refused"] += 1
                continue
            version = bundle.metadata["version"]
            assert bundle.predict(probe).equals(expected[version]), f"{mode}: metadata {version} with other weights"
            assert bundle.reference().equals(load_bundle(versions[version]).reference())
            seen[version] += 1
        assert writer.poll() is None, "the writer stopped early"
    finally:
        writer.kill()
        writer.wait()
    print(f"{mode}: {seen}")
    assert seen["v1"] and seen["v2"], f"{mode}: both versions must have loaded at least once ({seen})"
