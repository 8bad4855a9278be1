"""Compare a rendered project with the files on disk and decide, per file, what to do.

The one rule: a file the user changed is never overwritten. A file counts as the user's
when it differs from what `gitml init` last wrote there (the record's sha256), or when no
record names it (a repository `gitml init` did not write). Such a file is kept and the
difference is shown as a unified diff; ``--take PATH`` takes the new version anyway.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from gitml.scaffold.answers import sha256

CREATE, SAME, UPDATE, KEEP, TAKE = "create", "same", "update", "keep", "take"
WRITES = (CREATE, UPDATE, TAKE)
VERBS = {
    CREATE: "created", SAME: "unchanged", UPDATE: "updated", KEEP: "kept", TAKE: "replaced",
}
WHY = {
    UPDATE: "as gitml init wrote it, so it takes the new version",
    KEEP: "your version; the new one differs",
    TAKE: "your version, replaced as --take asked",
}


@dataclass(frozen=True)
class Change:
    """What happens to one file: ``action`` is one of create, same, update, keep, take."""

    path: str
    action: str
    new: bytes
    old: bytes | None = None

    @property
    def writes(self) -> bool:
        return self.action in WRITES

    def diff(self) -> str:
        """The unified diff from the file on disk to the new version ('' when nothing differs)."""
        if self.old is None or self.old == self.new:
            return ""
        try:
            old, new = self.old.decode("utf-8"), self.new.decode("utf-8")
        except UnicodeDecodeError:
            return f"Binary files {self.path} differ\n"
        lines = difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True),
                                     f"{self.path} (yours)", f"{self.path} (gitml init)")
        return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n"
                       for line in lines)


def decide(path: str, new: bytes, old: bytes | None, recorded: str | None, take: bool) -> Change:
    """The action for one file: ``old`` is on disk (None: absent), ``recorded`` its sha256 as last written."""
    if old is None:
        return Change(path, CREATE, new)
    if old == new:
        return Change(path, SAME, new, old)
    if take:
        return Change(path, TAKE, new, old)
    if recorded is not None and recorded == sha256(old):
        return Change(path, UPDATE, new, old)
    return Change(path, KEEP, new, old)


def plan(rendered: Mapping[str, bytes], on_disk: Mapping[str, bytes | None],
         recorded: Mapping[str, str], take: Iterable[str] = ()) -> list[Change]:
    """One :class:`Change` per rendered file, in path order."""
    wanted = set(take)
    return [decide(path, new, on_disk.get(path), recorded.get(path), path in wanted)
            for path, new in sorted(rendered.items())]


def dropped(rendered: Mapping[str, bytes], recorded: Mapping[str, str]) -> list[str]:
    """Files an earlier `gitml init` wrote that it no longer writes (left on disk, dropped from the record)."""
    return sorted(set(recorded) - set(rendered))


def new_record(changes: Iterable[Change], recorded: Mapping[str, str]) -> dict[str, str]:
    """The sha256 to record per file: what is now on disk, except that a kept file keeps its old entry.

    A kept file's entry stays what gitml init last wrote, so it still counts as edited on the
    next run; a kept file gitml init never wrote stays unrecorded (it stays the user's).
    """
    files: dict[str, str] = {}
    for change in changes:
        if change.action != KEEP:
            files[change.path] = sha256(change.new)
        elif change.path in recorded:
            files[change.path] = recorded[change.path]
    return files


def report(changes: list[Change], take_hint: str, list_created: bool = True) -> list[str]:
    """What happened, one line per file that is not unchanged, with a diff under each changed one.

    ``take_hint`` is the command that takes the new version of a kept file, with ``{path}``;
    a new project's created files are only counted (``list_created=False``).
    """
    lines: list[str] = []
    for change in changes:
        if change.action == SAME or (change.action == CREATE and not list_created):
            continue
        why = f" ({WHY[change.action]})" if change.action in WHY else ""
        lines.append(f"{VERBS[change.action]:>9}  {change.path}{why}")
        if change.action != CREATE:
            lines.extend("      " + line for line in change.diff().splitlines())
        if change.action == KEEP:
            lines.append(f"           to take the new version: {take_hint.format(path=change.path)}")
    counts = {verb: sum(c.action == action for c in changes) for action, verb in VERBS.items()}
    lines.append(", ".join(f"{n} {verb}" for verb, n in counts.items() if n))
    return lines
