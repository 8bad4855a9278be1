"""The retraining branch's name, checked by git itself (`git check-ref-format`)."""

from __future__ import annotations

import pytest

from gitml.gitops.retrain import RetrainError, retrain_branch


def test_branch_name():
    assert retrain_branch("churn") == "gitml/retrain/churn"
    with pytest.raises(RetrainError):
        retrain_branch("bad name")
