"""The ledger: every way the harness differs from the original code, and the original's quirks it keeps, as data.

Entries live in ``ledger.yaml``: an id (the original's bug number B1-B44 as numbered in ``docs/original.md``, a
section of that document for a quirk without a number, or D1, D2, ... for the harness's own implementation-level
deviations), a title, a status, and where in the harness it lives. Statuses:

- ``kept``: an original quirk reproduced on purpose, because the paper's numbers were produced with it;
- ``deviation``: the harness does something differently from the original code at the implementation level
  (initial weights, data order, float rounding, ...). These are not settings, so no spec shows them: the
  fidelity audit lists each one as a finding (``audit.py``), with its ``effect`` on the numbers, the run-time
  ``evidence`` a stage records (stage -> tags), and ``unless`` (stage -> {tag: value}) where a run's tag shows
  the deviation did not apply;
- ``fixed``: an original bug the harness does not have (with the original's numbers where the fix is faithful).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Literal

import yaml

from dualvgr.report.collect import TRAIN_STAGE, UPSTREAM_STAGES

Status = Literal["kept", "deviation", "fixed"]
STATUSES = ("kept", "deviation", "fixed")  # also the report's order
EVIDENCE_STAGES = (TRAIN_STAGE, *UPSTREAM_STAGES)  # the runs a reported seed has


@dataclass(frozen=True)
class LedgerEntry:
    bug: str  # "B25", "§4.1" for a quirk without a B-number, "D1" for an implementation-level deviation
    title: str
    status: Status
    where: str  # harness location(s): "dualvgr/x.py, dualvgr/y.py (spec.key)"
    effect: str = ""  # deviations: how it can change the numbers
    evidence: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (stage, tags that record it)
    unless: tuple[tuple[str, str, str], ...] = ()  # (stage, tag, value): a run whose tag has the value is exempt

    @property
    def paths(self) -> tuple[str, ...]:
        """The file or folder paths named in ``where`` (parenthesised remarks left out)."""
        text = self.where
        while "(" in text and ")" in text:
            start = text.index("(")
            text = text[:start] + text[text.index(")", start) + 1:]
        return tuple(part.strip() for part in text.split(",") if part.strip())


def _stages(raw: dict, field: str, bug: str) -> dict:
    value = raw.get(field) or {}
    unknown = [stage for stage in value if stage not in EVIDENCE_STAGES]
    if not isinstance(value, dict) or unknown:
        raise ValueError(f"ledger.yaml: {bug}'s {field} must map stages ({', '.join(EVIDENCE_STAGES)}) to tags, "
                         f"got {value!r}")
    return value


def parse_entry(raw: dict) -> LedgerEntry:
    bug = str(raw["bug"])
    evidence = _stages(raw, "evidence", bug)
    unless = _stages(raw, "unless", bug)
    entry = LedgerEntry(
        bug=bug, title=raw["title"], status=raw["status"], where=raw["where"], effect=raw.get("effect", ""),
        evidence=tuple((stage, tuple(tags)) for stage, tags in evidence.items()),
        unless=tuple((stage, tag, str(value)) for stage, tags in unless.items() for tag, value in tags.items()),
    )
    if entry.status not in STATUSES:
        raise ValueError(f"ledger.yaml: {entry.bug} has status {entry.status!r}, expected one of {STATUSES}")
    if entry.status == "deviation" and not entry.effect:
        raise ValueError(f"ledger.yaml: deviation {entry.bug} needs an effect (how it can change the numbers)")
    return entry


@lru_cache(maxsize=1)
def ledger() -> tuple[LedgerEntry, ...]:
    """Kept quirks first, then deviations, then fixed bugs, each in the file's order."""
    text = resources.files("dualvgr.report").joinpath("ledger.yaml").read_text(encoding="utf-8")
    entries = [parse_entry(raw) for raw in yaml.safe_load(text)["entries"]]
    return tuple(sorted(entries, key=lambda e: STATUSES.index(e.status)))  # stable: file order within each


def deviations() -> tuple[LedgerEntry, ...]:
    return tuple(entry for entry in ledger() if entry.status == "deviation")
