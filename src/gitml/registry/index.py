"""The git-tag registry read with one ``git for-each-ref``, to the same state GTO computes.

GTO builds its state by asking its git backend for each tag in turn and replaying pydantic
events: 6-12 s per command at about 1,500 tags (iterative/gto#156), most of it per-tag
object reads. Every field the registry needs (tag name, the commit it points at, tagger,
time, message) is in one ``for-each-ref`` listing, so this module reads that and replays
the same rules as ``gto.base``:

- tags are GTO's (``name@vX.Y.Z``, ``name@vX.Y.Z!``, ``name#stage#N``, ``name#stage!#N``,
  ``name@deprecated``), annotated only (GTO skips lightweight tags);
- deprecations, then registrations, then stage events, each in tag-time order (ties in
  name order, as GTO's sorted tag list gives them);
- a stage event belongs to the version registered at its commit;
- ``which`` (GTO's ``find_versions_in_stage``) takes the highest semver version holding
  the stage; ``show`` gives the stage to the version assigned to it last;
- on a tie in time, the later kind wins as in GTO (a deregistration over a registration,
  an unassignment over an assignment).

``tests/unit/test_registry_index.py`` replays random histories through both and compares.
Writes still go through ``gto.api`` (the counters and checks are GTO's).
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gitml.errors import GitmlError
from gitml.gitops.git import git

# gto.constants (importing gto costs 0.8 s): a name, an optional "dir=" prefix, a semver version.
_NAME = r"[a-zA-Z0-9]([a-zA-Z0-9-/_]*[a-zA-Z0-9])?"
_FULLNAME = rf"([a-zA-Z0-9-_./]+=)?{_NAME}"
_SEMVER = (r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
           r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
           r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?")
TAG_RE = re.compile(
    rf"^(?P<artifact>{_FULLNAME})(((#(?P<stage>{_NAME})|@(?P<version>v{_SEMVER}))(?P<cancel>!?))"
    r"|@((?P<deprecated>deprecated)|(?P<created>created)))(#(?P<counter>[0-9]+))?$"
)
_SEMVER_RE = re.compile(rf"^v{_SEMVER}$")
_FIELDS = ("%(refname:strip=2)", "%(objecttype)", "%(*objectname)", "%(*committerdate:raw)", "%(taggerdate:raw)",
           "%(taggername)", "%(taggeremail:trim)", "%(contents:subject)", "%(contents:body)")  # no signature
_SEP, _END = "\x1f", "\x1e"
# gto.base priorities: history's order within one second
PRIORITY = {"deprecation": 2, "registration": 3, "deregistration": 4, "assignment": 5, "unassignment": 6}


@dataclass
class Event:
    kind: str  # one of PRIORITY's keys
    artifact: str
    tag: str
    commit: str
    time: int
    offset: int  # seconds east of UTC
    commit_time: int  # the tagged commit's: GTO's "enrichment" event of every version
    commit_offset: int = 0
    author: str = ""
    author_email: str = ""
    message: str = ""
    version: str | None = None
    stage: str | None = None

    @property
    def created_at(self) -> datetime.datetime:
        return datetime.datetime.fromtimestamp(self.time, tz=datetime.timezone(datetime.timedelta(seconds=self.offset)))


def _newest(events: list[Event]) -> Event | None:
    """GTO's ``sorted(events, key=created_at)[::-1][0]``: on a tie, the one listed last."""
    return max(reversed(events), key=lambda e: e.time, default=None) if events else None


@dataclass
class StageState:
    stage: str
    version: str
    commit: str
    events: list[Event] = field(default_factory=list)  # assignments, then unassignments, each by time

    def _ordered(self) -> list[Event]:
        return ([e for e in self.events if e.kind == "assignment"]
                + [e for e in self.events if e.kind == "unassignment"])

    @property
    def last(self) -> Event:
        newest = _newest(self._ordered())
        assert newest is not None  # a stage state exists only with an event
        return newest

    @property
    def active(self) -> bool:
        return self.last.kind == "assignment"

    @property
    def created_at(self) -> int:
        assigned = [e for e in self.events if e.kind == "assignment"]
        return (_newest(assigned) or self.last).time


@dataclass
class VersionState:
    version: str
    commit: str
    commit_time: int
    commit_offset: int
    direct: list[Event] = field(default_factory=list)  # registrations and deregistrations
    stages: dict[str, StageState] = field(default_factory=dict)

    @property
    def registered(self) -> bool:
        return any(e.kind == "registration" for e in self.direct)

    @property
    def discovered(self) -> bool:
        return not self.direct

    @property
    def active(self) -> bool:
        ordered = ([e for e in self.direct if e.kind == "registration"]
                   + [e for e in self.direct if e.kind == "deregistration"])
        newest = _newest(ordered)
        return newest.kind == "registration" if newest else True  # GTO: its commit event keeps it active

    @property
    def created_at(self) -> Event:
        """GTO's authoring event: the newest registration, else the newest stage event."""
        added = _newest([e for e in self.direct if e.kind == "registration"])
        if added:
            return added
        stage_events = [e for s in self.stages.values() for e in s.events]
        return _newest(stage_events) or _newest(self.direct) or Event(
            "commit", "", "", self.commit, self.commit_time, self.commit_offset, self.commit_time)  # GTO: the commit's

    def active_stages(self) -> list[StageState]:
        return sorted((s for s in self.stages.values() if s.active), key=lambda s: s.last.time)


