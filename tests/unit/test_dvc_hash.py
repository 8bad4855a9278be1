"""gitml's recomputation of DVC's folder hash equals DVC's own (dvc_data), byte for byte."""

from __future__ import annotations

from pathlib import Path

from gitml.utils.dvc_hash import dir_md5, lock_out_md5, lock_params_sha256


def dvc_hash(folder: Path, odb_dir: Path) -> str:
    from dvc_data.hashfile.build import build
    from dvc_data.hashfile.db import HashFileDB
    from dvc_objects.fs import LocalFileSystem

    fs = LocalFileSystem()
    _, _, obj = build(HashFileDB(fs, str(odb_dir)), str(folder), fs, "md5")
    return str(obj.hash_info.value)


def test_dir_md5_is_dvcs_hash_of_the_folder_and_changes_with_any_byte(tmp_path):
    folder = tmp_path / "model"
    (folder / "nested").mkdir(parents=True)
    (folder / "model.json").write_text('{"family": "mlp"}\n')
    (folder / "nested/crlf.txt").write_bytes(b"line\r\nline\r\n")  # DVC 3 hashes bytes as they are
    (folder / "weights.safetensors").write_bytes(bytes(range(256)) * 40)
    expected = dvc_hash(folder, tmp_path / "odb")
    assert expected.endswith(".dir") and dir_md5(folder) == expected

    (folder / "nested/crlf.txt").write_bytes(b"line\nline\r\n")
    assert dir_md5(folder) != expected
    assert dir_md5(folder) == dvc_hash(folder, tmp_path / "odb2")


def test_lock_lookups_name_the_stage_output_and_params():
    lock = {"stages": {
        "prepare": {"params": {"params.yaml": {"data.target": "y"}}, "outs": [{"path": "data/prepared", "md5": "a.dir"}]},
        "train": {"params": {"params.yaml": {"model": {"hidden": [8]}}}, "outs": [{"path": "models/model", "md5": "b.dir"}]},
    }}
    assert lock_out_md5(lock, "train", "models/model") == "b.dir"
    assert lock_out_md5(lock, "train", "models/other") is None and lock_out_md5({}, "train", "models/model") is None
    digest = lock_params_sha256(lock)
    assert digest is not None and len(digest) == 64
    lock["stages"]["train"]["params"]["params.yaml"]["model"]["hidden"] = [16]
    assert lock_params_sha256(lock) != digest
    del lock["stages"]["prepare"]
    assert lock_params_sha256(lock) is None
