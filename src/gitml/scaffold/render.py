"""Render a whole project in memory: path -> bytes, ready to be compared with what is on disk.

The reference files are taken as they are, except ``conf/config.yaml``, whose defaults
list names the project's data and model options (its comments and every other line stay
the reference's). params.yaml is composed from the rendered conf/ exactly as
`gitml config compose` would.
"""

from __future__ import annotations

import json
import re
import tempfile
from functools import partial
from pathlib import Path

from gitml import __version__
from gitml.scaffold.answers import Answers, task_phrase
from gitml.scaffold.files import DATA_TEMPLATE, fill, reference_files, template_files, template_text

CONFIG = "conf/config.yaml"


def data_options(files: dict[str, bytes]) -> list[str]:
    return sorted(Path(p).stem for p in files if p.startswith("conf/data/") and p.endswith(".yaml"))


def model_options(files: dict[str, bytes]) -> list[str]:
    return sorted(Path(p).stem for p in files if p.startswith("conf/model/") and p.endswith(".yaml"))


def default_option(config_text: str, group: str) -> str:
    """The option ``group`` selects in a config.yaml defaults list (``  - model: mlp``)."""
    found = re.search(rf"^\s*-\s*{group}:\s*(\w+)", config_text, re.MULTILINE)
    if found is None:
        raise ValueError(f"{CONFIG} of the reference instance selects no '{group}' option")
    return found.group(1)


def select_options(config_text: str, choices: dict[str, str]) -> str:
    """``config_text`` with each defaults-list group selecting the option in ``choices``."""

    def swap(match: re.Match[str], option: str) -> str:
        head, old, gap = match.groups()
        # Padded to the reference option's width, so the comments after it stay in line.
        return head + (option.ljust(len(old + gap) - 1) + " " if gap else option)

    for group, option in choices.items():
        default_option(config_text, group)  # raises when the reference lost the line
        config_text = re.sub(rf"^(\s*-\s*{group}:\s*)(\w+)( *)", partial(swap, option=option),
                             config_text, count=1, flags=re.MULTILINE)
    return config_text


def data_config(answers: Answers, contract: str) -> str:
    from gitml.data.sources import snake_case

    assert answers.data and answers.label, "a data config needs a data file and its label"
    return fill(template_text(DATA_TEMPLATE), {
        "name": answers.name, "file": answers.data, "kind": answers.kind, "task": answers.task,
        "task_phrase": task_phrase(answers.task),
        "target": snake_case(answers.label), "label": json.dumps(answers.label),
        "path": json.dumps("${paths.external}/" + answers.data),
        "contract": json.dumps("${paths.external}/" + Path(contract).name),
    }, DATA_TEMPLATE)


def contract_path(answers: Answers) -> str:
    return f"data/external/{answers.name}.schema.yaml"


def infer_contract_text(source: Path, label: str, task: str | None = None) -> str:
    """The contract `gitml schema infer --task TASK` writes for ``source``, as text."""
    from gitml.data.infer import infer_contract_file

    with tempfile.TemporaryDirectory(prefix="gitml-init-") as tmp:
        return infer_contract_file(source, Path(tmp) / "contract.yaml", label, task=task).read_text(encoding="utf-8")


def compose_params(files: dict[str, bytes]) -> bytes:
    """params.yaml for the rendered conf/, as `gitml config compose` (no overrides) writes it."""
    from gitml.api import compose_params as compose

    with tempfile.TemporaryDirectory(prefix="gitml-init-") as tmp:
        for path, data in files.items():
            if path.startswith("conf/"):
                target = Path(tmp) / path
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
        return compose(Path(tmp) / "conf", (), params_file=None).encode("utf-8")


def render(answers: Answers, values: dict[str, str], contract: str | None = None) -> dict[str, bytes]:
    """Every file of the project, by path. ``contract`` is the inferred contract's text for a data file."""
    files = reference_files()
    files[CONFIG] = select_options(files[CONFIG].decode("utf-8"), {
        "data": answers.name, "model": answers.model,
    }).encode("utf-8")
    if answers.data:
        assert contract is not None, "a data file needs its contract"
        files[contract_path(answers)] = contract.encode("utf-8")
        files[f"conf/data/{answers.name}.yaml"] = data_config(answers, contract_path(answers)).encode("utf-8")
    files.update(template_files({"gitml_version": __version__, **values, **template_values(answers)}))
    files["params.yaml"] = compose_params(files)
    return dict(sorted(files.items()))


def template_values(answers: Answers) -> dict[str, str]:
    source = f"`data/external/{answers.data}`" if answers.data else f"scikit-learn's built-in `{answers.name}` set"
    return {
        "task": answers.task, "task_phrase": task_phrase(answers.task), "model": answers.model, "data_name": answers.name,
        "source": source, "label": answers.label or "target",
    }
