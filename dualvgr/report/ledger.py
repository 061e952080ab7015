"""The ledger: the original code's bugs the harness fixes and the quirks it keeps on purpose, as data.

Entries live in ``ledger.yaml`` (bug number from ``../shared/reference/dualvgr-original.md`` §5, or the section
for a quirk without one, e.g. §4.1 "HSIC summed over the batch"; title; ``fixed`` or ``kept``; where in the
harness). The report renders them so a reader sees which differences from the original code are deliberate.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Literal

import yaml

Status = Literal["fixed", "kept"]
STATUSES = ("fixed", "kept")


@dataclass(frozen=True)
class LedgerEntry:
    bug: str  # "B25", or "§4.1" for a quirk without a B-number
    title: str
    status: Status
    where: str  # harness location(s): "dualvgr/x.py, dualvgr/y.py (spec.key)"

    @property
    def paths(self) -> tuple[str, ...]:
        """The file or folder paths named in ``where`` (parenthesised remarks left out)."""
        text = self.where
        while "(" in text and ")" in text:
            start = text.index("(")
            text = text[:start] + text[text.index(")", start) + 1:]
        return tuple(part.strip() for part in text.split(",") if part.strip())


@lru_cache(maxsize=1)
def ledger() -> tuple[LedgerEntry, ...]:
    """Kept quirks first, then fixed bugs, each in the file's order."""
    text = resources.files("dualvgr.report").joinpath("ledger.yaml").read_text(encoding="utf-8")
    entries = []
    for raw in yaml.safe_load(text)["entries"]:
        entry = LedgerEntry(bug=str(raw["bug"]), title=raw["title"], status=raw["status"], where=raw["where"])
        if entry.status not in STATUSES:
            raise ValueError(f"ledger.yaml: {entry.bug} has status {entry.status!r}, expected one of {STATUSES}")
        entries.append(entry)
    return tuple(sorted(entries, key=lambda e: e.status != "kept"))  # stable: file order within each
