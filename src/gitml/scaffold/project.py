"""`gitml init`: write a new project, or bring an existing one up to the reference, keeping edits.

A new folder gets every file, `git init`, `dvc init` with the DVC settings the reference
instance uses, and a first commit. An existing one (a record of a previous `gitml init`,
or any folder) gets only what the user did not change (see :mod:`gitml.scaffold.plan`),
and nothing is committed: the user reviews the difference and commits it.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gitml import __version__
from gitml.errors import DataSourceError, UsageError
from gitml.scaffold.answers import (
    BUILT_IN,
    FILE_KINDS,
    RECORD,
    Answers,
    Record,
    built_in_task,
    check_choice,
    decide_task,
)
from gitml.scaffold.files import reference_files
from gitml.scaffold.plan import Change, dropped, new_record, plan, report
from gitml.scaffold.render import (
    data_options,
    default_option,
    infer_contract_text,
    model_options,
    render,
)

# Sources up to this size are committed to git, so CI rebuilds the pipeline from a clone with
# no DVC remote; larger ones go to DVC (`dvc add`), as GitHub refuses files over 100 MB.
GIT_MAX_BYTES = 10_000_000
# DVC settings of the reference instance: `dvc add`/`repro` stage their files in git, and
# `dvc exp run -S` composes conf/ through Hydra.
DVC_SETTINGS = {("core", "autostage"): "true", ("hydra", "enabled"): "true"}


@dataclass
class InitResult:
    """What `gitml init` did: per-file changes, and whether it made a new repository."""

    project: Path
    answers: Answers
    changes: list[Change]
    new_repository: bool
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        a = self.answers
        head = [f"gitml init {self.project}: data={a.name}, model={a.model}, task={a.task}"
                + (f", label={a.label}" if a.label else "")]
        take = f"gitml init {self.project} --take {{path}}"
        tail = (["git: new repository, DVC initialised, everything committed (git log -1)",
                 f"next: cd {self.project} && make demo && make test"]
                if self.new_repository else
                ["nothing committed: review with `git status` and `git diff`, then commit"])
        return [*head, *self.notes, *report(self.changes, take, list_created=not self.new_repository), *tail]


def init_project(dest: str | Path, data: str | Path | None = None, label: str | None = None,
                 task: str | None = None, model: str | None = None, take: tuple[str, ...] = (),
                 gitml_spec: str | None = None) -> InitResult:
    """Write or update the project in ``dest``; see the module docstring."""
    project = Path(dest).resolve()
    if project.exists() and not project.is_dir():
        raise UsageError(f"DIR '{dest}' is a file; gitml init needs a folder (new or existing).")
    record = Record.read(project) if project.is_dir() else None
    new_repository = not (project / ".git").exists()
    if new_repository:
        _check_git_identity()  # before anything is written: the first commit needs it
    answers, source = resolve_answers(project, record, data, label, task, model)
    notes = [bring_data(source, project / "data" / "external" / source.name)] if source else []
    contract = (infer_contract_text(project / "data/external" / answers.data, answers.label or "", answers.task)
                if answers.data else None)
    rendered = render(answers, {"project": project.name, "gitml_spec": gitml_spec or installed_spec()}, contract)
    unknown = sorted(set(take) - set(rendered))
    if unknown:
        raise UsageError(f"--take {', '.join(unknown)}: not a file gitml init writes.",
                         hint="name a path from gitml init's report, relative to DIR.")
    on_disk = {path: _read(project / path) for path in rendered}
    changes = plan(rendered, on_disk, record.files if record else {}, take)
    notes += [f"left {path} as it is: gitml init no longer writes it (delete it if nothing uses it)"
              for path in dropped(rendered, record.files if record else {})]
    for change in changes:
        if change.writes:
            _write(project / change.path, change.new)
    _write(project / RECORD, Record(answers, new_record(changes, record.files if record else {}),
                                    __version__).to_yaml().encode("utf-8"))
    notes += _repository(project, answers, changes, new_repository, bool(source))
    return InitResult(project, answers, changes, new_repository, notes)


def resolve_answers(project: Path, record: Record | None, data: str | Path | None, label: str | None,
                    task: str | None, model: str | None) -> tuple[Answers, Path | None]:
    """The answers (options first, then the record, then the reference's defaults) and a file to copy in."""
    base = record.answers if record else None
    reference = reference_files()
    model = check_choice("--model", model or (base.model if base else None)
                         or default_option(reference["conf/config.yaml"].decode("utf-8"), "model"),
                         model_options(reference))
    if data is None and base is not None and base.data:
        source, copy = project / "data" / "external" / base.data, None
    elif data is not None:
        source = copy = Path(data).resolve()
    else:
        if label is not None:
            raise UsageError("--label names a column of --data FILE; without --data the project uses a built-in set.")
        task = built_in_task(task or (base.task if base else None) or "binary")
        check_model_task(model, task, reference)
        return Answers(task, model, BUILT_IN[task]), None
    label = label or (base.label if base and base.data == source.name else None)
    if label is None:
        raise UsageError("--data needs --label: the column of the file that holds what to predict.")
    classes, numeric = label_values(source, label)
    if not copy and task is None and base is not None:
        task = base.task
    task = decide_task(task, label, classes, numeric)
    check_model_task(model, task, reference)
    return Answers(task, model, data_name(source, base), source.name, label), copy


def check_model_task(model: str, task: str, reference: dict[str, bytes]) -> None:
    """Refuse a scikit-learn model config whose estimator does not fit ``task`` (a classifier for
    regression, or the reverse); the torch families fit both."""
    import yaml

    from gitml.utils.targets import SKLEARN_CLASSIFIERS, SKLEARN_REGRESSORS

    node = (yaml.safe_load(reference.get(f"conf/model/{model}.yaml", b"")) or {}).get("estimator")
    while isinstance(node, dict) and isinstance(node.get("steps"), list) and node["steps"]:
        node = node["steps"][-1][-1]  # a Pipeline: its last step decides
    target = node.get("_target_") if isinstance(node, dict) else None
    wrong = SKLEARN_CLASSIFIERS if task == "regression" else SKLEARN_REGRESSORS
    if target in wrong:
        fits = [name for name in model_options(reference) if name != model]
        raise UsageError(f"--model {model} is a scikit-learn {'classifier' if task == 'regression' else 'regressor'} "
                         f"({target}), and the task is {task}.",
                         hint=f"choose a model for {task}: {'ridge, hgb_regressor or mlp' if task == 'regression' else 'logreg, hgb or mlp'} "
                              f"(options: {', '.join(fits)}).")


def data_name(source: Path, base: Answers | None) -> str:
    """The conf/data option for a data file: its snake_cased stem, never a reference option's name."""
    from gitml.data.sources import snake_case

    name = snake_case(source.stem)
    if base is not None and base.data == source.name:
        return base.name
    if not name or name in data_options(reference_files()):
        raise UsageError(f"--data '{source.name}' would make conf/data/{name}.yaml, which gitml ships already.",
                         hint="rename the file (its name becomes the data option) and run gitml init again.")
    return name


def label_values(source: Path, label: str) -> tuple[list[Any], bool]:
    """The distinct values of ``label`` in a CSV/Parquet file and whether the column is numeric."""
    import pandas as pd
    from pandas.api import types

    from gitml.data.sources import read_csv, snake_case

    kind = FILE_KINDS.get(source.suffix.lower())
    if kind is None:
        raise UsageError(f"--data '{source}': gitml reads {', '.join(FILE_KINDS)} files, not '{source.suffix}'.")
    if not source.is_file():
        raise DataSourceError(f"--data '{source}': no such file.")
    try:
        frame = read_csv(source, label) if kind == "csv" else pd.read_parquet(source)
    except Exception as exc:  # pandas and pyarrow raise many types for a bad file
        raise DataSourceError(f"--data '{source}' could not be read as {kind}: {exc}") from exc
    columns = {snake_case(str(c)): c for c in frame.columns}
    if snake_case(label) not in columns:
        raise UsageError(f"--label '{label}' is not a column of {source.name}; its columns: "
                         f"{', '.join(map(str, frame.columns))}.")
    series = frame[columns[snake_case(label)]].dropna()
    numeric = types.is_numeric_dtype(series) and not types.is_bool_dtype(series)
    return sorted(series.unique().tolist(), key=str), bool(numeric)


def bring_data(source: Path, target: Path) -> str:
    """Copy the user's file into data/external (unless it is there already); never replace other data."""
    if source == target.resolve():
        return f"data: {target.name} is in data/external already"
    if target.is_file():
        if target.read_bytes() != source.read_bytes():
            raise UsageError(f"--data: data/external/{target.name} exists and differs from '{source}'.",
                             hint="replace the file yourself (a reviewed data change) or give the new one another name.")
        return f"data: data/external/{target.name} is the same file"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    return f"data: copied {source} to data/external/{target.name}"


def installed_spec() -> str:
    """A pip requirement for the gitml running now: its source tree, wheel or git URL (PEP 610), else its version."""
    import json
    from importlib import metadata

    try:
        direct = metadata.distribution("gitml").read_text("direct_url.json")
    except metadata.PackageNotFoundError:
        direct = None
    if not direct:
        return f"gitml[serve]=={__version__}"
    info = json.loads(direct)
    url = info["url"]
    vcs = info.get("vcs_info")
    if vcs:
        url = f"{vcs['vcs']}+{url}@{vcs['commit_id']}"
    return f"gitml[serve] @ {url}"


def _read(path: Path) -> bytes | None:
    return path.read_bytes() if path.is_file() else None


def _write(path: Path, data: bytes) -> None:
    from gitml.utils.atomic import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    if path.suffix == ".sh":  # workflows run them with bash; the bit keeps `./x.sh` working too
        path.chmod(0o755)


def _repository(project: Path, answers: Answers, changes: list[Change], new: bool, copied: bool) -> list[str]:
    """git and DVC: a new repository is initialised and committed; an existing one only gets what it lacks."""
    from gitml.gitops.git import git

    if new:
        git(project, "init", "-q", "-b", "main")
    notes = [] if (project / ".dvc").is_dir() else [_init_dvc(project)]
    data = project / "data" / "external" / answers.data if answers.data else None
    if data is not None and copied and data.stat().st_size > GIT_MAX_BYTES:
        notes.append(_dvc_add(project, data))
    if new:
        paths = [c.path for c in changes if c.action != "keep"] + [RECORD, ".dvc", ".dvcignore"]
        if data is not None:  # under DVC, `dvc add` staged its .dvc file (core.autostage)
            paths += [] if data.with_name(data.name + ".dvc").is_file() else [str(data.relative_to(project))]
        git(project, "add", "--", *paths)
        git(project, "commit", "-q", "-m", f"gitml init: data={answers.name}, model={answers.model}")
    return notes


def _check_git_identity() -> None:
    import subprocess

    from gitml.errors import GitError

    found = subprocess.run(["git", "var", "GIT_COMMITTER_IDENT"], capture_output=True, text=True)
    if found.returncode != 0:
        raise GitError("git does not know who commits: gitml init makes the new repository's first commit.",
                       hint="git config --global user.name 'Your Name' && "
                            "git config --global user.email you@example.com (or set GIT_COMMITTER_NAME/EMAIL).")


def _init_dvc(project: Path) -> str:
    import logging

    from dvc.repo import Repo

    # DVC logs "You can now commit the changes to git" at INFO; gitml commits them itself.
    logging.getLogger("dvc").setLevel(logging.WARNING)
    repo = Repo.init(str(project))
    try:
        with repo.config.edit() as conf:
            for (section, key), value in DVC_SETTINGS.items():
                conf[section][key] = value
    finally:
        repo.close()
    return "dvc: initialised (" + ", ".join(f"{s}.{k}={v}" for (s, k), v in DVC_SETTINGS.items()) + ")"


def _dvc_add(project: Path, data: Path) -> str:
    from dvc.repo import Repo

    with Repo(str(project)) as repo:
        repo.add(str(data))
    return (f"data: {data.name} is over {GIT_MAX_BYTES // 1_000_000} MB, so DVC tracks it (dvc add); "
            "add a DVC remote and `dvc push` so CI and clones get it")
