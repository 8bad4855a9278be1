"""House rules a reader relies on, checked on the source: module and function size, stage layering, one bundle reader."""

from __future__ import annotations

import ast
import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "gitml"
MODULES = sorted(SRC.rglob("*.py"))
BUNDLE_FILES = ("signature.json", "metadata.json", "manifest.json", "reference.parquet",
                "reference_predictions.parquet", "MODEL_CARD.md")


def test_no_module_over_300_lines_without_a_reason_on_its_first_line():
    long = [f"{p.relative_to(SRC)} ({n} lines)" for p in MODULES
            if (n := len(p.read_text().splitlines())) > 300 and not p.read_text().startswith("# Over 300 lines: ")]
    assert long == []


def test_no_function_over_60_lines_without_a_reason_above_it():
    long = []
    for path in MODULES:
        lines = path.read_text().splitlines()
        for node in ast.walk(ast.parse("\n".join(lines))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= 60:
                first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                if not lines[first - 2].strip().startswith("# Over 60 lines: "):
                    long.append(f"{path.relative_to(SRC)}:{node.lineno} {node.name}")
    assert long == []


def test_stages_import_no_other_stage():
    imports = {p.name: re.findall(r"^\s*from gitml\.stages[.\w]* import|^\s*import gitml\.stages", p.read_text(), re.M)
               for p in (SRC / "stages").glob("*.py")}
    assert {name: found for name, found in imports.items() if found} == {}


def test_bundle_files_are_named_only_under_package():
    outside = [f"{p.relative_to(SRC)}: {name}" for p in MODULES if p.parent.name != "package"
               for name in BUNDLE_FILES if f'"{name}"' in p.read_text()]
    assert outside == []
