"""What `gitml init` was asked for, checked against what the pipeline can do.

The answers are recorded in the new project (:data:`RECORD`) with a hash of every file as
written, so a later `gitml init` renders the same project again and can tell the user's
edits from its own files.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gitml.data.task import MAX_CLASSES, TASKS
from gitml.errors import ConfigError, UsageError

RECORD = ".gitml-init.yaml"
BUILT_IN = {"binary": "breast_cancer", "multiclass": "wine", "regression": "diabetes"}  # data with no file given
FILE_KINDS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
RECORD_HEADER = (
    "# Written by `gitml init`: the answers it was given and the sha256 of each file as it\n"
    "# wrote it, so that `gitml init` run again keeps every file you changed. Commit it.\n"
)


@dataclass(frozen=True)
class Answers:
    """One project's choices; ``data`` is the source file's name under data/external (None: built-in)."""

    task: str
    model: str
    name: str  # the conf/data option
    data: str | None = None
    label: str | None = None

    @property
    def kind(self) -> str:
        return FILE_KINDS[Path(self.data or "").suffix.lower()]


@dataclass
class Record:
    answers: Answers
    files: dict[str, str] = field(default_factory=dict)  # path -> sha256 as written
    gitml: str = ""

    def to_yaml(self) -> str:
        import yaml

        body = {"gitml": self.gitml, "answers": asdict(self.answers), "files": dict(sorted(self.files.items()))}
        return RECORD_HEADER + yaml.safe_dump(body, sort_keys=False)

    @classmethod
    def read(cls, project: Path) -> Record | None:
        """The project's record, or None when `gitml init` never ran there."""
        import yaml

        path = project / RECORD
        if not path.is_file():
            return None
        try:
            data: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
            return cls(Answers(**data["answers"]), {str(k): str(v) for k, v in data["files"].items()},
                       str(data.get("gitml", "")))
        except (yaml.YAMLError, KeyError, TypeError) as exc:
            raise ConfigError(str(path), None, f"not a record `gitml init` can read ({exc}).",
                              hint=f"restore it from git (`git checkout -- {RECORD}`) or delete it: "
                                   "every existing file then counts as yours.") from exc


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_choice(option: str, value: str, allowed: list[str] | tuple[str, ...]) -> str:
    if value not in allowed:
        raise UsageError(f"{option} '{value}' is not one of: {', '.join(allowed)}.")
    return value


def decide_task(requested: str | None, label: str, classes: list[Any], numeric: bool) -> str:
    """The task for a label with these distinct values; refuse what the pipeline cannot train.

    Rule when none is requested (gitml.data.task's): a numeric label with fractions or more
    than :data:`MAX_CLASSES` values is a quantity (regression); 2 classes are binary, more multiclass.
    """
    if requested is not None:
        check_choice("--task", requested, TASKS)
    quantity = numeric and (len(classes) > MAX_CLASSES or any(float(c) % 1 for c in classes))
    task = requested or ("regression" if quantity else "binary" if len(classes) == 2 else "multiclass")
    if task == "regression":
        if not numeric:
            raise UsageError(f"--task regression needs a numeric label; '{label}' holds text such as "
                             f"{', '.join(map(str, classes[:3]))}.",
                             hint="pass --task binary or multiclass, or another --label.")
        return task
    if len(classes) < 2 or (task == "binary" and len(classes) != 2) or (task == "multiclass" and len(classes) < 3):
        raise UsageError(
            f"--task {task} needs {'exactly 2' if task == 'binary' else 'at least 3'} classes; "
            f"label '{label}' has {len(classes)}: {', '.join(map(str, classes[:10]))}.",
            hint="pass the --task that matches the label column, or another --label.",
        )
    return task


def built_in_task(requested: str) -> str:
    """The task of a project on a built-in set (scikit-learn ships one set for each task)."""
    return check_choice("--task", requested, TASKS)


def task_phrase(task: str) -> str:
    """``binary classification``, ``multiclass classification`` or ``regression``: for the README and comments."""
    return task if task == "regression" else f"{task} classification"
