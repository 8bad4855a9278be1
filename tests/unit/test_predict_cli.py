"""`gitml predict`: output format from the extension, clear input errors, the label ignored, few imports."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from gitml.package.bundle import load_bundle
from tests.tiny_bundles import FEATURES, rows, tiny_bundle

OUTPUT_COLUMNS = ["prediction", "proba_0", "proba_1"]


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory) -> Path:
    # torch_mlp: the family whose loaded model must not import torch (see the import test)
    return tiny_bundle(tmp_path_factory.mktemp("predict") / "bundle", family="torch_mlp")


@pytest.fixture
def predict(bundle_dir, gitml_main, tmp_path):
    def run(source: Path, out: Path, *options: str, check: bool = False):
        return gitml_main("predict", "--bundle", bundle_dir, source, "-o", out, *options, cwd=tmp_path, check=check)

    return run


def _read(path: Path) -> pd.DataFrame:
    readers = {".csv": pd.read_csv, ".parquet": pd.read_parquet,
               ".json": lambda p: pd.DataFrame(json.loads(p.read_text())),
               ".jsonl": lambda p: pd.read_json(p, lines=True)}
    return readers[path.suffix](path)


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".json", ".jsonl"])
def test_the_output_format_follows_the_extension_across_chunks(bundle_dir, predict, tmp_path, suffix):
    source, out = tmp_path / "rows.csv", tmp_path / f"scored{suffix}"
    rows(7).to_csv(source, index=False)
    done = predict(source, out, "--chunk-rows", "3", check=True)
    assert "wrote 7 predictions" in done.stdout
    if suffix == ".parquet":
        assert out.read_bytes()[:4] == b"PAR1"
    else:
        assert not out.read_bytes().startswith(b"PAR1")
    scored = _read(out)
    expected = load_bundle(bundle_dir).predict(rows(7))
    assert list(scored.columns) == OUTPUT_COLUMNS and len(scored) == 7
    assert (scored["prediction"].to_numpy() == expected["prediction"].to_numpy()).all()
    assert abs(scored["proba_1"].to_numpy() - expected["proba_1"].to_numpy()).max() < 1e-6


def test_an_unknown_output_extension_is_refused_before_the_bundle_is_read(gitml_main, tmp_path):
    source = tmp_path / "rows.csv"
    rows(2).to_csv(source, index=False)
    result = gitml_main("predict", "--bundle", tmp_path / "no-such-bundle", source, "-o", tmp_path / "scored.txt",
                        cwd=tmp_path, check=False)
    assert result.returncode == 2, result.stderr
    assert "unknown extension '.txt'" in result.stderr and ".csv, .parquet, .pq, .json, .jsonl" in result.stderr
    assert not (tmp_path / "scored.txt").exists()


def _write(path: Path, content: bytes | None) -> Path:
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)
    return path


PARQUET = rows(2).to_parquet()
BAD_INPUTS = {  # file name, content (None: a folder), what the error says
    "missing": ("absent.csv", "skip", "does not exist"),
    "folder": ("rows.csv", None, "is a folder"),
    "empty": ("empty.csv", b"", "is empty (0 bytes)"),
    "binary": ("blob.csv", bytes(range(256)) * 8, "NUL byte (binary data)"),
    "latin-1": ("latin.csv", "x0,x1,x2,x3\ncafé,1,2,3\n".encode("latin-1"), "is not UTF-8"),
    "parquet named csv": ("rows.csv", PARQUET, "is a Parquet file named .csv"),
    "text named parquet": ("rows.parquet", b"x0,x1,x2,x3\n1,2,3,4\n", "is not a Parquet file"),
    "truncated parquet": ("rows.parquet", PARQUET[: len(PARQUET) // 2] + b"PAR1", "Cannot read"),
    "unknown extension": ("rows.xlsx", b"x0\n1\n", "unknown extension '.xlsx'"),
    "ragged csv": ("ragged.csv", b"x0,x1,x2,x3\n1,2,3,4\n1,2,3,4,5\n", "Expected 4 fields in line 3"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_a_bad_input_file_is_one_error_with_a_fix_and_no_traceback(predict, tmp_path, case):
    name, content, says = BAD_INPUTS[case]
    source = tmp_path / name if content == "skip" else _write(tmp_path / name, content)
    out = tmp_path / "scored.csv"
    result = predict(source, out)
    assert result.returncode == 1, result.stderr
    assert says in result.stderr and "gitml: fix:" in result.stderr
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr
    assert not out.exists()


def test_a_header_only_csv_gives_an_empty_output_with_the_columns(predict, tmp_path, caplog):
    source, out = tmp_path / "header.csv", tmp_path / "scored.parquet"
    source.write_text(",".join(FEATURES) + "\n")
    with caplog.at_level(logging.INFO):
        done = predict(source, out, check=True)
    assert "wrote 0 predictions" in done.stdout and "has a header but no rows" in caplog.text
    scored = pd.read_parquet(out)
    assert list(scored.columns) == OUTPUT_COLUMNS and len(scored) == 0
    assert str(scored["proba_1"].dtype) == "float64"


def test_a_header_only_csv_with_the_wrong_columns_is_refused(predict, tmp_path):
    source, out = tmp_path / "header.csv", tmp_path / "scored.csv"
    source.write_text("x0,x1,x2,surprise\n")
    result = predict(source, out)
    assert result.returncode == 1
    assert "x3: missing column" in result.stderr and "surprise: unexpected column" in result.stderr
    assert not out.exists()


def test_an_empty_parquet_file_gives_an_empty_output(predict, tmp_path):
    source, out = tmp_path / "none.parquet", tmp_path / "scored.jsonl"
    rows(3).head(0).to_parquet(source)
    assert "wrote 0 predictions" in predict(source, out, check=True).stdout
    assert out.read_text() == ""


def test_the_label_column_is_ignored_with_one_note_and_other_extra_columns_are_refused(predict, tmp_path, caplog):
    labelled, out = tmp_path / "labelled.csv", tmp_path / "scored.csv"
    rows(5).assign(y=[0, 1, 0, 1, 1]).to_csv(labelled, index=False)
    with caplog.at_level(logging.INFO):
        done = predict(labelled, out, "--chunk-rows", "2", "--keep-columns", check=True)
    assert "wrote 5 predictions" in done.stdout
    notes = [r.getMessage() for r in caplog.records if "ignoring column 'y'" in r.getMessage()]
    assert len(notes) == 1 and "label" in notes[0]
    assert list(pd.read_csv(out).columns) == [*FEATURES, *OUTPUT_COLUMNS]

    extra = tmp_path / "extra.csv"
    rows(2).assign(surprise=1).to_csv(extra, index=False)
    result = predict(extra, out)
    assert result.returncode == 1 and "surprise: unexpected column" in result.stderr


def test_invalid_rows_name_the_column_and_the_file_row_and_write_nothing(predict, tmp_path):
    frame = rows(6).astype({"x1": object})
    frame.loc[4, "x1"] = "big"
    source, out = tmp_path / "bad.csv", tmp_path / "scored.csv"
    frame.to_csv(source, index=False)
    result = predict(source, out, "--chunk-rows", "2")
    assert result.returncode == 1 and "x1: expected a number" in result.stderr and "4" in result.stderr
    assert not out.exists()


def test_predicting_a_torch_mlp_bundle_imports_no_torch_scikit_learn_or_scipy(bundle_dir, tmp_path):
    """What keeps `gitml predict` on a few rows near a second: none of the heavy libraries load."""
    source = tmp_path / "rows.csv"
    rows(5).to_csv(source, index=False)
    code = ("import sys; from gitml import api; "
            f"assert api.predict({str(bundle_dir)!r}, {str(source)!r}, {str(tmp_path / 'out.csv')!r}) == 5; "
            "print(sorted(m for m in ('torch', 'sklearn', 'scipy', 'fastapi', 'hydra') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "[]"


@pytest.fixture(scope="module")
def regression_dir(tmp_path_factory) -> Path:
    return tiny_bundle(tmp_path_factory.mktemp("predict-regression") / "bundle", family="torch_mlp", regression=True)


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_a_regression_bundle_writes_the_predicted_number(regression_dir, gitml_main, tmp_path, suffix):
    source, out = tmp_path / "rows.csv", tmp_path / f"scored{suffix}"
    rows(7).assign(y=1.0).to_csv(source, index=False)  # the label column is ignored, as for a classifier
    done = gitml_main("predict", "--bundle", regression_dir, source, "-o", out, "--chunk-rows", "3", cwd=tmp_path)
    assert "wrote 7 predictions" in done.stdout
    scored = _read(out)
    expected = load_bundle(regression_dir).predict(rows(7))["prediction"]
    assert list(scored.columns) == ["prediction"] and str(scored["prediction"].dtype) == "float64"
    # float32 inside the network: a CSV round trip of the inputs may move the last float32 digit
    assert expected.nunique() == 7 and (abs(scored["prediction"] - expected) / abs(expected)).max() < 1e-6


def test_a_regression_bundle_on_a_header_only_file_writes_a_float_column(regression_dir, gitml_main, tmp_path):
    source, out = tmp_path / "header.csv", tmp_path / "scored.parquet"
    source.write_text(",".join(FEATURES) + "\n")
    done = gitml_main("predict", "--bundle", regression_dir, source, "-o", out, "--keep-columns", cwd=tmp_path)
    assert "wrote 0 predictions" in done.stdout
    scored = pd.read_parquet(out)
    assert list(scored.columns) == [*FEATURES, "prediction"] and len(scored) == 0
    assert str(scored["prediction"].dtype) == "float64"
