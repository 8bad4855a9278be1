"""Rules for ``trainer.stream`` the schema's types cannot express (see :mod:`gitml.config.rules`).

Whether ``auto`` streams depends on the prepared data, so a family that cannot stream is
refused here only when the config asks for streaming outright; with ``auto`` the train stage
refuses it once the footer of the training features says they exceed the budget
(:func:`gitml.train.rows.streaming_plan`).
"""

from __future__ import annotations

from gitml.config.checks import Problems, at_least
from gitml.config.schema import Config, StreamMode

KEY = "trainer.stream"
# The families whose models offer fit_stream (tests/unit/test_train_stream.py checks the list):
# gitml's own trainer reads the row groups. A scikit-learn estimator's fit takes one whole array.
STREAMING_FAMILIES = ("torch_mlp", "torch_module")


def stream_problems(cfg: Config) -> Problems:
    """A positive budget and buffer; ``always`` only for a family that streams."""
    stream = cfg.trainer.stream
    problems = at_least(f"{KEY}.max_memory_mb", stream.max_memory_mb, 1)
    problems += at_least(f"{KEY}.shuffle_row_groups", stream.shuffle_row_groups, 1)
    family = getattr(cfg.model, "family", None)
    if stream.mode is StreamMode.always and family not in STREAMING_FAMILIES:
        problems.append((f"{KEY}.mode", f"'always' streams the training rows, but model.family {family!r} fits "
                         f"in memory only (streaming families: {', '.join(STREAMING_FAMILIES)}). Use auto or "
                         "never, or a torch family (model=mlp)."))
    return problems
