"""Locations: a local path stays a Path; an s3:// URL is checked against an exact allow-list."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitml.config.schema import Config, ServeConfig
from gitml.errors import StorageError
from gitml.utils.storage import is_url, join, location, relative, url_problem


@pytest.mark.parametrize("url", ["s3://bucket", "s3://bucket/logs", "s3://my.bucket-1/a/b/c/"])
def test_s3_urls_are_accepted(url):
    assert is_url(url) and url_problem(url) is None
    assert location(url) == url.rstrip("/")


@pytest.mark.parametrize(("url", "words"), [
    ("gs://bucket/logs", "scheme 'gs'; allowed: s3://"),
    ("file:///srv/logs", "scheme 'file'"),
    ("s3://AKIA:secret@bucket/logs", "must not carry credentials"),
    ("s3://Bucket/logs", "bucket name"),
    ("s3://b/logs", "bucket name"),
    ("s3:///logs", "bucket name"),
    ("s3://bucket/../other", "no ?, #, wildcards, '.' or '..'"),
    ("s3://bucket/logs?versionId=1", "no ?, #"),
    ("s3://bucket/logs/*", "wildcards"),
])
def test_other_urls_are_refused_naming_what_is_allowed(url, words):
    problem = url_problem(url)
    assert problem is not None and words in problem
    with pytest.raises(StorageError, match=r"The serve\.log_dir"):
        location(url, "serve.log_dir")


def test_credentials_in_a_url_never_reach_the_message():
    problem = url_problem("s3://AKIAEXAMPLE:very-secret@bucket/logs") or ""
    assert "AKIAEXAMPLE" not in problem and "very-secret" not in problem
    assert "s3://***@bucket/logs" in problem


def test_local_paths_stay_paths():
    assert not is_url("logs") and not is_url(Path("s3:/bucket"))
    assert location("logs") == Path("logs") and location(Path("/srv/x")) == Path("/srv/x")
    assert join(Path("logs"), "requests", "date=x") == Path("logs/requests/date=x")
    assert join("s3://bucket/logs/", "requests", "", ".", "part.parquet") == "s3://bucket/logs/requests/part.parquet"
    assert relative(Path("logs/requests/a.parquet"), Path("logs")) == "requests/a.parquet"
    assert relative("s3://bucket/logs/requests/a.parquet", "s3://bucket/logs") == "requests/a.parquet"


def test_serve_log_dir_rule_names_the_key():
    from gitml.config.rules import serve_problems

    assert serve_problems(Config(serve=ServeConfig(log_dir="s3://bucket/logs"))) == []
    problems = serve_problems(Config(serve=ServeConfig(log_dir="gs://bucket/logs")))
    assert [key for key, _ in problems] == ["serve.log_dir"] and "allowed: s3://" in problems[0][1]
