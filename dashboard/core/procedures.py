"""Read the standard procedures (预案) of a city pack: per incident kind, a checklist of steps, each with the
department responsible and an optional deadline counted from the incident's first dispatch."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from pydantic import BaseModel, ConfigDict, Field

from dashboard.core.rules import RulesError, validated_file, _line, _message

CODE = r"^[a-z0-9_]{1,64}$"


class StepSpec(BaseModel):
    """One step as procedures.yaml writes it."""

    model_config = ConfigDict(extra="forbid", strict=True)
    step: str = Field(pattern=CODE)
    title: str = Field(min_length=1, max_length=200)
    title_en: str = Field(min_length=1, max_length=200)
    department: str = Field(pattern=CODE)
    due_min: int | None = Field(None, ge=1, le=7 * 24 * 60)


class ProcedureSpec(BaseModel):
    """One incident kind's checklist."""

    model_config = ConfigDict(extra="forbid", strict=True)
    kind: str = Field(pattern=CODE)
    steps: list[StepSpec] = Field(min_length=1, max_length=50)


class ProceduresFile(BaseModel):
    """The file: ``procedures:``, a list of checklists."""

    model_config = ConfigDict(extra="forbid", strict=True)
    procedures: list[ProcedureSpec]


@dataclass(frozen=True)
class Step:
    """A step of a checklist: its code, its words in both languages, who does it, by when after dispatch."""

    step: str
    title: str
    title_en: str
    department: str
    due_min: int | None


@dataclass(frozen=True)
class Procedures:
    """The checklists by incident kind (a kind without one has none)."""

    by_kind: dict[str, tuple[Step, ...]]

    def steps(self, kind: str) -> tuple[Step, ...]:
        """Return the checklist of an incident kind (empty when the pack has none)."""
        return self.by_kind.get(kind, ())

    def step(self, kind: str, code: str) -> Step | None:
        """Return one step of a kind's checklist, or None."""
        return next((s for s in self.steps(kind) if s.step == code), None)


def load_procedures(path: str | Path, departments: Iterable[str]) -> Procedures:
    """Load and validate procedures.yaml against the city's department codes; raise RulesError naming the line of
    every problem (an unknown department, a kind or a step listed twice)."""
    path = Path(path)
    parsed, lines = validated_file(path, ProceduresFile, "procedures", _message)
    known, problems, by_kind = set(departments), [], {}
    for i, p in enumerate(parsed.procedures):
        if p.kind in by_kind:
            problems.append((_line(lines, ("procedures", i, "kind")), f"a second checklist for {p.kind!r}"))
        seen: set[str] = set()
        for j, s in enumerate(p.steps):
            at = ("procedures", i, "steps", j)
            if s.department not in known:
                problems.append((_line(lines, at + ("department",)),
                                 f"unknown department {s.department!r} (departments.yaml has no such code)"))
            if s.step in seen:
                problems.append((_line(lines, at + ("step",)), f"step {s.step!r} is listed twice"))
            seen.add(s.step)
        by_kind[p.kind] = tuple(Step(s.step, s.title, s.title_en, s.department, s.due_min) for s in p.steps)
    if problems:
        raise RulesError(path.name, problems)
    return Procedures(by_kind)
