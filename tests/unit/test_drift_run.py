"""`gitml drift run`'s pure parts: which log folder a model's window is read from, and --bundle NAME=DIR."""

from __future__ import annotations

import pytest

from gitml.errors import UsageError
from gitml.monitor.run import named_bundles
from gitml.monitor.settings import model_log_dir


def test_a_model_of_several_reads_its_own_folder_under_the_servers_log_dir(tmp_path):
    several = tmp_path / "params.yaml"
    several.write_text("serve: {log_dir: s3://bucket/logs}\nmodels: {churn: {}, price: {}}\n")
    assert model_log_dir(several, "price") == "s3://bucket/logs/price"  # as serve/state.py writes it
    assert model_log_dir(several, None) == "s3://bucket/logs"
    one = tmp_path / "one.yaml"
    one.write_text("serve: {log_dir: /srv/logs}\n")
    assert model_log_dir(one, "model") == "/srv/logs"  # one model: the server writes LOG_DIR itself


def test_bundles_are_named():
    assert named_bundles(["churn=models/a", "price=/b=c"]) == {"churn": "models/a", "price": "/b=c"}
    assert named_bundles([]) is None
    for bad in (["models/a"], ["=models/a"], ["churn="], ["no way=x"], ["a=x", "a=y"]):
        with pytest.raises(UsageError):
            named_bundles(bad)
