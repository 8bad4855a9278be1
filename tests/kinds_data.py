"""Data sets (a) and (b) of issue 14: nothing like the demo, built by the tests that need it.

(a) is below; (b), three string classes, is ``dataset_b``.

Binary and imbalanced (about 12% positive), with the kinds real exports have: integer and
float columns, a boolean, a date, a 50-level and a 700-level category, 3-5% nulls in most
columns, and a customer id. The label depends on several kinds, so a model can learn it.
``future`` rows have dates after the training range and levels the training rows never had.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

FIRST_DAY = pd.Timestamp("2022-01-01")
DAYS = 730


def dataset_a(rows: int = 2000, seed: int = 7, start: pd.Timestamp = FIRST_DAY, unseen: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    city_levels = [f"city-{i:03d}" for i in range(700 + (50 if unseen else 0))]
    city_weights = 1.0 / np.arange(1, len(city_levels) + 1)  # Zipf-like: a long tail of rare cities
    if unseen:
        city_weights[-50:] = city_weights[:50]  # new cities appear, and often
    frame = pd.DataFrame({
        "Customer ID": [f"C{seed:02d}-{i:06d}" for i in range(rows)],
        "Signup Date": (start + pd.to_timedelta(rng.integers(0, DAYS, rows), unit="D")).strftime("%Y-%m-%d"),
        "Age": rng.integers(18, 90, rows).astype("float64"),
        "Balance": rng.gamma(2.0, 500.0, rows).round(2),
        "Store": rng.choice([f"store-{i:02d}" for i in range(50)], rows),
        "City": _cities(rng, city_levels, city_weights, rows),
        "Newsletter": rng.choice([True, False], rows, p=[0.3, 0.7]),
    })
    weekday = pd.to_datetime(frame["Signup Date"]).dt.dayofweek.to_numpy()
    score = (0.04 * (frame["Age"] - 50) + frame["Newsletter"] * 1.5 + (weekday >= 5) * 1.2
             + frame["Store"].str[-1].isin(["0", "1", "2"]) * 1.0 + rng.normal(0, 0.8, rows))
    frame["Churned"] = np.where(score > np.quantile(score, 0.88), "yes", "no")
    frame = frame.astype({"Newsletter": "object"})
    for column, share in {"Age": 0.03, "Balance": 0.05, "Store": 0.04, "City": 0.03, "Newsletter": 0.04,
                          "Signup Date": 0.03}.items():
        frame.loc[rng.choice(rows, int(share * rows), replace=False), column] = None
    return frame


def future_rows(rows: int = 20) -> pd.DataFrame:
    """Rows dated after the training range, with cities the training data never had; no label."""
    later = dataset_a(rows, seed=11, start=FIRST_DAY + pd.Timedelta(days=DAYS + 400), unseen=True)
    return later.drop(columns=["Churned"])


def _cities(rng: np.random.Generator, levels: list[str], weights: np.ndarray, rows: int) -> np.ndarray:
    """Every level at least once (when rows allow), the rest drawn with ``weights``."""
    drawn = rng.choice(levels, rows, p=weights / weights.sum())
    every = rng.permutation(levels)[:rows]
    drawn[rng.permutation(rows)[:len(every)]] = every
    return drawn


TIERS = ("bronze", "silver", "gold")


def dataset_b(rows: int = 900, seed: int = 5, start: pd.Timestamp = FIRST_DAY) -> pd.DataFrame:
    """Data set (b): a loyalty tier with three string classes, about 55/30/15 percent.

    Integer and float counts, a 12-level region, a boolean, an order date, 2-6% nulls, a
    free-text order reference (an id) and the label in the middle of the columns. The tier
    depends on spend, visits, the region, the boolean and the month, so a model can learn it.
    """
    rng = np.random.default_rng(seed)
    regions = [f"region {chr(65 + i)}" for i in range(12)]
    frame = pd.DataFrame({
        "order_ref": [f"ORD/{seed}/{i:05d}" for i in range(rows)],
        "Order Date": (start + pd.to_timedelta(rng.integers(0, DAYS, rows), unit="D")).strftime("%Y-%m-%d"),
        "Visits": rng.poisson(6, rows),
        "Spend (EUR)": rng.lognormal(4.0, 0.7, rows).round(2),
        "Region": rng.choice(regions, rows, p=np.linspace(2.0, 0.5, 12) / np.linspace(2.0, 0.5, 12).sum()),
        "Has App": rng.choice([True, False], rows, p=[0.4, 0.6]),
    })
    month = pd.to_datetime(frame["Order Date"]).dt.month.to_numpy()
    score = (np.log(frame["Spend (EUR)"]) * 1.4 + 0.15 * frame["Visits"] + frame["Has App"] * 0.8
             + frame["Region"].isin(regions[:3]) * 0.7 + np.isin(month, [11, 12]) * 0.6
             + rng.normal(0, 0.5, rows))
    cuts = np.quantile(score, [0.55, 0.85])
    tier = np.asarray(TIERS)[np.searchsorted(cuts, score)]
    frame.insert(3, "Tier", tier)
    frame = frame.astype({"Has App": "object", "Visits": "Int64"})
    for column, share in {"Visits": 0.02, "Spend (EUR)": 0.06, "Region": 0.04, "Has App": 0.03,
                          "Order Date": 0.02}.items():
        frame.loc[rng.choice(rows, int(share * rows), replace=False), column] = None
    return frame


def future_rows_b(rows: int = 300) -> pd.DataFrame:
    """Rows of data set (b) dated after its training range, labelled (predict ignores the label)."""
    return dataset_b(rows, seed=13, start=FIRST_DAY + pd.Timedelta(days=DAYS + 200))
