"""gitml.utils.yaml_blocks: entries compared as text where the layout allows, as data always."""

from __future__ import annotations

import pytest
import yaml

from gitml.utils.yaml_blocks import children, entry_text, same, without_section

LOCK = b"""schema: '2.0'
stages:
  train@a:
    cmd: gitml train --model a
      --out models/a
    outs:
    - path: models/a
      md5: 1
  # a comment between entries
  train@b:
    cmd: gitml train --model b
other: 1
"""


def test_entries_are_cut_as_text_and_read_as_yaml():
    found = children(LOCK, "stages", "dvc.lock")
    assert list(found) == ["train@a", "train@b"]
    assert all(block.raw is not None for block in found.values())  # no parse needed to cut them
    assert found["train@a"].value() == yaml.safe_load(LOCK)["stages"]["train@a"]
    assert found["train@b"].value() == {"cmd": "gitml train --model b"}


def test_a_change_of_formatting_alone_is_no_change_and_a_change_of_value_is():
    reformatted = LOCK.replace(b"      md5: 1", b"      md5: 0x1")  # the same integer
    changed = LOCK.replace(b"md5: 1", b"md5: 2")
    base = children(LOCK, "stages", "base")
    assert same(children(reformatted, "stages", "head")["train@a"], base["train@a"])
    assert not same(children(changed, "stages", "head")["train@a"], base["train@a"])
    assert same(None, None) and not same(None, base["train@a"])


@pytest.mark.parametrize("text", [
    b"stages: {train@a: {cmd: x}, train@b: {cmd: y}}\n",  # flow style
    b"stages:\n    train@a:\n      cmd: x\n    train@b:\n      cmd: y\n",  # four-space indentation
    b"stages:\n  train@a: {cmd: x}\n  train@b:\n    cmd: y\n",  # an entry's value on its key's line
    b"stages:\n  train@a:\n    cmd: &c x\n  train@b:\n    cmd: *c\n",  # an alias of another entry's anchor
])
def test_another_layout_is_parsed_whole_with_the_same_answer(text: bytes):
    found = children(text, "stages", "dvc.lock")
    assert {name: block.value() for name, block in found.items()} == yaml.safe_load(text)["stages"]
    assert all(block.raw is None for block in found.values())


def test_no_such_key_or_no_file_is_no_entry():
    assert children(b"schema: '2.0'\n", "stages", "dvc.lock") == {}
    assert children(None, "stages", "dvc.lock") == {}


def test_one_entry_and_the_top_level_without_the_section():
    """What a reader of one model's section in a params.yaml of many needs."""
    params = b"data:\n  target: y\nmodels:\n  a:\n    trainer:\n      epochs: 3\n  b:\n    trainer:\n      epochs: 4\nserve:\n  port: 1\n"
    assert yaml.safe_load(entry_text(params, "models", "b")) == {"b": {"trainer": {"epochs": 4}}}
    assert entry_text(params, "models", "zz") is None
    assert yaml.safe_load(without_section(params, "models")) == {"data": {"target": "y"}, "serve": {"port": 1}}
    assert without_section(b"data: 1\n", "models") == b"data: 1\n"
    assert without_section(b"models: {a: 1}\n", "models") is None  # another layout: parse it whole
