"""Traffic splits: the committed file's schema, the stable hash split and the canary file's shape."""

from __future__ import annotations

import pytest
from scipy.stats import binom

from gitml.errors import DeploymentError, GitmlError
from gitml.serve.delivery import canary_split
from gitml.serve.traffic import (
    Split,
    bucket,
    parse_split_json,
    read_traffic_file,
    split_json,
)


def test_a_good_file_reads_in_bucket_order(tmp_path):
    file = tmp_path / "churn.yaml"
    file.write_text("versions:\n  v1.1.0: 90\n  v1.2.0: 10\nshadow: v1.3.0\nkey: X-Customer-Id\n")
    split = read_traffic_file(file)
    assert split == Split((("v1.1.0", 90), ("v1.2.0", 10)), "v1.3.0", "x-customer-id")
    assert split.stable == "v1.1.0" and split.loaded == ["v1.1.0", "v1.2.0", "v1.3.0"]
    assert split.table == (0,) * 90 + (1,) * 10
    assert parse_split_json(split_json(split, "2026-12-03T00:00:00Z"), "traffic.json") == split


@pytest.mark.parametrize(("text", "words"), [
    ("versions: {v1: 90, v2: 20}\n", ["versions: the percents add up to 110"]),
    ("versions: {v1: 100}\nweights: {v1: 1}\n", ["unknown key 'weights'"]),
    ("versions: {v1: 90.5, v2: 9.5}\n", ["versions.v1: 90.5", "versions.v2: 9.5"]),
    ("versions: {v1: true}\n", ["versions.v1: True"]),
    ("versions: {1.0: 100}\n", ["'1.0' is not a version", "quote it"]),
    ("versions: {v1: 100}\nshadow: v1\n", ["shadow: 'v1' already answers"]),
    ("versions: {v1: 100}\nkey: 'a b'\n", ["key: 'a b' is not a header name"]),
    ("versions: []\n", ["versions: expected a mapping"]),
    ("- v1\n", ["expected a mapping", "got list"]),
    ("versions: {v1: 101, v2: -1}\n", ["versions.v1: 101", "versions.v2: -1"]),
])
def test_a_bad_file_names_the_file_and_every_bad_key(tmp_path, text, words):
    file = tmp_path / "churn.yaml"
    file.write_text(text)
    with pytest.raises(DeploymentError) as caught:
        read_traffic_file(file)
    message = str(caught.value)
    assert message.startswith(str(file)) and all(word in message for word in words), message


def test_missing_and_unreadable_files_say_so(tmp_path):
    with pytest.raises(DeploymentError, match="No traffic file"):
        read_traffic_file(tmp_path / "none.yaml")
    (tmp_path / "bad.yaml").write_text("versions: {v1: [\n")
    with pytest.raises(DeploymentError, match="not readable YAML"):
        read_traffic_file(tmp_path / "bad.yaml")
    with pytest.raises(DeploymentError, match="is not a traffic split"):
        parse_split_json(b"{}", "traffic.json")


def test_buckets_are_stable_and_uniform():
    assert bucket("customer-42") == bucket("customer-42") == 54  # the same in every process and release
    counts = [0] * 100
    for i in range(20_000):
        counts[bucket(f"k{i}")] += 1
    low, high = binom.interval(1 - 1e-6, 20_000, 0.01)  # every bucket, with room for 100 looks
    assert low <= min(counts) and max(counts) <= high, (min(counts), max(counts))


def test_raising_the_canary_only_moves_keys_towards_it():
    keys = [f"k{i}" for i in range(5_000)]
    before = Split((("v1", 90), ("v2", 10)))
    after = Split((("v1", 50), ("v2", 50)))
    assert all(after.version_for(k) == "v2" for k in keys if before.version_for(k) == "v2")
    low, high = binom.interval(0.999, len(keys), 0.10)
    assert low <= sum(before.version_for(k) == "v2" for k in keys) <= high


def test_the_canary_file_splits_from_the_stable_version():
    assert canary_split("v1", "v2", 10, "v3") == Split((("v1", 90), ("v2", 10)), "v3")
    assert canary_split("v1", "v2", 100) == Split((("v2", 100),))
    for stable, version, percent, shadow in (("v1", "v2", 0, None), ("v1", "v1", 10, None), ("v1", "v2", 10, "v1")):
        with pytest.raises(GitmlError):
            canary_split(stable, version, percent, shadow)
