"""The audit's vocabulary: severities, evidence, findings merged by topic, and the audit result.

Used by ``audit.py`` (spec differences) and ``evidence.py`` (run-time evidence); rendered by ``render.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class Severity(str, Enum):
    """In the report's order: settings and inputs that can change results, the harness's implementation-level
    deviations from the original code (the ledger's ``deviation`` entries, in every run), cosmetic differences."""

    RESULTS = "can change results"
    IMPLEMENTATION = "implementation-level"
    COSMETIC = "cosmetic"


@dataclass(frozen=True)
class Evidence:
    run_id: str
    key: str  # spec key, tag or metric name
    value: str
    paper: str = ""  # the paper's value, for spec keys


@dataclass
class Finding:
    topic: str  # merge key: the spec key, or a named run-time check (e.g. "motion_width")
    title: str
    severity: Severity
    why: str
    evidence: list[Evidence] = field(default_factory=list)
    code: str = ""  # where in the harness's code it lives, for differences no run records (ledger deviations)

    def add(self, evidence: Evidence) -> None:
        if evidence not in self.evidence:
            self.evidence.append(evidence)


@dataclass
class Audit:
    reference: str  # the experiment file compared with, e.g. "experiments/msvd_qa.yaml"
    note: str  # e.g. "a demo: audited against the MSVD-QA configuration"
    findings: list[Finding]
    unverified: list[str]  # evidence that could not be checked (and specs read another way), and why

    def by_severity(self, severity: Severity) -> list[Finding]:
        return [f for f in self.findings if f.severity is severity]

    def topic(self, topic: str) -> Finding | None:
        return next((f for f in self.findings if f.topic == topic), None)


class Findings:
    """Findings keyed by topic, in insertion order; a topic keeps its most serious severity."""

    def __init__(self) -> None:
        self._by_topic: dict[str, Finding] = {}

    def add(self, topic: str, title: str, severity: Severity, why: str, evidence: Evidence | None = None,
            code: str = "") -> None:
        finding = self._by_topic.get(topic)
        order = list(Severity)
        if finding is None:
            finding = self._by_topic[topic] = Finding(topic, title, severity, why, code=code)
        elif order.index(severity) < order.index(finding.severity):
            finding.severity, finding.title, finding.why = severity, title, why
        if evidence is not None:
            finding.add(evidence)

    def sorted(self) -> list[Finding]:
        order = list(Severity)
        return sorted(self._by_topic.values(), key=lambda f: order.index(f.severity))
