"""The trained model's behaviour: it loads verified, learned more than a dummy, and is consistent.

A classifier must beat a dummy on every class and answer probabilities; a regressor must
predict closer than the training mean does.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="module")
def bundle(output: Callable[[str], Path]) -> Any:
    from gitml import api

    return api.load_bundle(output("bundle"))  # verifies every file against the manifest


@pytest.fixture(scope="module")
def test_rows(splits: dict[str, Any], params: Any) -> tuple[Any, Any]:
    test = splits["test"]
    return test.drop(columns=[params.data.target]), test[params.data.target]


def test_the_bundle_predicts_what_the_contract_names(bundle: Any, output: Callable[[str], Path]) -> None:
    from gitml.data.contract import load_contract

    contract = load_contract(output("contract"))
    assert bundle.task == contract.task
    assert [str(c) for c in bundle.classes] == [str(c) for c in contract.classes]


def test_the_model_beats_a_dummy(bundle: Any, test_rows: tuple[Any, Any], splits: dict[str, Any],
                                 params: Any) -> None:
    import numpy as np

    features, labels = test_rows
    if bundle.regression:  # closer than the training mean, in root mean squared error
        predicted = bundle.predict(features)["prediction"].to_numpy(float)
        actual = labels.to_numpy(float)
        dummy = float(splits["train"][params.data.target].mean())
        rmse, dummy_rmse = (float(np.sqrt(np.mean((p - actual) ** 2))) for p in (predicted, dummy))
        assert rmse < dummy_rmse, f"test RMSE {rmse:.4g}, the training mean's {dummy_rmse:.4g}"
        return
    # Balanced accuracy (the mean recall per class): a dummy that always answers one class
    # scores 1/k however imbalanced the labels are, where plain accuracy would reward it.
    predicted = bundle.predict(features)["prediction"].astype(str).to_numpy()
    actual = labels.astype(str).to_numpy()
    recalls = [float((predicted[actual == c] == c).mean()) for c in sorted(set(actual))]
    balanced, chance = sum(recalls) / len(recalls), 1 / len(recalls)
    assert balanced > chance, f"test balanced accuracy {balanced:.3f}, a dummy's {chance:.3f} (recalls {recalls})"


def test_probabilities_are_a_distribution(bundle: Any, test_rows: tuple[Any, Any]) -> None:
    import numpy as np

    if bundle.regression:
        pytest.skip("a regression model answers a number, not probabilities")
    proba = bundle.predict_proba(test_rows[0])
    assert proba.shape == (len(test_rows[0]), len(bundle.classes))
    assert np.all((proba >= 0) & (proba <= 1))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)


def test_a_row_gets_the_same_answer_in_any_order_and_alone(bundle: Any, test_rows: tuple[Any, Any]) -> None:
    import numpy as np

    features = test_rows[0]
    expected = bundle.predict(features)
    shuffled = bundle.predict(features.sample(frac=1.0, random_state=0)).loc[features.index]
    numbers = slice(0, None) if bundle.regression else slice(1, None)  # the prediction, or the probabilities
    np.testing.assert_allclose(shuffled.iloc[:, numbers].to_numpy(float), expected.iloc[:, numbers].to_numpy(float),
                               rtol=1e-6, atol=1e-6)
    for i in range(min(5, len(features))):
        alone = bundle.predict(features.iloc[[i]])
        np.testing.assert_allclose(alone.iloc[:, numbers].to_numpy(float), expected.iloc[[i], numbers].to_numpy(float),
                                   rtol=1e-6, atol=1e-6)