@dataclass
class ArtifactState:
    name: str
    versions: list[VersionState] = field(default_factory=list)
    deprecations: list[Event] = field(default_factory=list)

    def events(self) -> list[Event]:
        return [*self.deprecations, *(e for v in self.versions for e in (*v.direct, *(
            x for s in v.stages.values() for x in s.events)))]

    @property
    def active(self) -> bool:
        """Not deprecated since its last event. GTO counts each version's commit as an event, and
        lists deprecations first, so on a tie the other event is the newer."""
        if not self.deprecations:
            return bool(self.versions)
        newest = max(e.time for e in self.deprecations)
        return any(e.time >= newest for e in self.events() if e.kind != "deprecation") or any(
            v.commit_time >= newest for v in self.versions)

    def _find(self, event: Event, version: str | None) -> VersionState:
        found = [v for v in self.versions
                 if (version is None or v.version == version) and v.commit == event.commit and not v.discovered]
        if len(found) > 1:
            raise GitmlError(f"Registry: '{self.name}' has versions {', '.join(v.version for v in found)} "
                             f"at one commit {event.commit[:10]}; GTO cannot read this either. Deregister one.")
        if found:
            return found[0]
        new = VersionState(version or event.commit, event.commit, event.commit_time, event.commit_offset)
        self.versions.append(new)
        return new

    def add(self, event: Event) -> None:
        if event.kind == "deprecation":
            self.deprecations.append(event)
        elif event.kind in ("registration", "deregistration"):
            self._find(event, event.version).direct.append(event)
        else:
            version = self._find(event, None)
            if version.discovered:
                # GTO names the version (a first lookup creates one) and then files the event under
                # a second lookup, which skips the first as "discovered": an empty twin remains
                version = VersionState(version.version, version.commit, version.commit_time, version.commit_offset)
                self.versions.append(version)
            assert event.stage is not None
            event.version = version.version
            stage = version.stages.setdefault(event.stage, StageState(event.stage, version.version, event.commit))
            stage.events.append(event)

    def active_versions(self, by: str = "semver") -> list[VersionState]:
        versions = [v for v in self.versions if v.active]
        if by == "time":
            return sorted(versions, key=lambda v: v.created_at.time)[::-1]
        valid = sorted((v for v in versions if _SEMVER_RE.match(v.version)), key=lambda v: semver_key(v.version))
        rest = sorted((v for v in versions if not _SEMVER_RE.match(v.version)), key=lambda v: v.version)
        return valid[::-1] + rest[::-1]

    def stage_holders(self, by: str = "semver") -> dict[str, StageState]:
        """Each stage's one holder: by semver as GTO's ``which``, by time as its ``show``."""
        assignments = [s for v in self.active_versions(by) for s in v.active_stages()]
        if by == "time":
            assignments = sorted(assignments, key=lambda s: s.created_at)[::-1]
        holders: dict[str, StageState] = {}
        for stage in assignments:
            holders.setdefault(stage.stage, stage)
        return holders


def semver_key(version: str) -> Any:
    import semver

    return semver.Version.parse(version[1:])


def read_tags(repo: str | Path, name: str | None = None) -> list[Event]:
    """Every annotated GTO tag in ``repo`` (of artifact ``name``) from one ``git for-each-ref``."""
    if name is None:
        patterns = ["refs/tags"]
    else:  # git matches these in its packed refs: a thousand other models' tags cost nothing
        prefix = f"refs/tags/{name.replace(':', '=')}"
        patterns = [f"{prefix}@*", f"{prefix}#*"]
    out = git(repo, "for-each-ref", "--sort=refname", f"--format={_SEP.join(_FIELDS)}{_END}", *patterns, strip=False)
    events = []
    for record in out.split(_END):
        record = record.lstrip("\n")
        if not record:
            continue
        name, kind, target, committed, date, author, email, subject, body = record.split(_SEP, 8)
        match = TAG_RE.match(name)
        if not match or kind != "tag" or not date:
            continue  # not GTO's, or lightweight (GTO skips those too)
        if match["deprecated"]:
            action = "deprecation"
        elif match["version"]:
            action = "deregistration" if match["cancel"] else "registration"
        elif match["stage"]:
            action = "unassignment" if match["cancel"] else "assignment"
        else:
            continue  # name@created: GTO reads no event from it
        events.append(Event(action, match["artifact"].replace("=", ":"), name, target, *_raw_date(date),
                            *_raw_date(committed), author, email, f"{subject}\n\n{body}".strip(),
                            match["version"], match["stage"]))
    return events


def _raw_date(raw: str) -> tuple[int, int]:
    """git's raw date ``1760000000 +0100`` as (unix seconds, seconds east of UTC)."""
    seconds, _, zone = raw.partition(" ")
    sign = -1 if zone.startswith("-") else 1
    return int(seconds or 0), sign * (int(zone[1:3] or 0) * 3600 + int(zone[3:5] or 0) * 60)


def read_registry(repo: str | Path, name: str | None = None) -> dict[str, ArtifactState]:
    """The registry's state, every artifact (or only ``name``), as GTO would compute it."""
    groups: tuple[tuple[str, ...], ...] = (("deprecation",), ("registration", "deregistration"),
                                           ("assignment", "unassignment"))
    events = [e for e in read_tags(repo, name) if name is None or e.artifact == name]
    state: dict[str, ArtifactState] = {}
    for kinds in groups:
        for event in sorted((e for e in events if e.kind in kinds), key=lambda e: e.time):
            state.setdefault(event.artifact, ArtifactState(event.artifact)).add(event)
    return state
