"""The files `gitml init` starts from: the reference instance and the package's templates.

``reference/`` in this package holds links to this repository's own conf/, dvc.yaml,
workflows and ignore files, so a new project gets exactly what this repository runs; a
built wheel carries copies of them (setuptools follows the links). Names there carry no
leading dot, because package-data globs skip dotfiles: :data:`REFERENCE` says where each
one goes. ``templates/`` holds the files a new project must have in its own version
(Makefile, README, tests), with ``{{ name }}`` placeholders.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from importlib import resources
from importlib.abc import Traversable

# package name -> path in the new project (a folder maps every file under it)
REFERENCE: dict[str, str] = {
    "conf": "conf",
    "dvc_yaml": "dvc.yaml",  # not named dvc.yaml: DVC reads every dvc.yaml in this repository
    "artifacts.yaml": "artifacts.yaml",
    "gitignore": ".gitignore",
    "dvcignore": ".dvcignore",
    # Only what the workflows need: a file such as .github/allowed_signers names this
    # repository's signers, which a new project must not trust.
    "workflows": ".github/workflows",
    "github_scripts": ".github/scripts",
    "production_README.md": "data/production/README.md",
    "constraints.txt": "requirements/constraints.txt",
}
# template name -> path in the new project
TEMPLATES: dict[str, str] = {
    "Makefile": "Makefile",
    "README.md": "README.md",
    "pytest.ini": "pytest.ini",
    "external_README.md": "data/external/README.md",
    "tests/conftest.py": "tests/conftest.py",
    "tests/data/test_contract.py": "tests/data/test_contract.py",
    "tests/model/test_model.py": "tests/model/test_model.py",
}
DATA_TEMPLATE = "data.yaml"  # conf/data/<name>.yaml for a file the user brings
PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")
SKIPPED = {"__pycache__", ".DS_Store"}


def _package() -> Traversable:
    return resources.files("gitml.scaffold")


def _walk(node: Traversable, prefix: str) -> Iterator[tuple[str, bytes]]:
    if node.is_file():
        yield prefix, node.read_bytes()
        return
    for child in sorted(node.iterdir(), key=lambda c: c.name):
        if child.name not in SKIPPED and not child.name.endswith(".pyc"):
            yield from _walk(child, f"{prefix}/{child.name}")


def reference_files() -> dict[str, bytes]:
    """Every reference file by its path in the new project."""
    root = _package() / "reference"
    files: dict[str, bytes] = {}
    for name, dest in REFERENCE.items():
        files.update(_walk(root / name, dest))
    return files


def template_text(name: str) -> str:
    return (_package() / "templates" / name).read_text(encoding="utf-8")


def fill(text: str, values: Mapping[str, str], name: str = "template") -> str:
    """Replace every ``{{ key }}``; a key without a value is a bug in the template, so it raises."""

    def value(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in values:
            raise KeyError(f"{name}: no value for placeholder '{key}'")
        return values[key]

    return PLACEHOLDER.sub(value, text)


def template_files(values: Mapping[str, str]) -> dict[str, bytes]:
    """Every template, filled, by its path in the new project."""
    return {dest: fill(template_text(name), values, name).encode("utf-8") for name, dest in TEMPLATES.items()}
