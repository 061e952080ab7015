"""Statistics over seeds and the verdict against the paper's number.

A reproduction is n train runs of one configuration that differ only by seed. For each accuracy (in points,
i.e. %) the report gives mean, sample std (ddof=1) and a two-sided 95% confidence interval for the mean from
Student's t with n-1 degrees of freedom: mean ± t(0.975, n-1)·std/√n. With n=1 there is no std and no interval.

Verdict (issue 5): *reproduced* when the paper's value lies inside the interval, or when |mean - paper| is within
the spec's tolerance (``paper.tolerance``, default 1.0 point); otherwise *below* or *above*. With n=1 only the
tolerance decides, and the verdict says so. A demo (``paper.table: none``) is *not comparable*.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum
from typing import Iterable

from scipy import stats as scipy_stats

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Summary:
    """Mean, sample std and t-interval of n values (points)."""

    n: int
    mean: float
    std: float | None  # ddof=1; None for n=1
    ci_low: float | None  # None for n=1
    ci_high: float | None
    t: float | None  # the t quantile used
    confidence: float = CONFIDENCE

    @property
    def half_width(self) -> float | None:
        return None if self.ci_low is None else (self.ci_high - self.ci_low) / 2

    def mean_std(self, digits: int = 2) -> str:
        """``39.12 ± 0.45`` (``39.12`` for n=1)."""
        if self.std is None:
            return f"{self.mean:.{digits}f}"
        return f"{self.mean:.{digits}f} ± {self.std:.{digits}f}"

    def interval(self, digits: int = 2) -> str:
        if self.ci_low is None:
            return "none (n=1)"
        return f"[{self.ci_low:.{digits}f}, {self.ci_high:.{digits}f}]"


def t_quantile(dof: int, confidence: float = CONFIDENCE) -> float:
    """The two-sided Student t critical value, e.g. t_quantile(2) = 4.3027."""
    if dof < 1:
        raise ValueError(f"a t interval needs at least 1 degree of freedom (2 values), got {dof}")
    return float(scipy_stats.t.ppf(0.5 + confidence / 2, dof))


def summarize(values: Iterable[float], confidence: float = CONFIDENCE) -> Summary:
    data = [float(v) for v in values]
    if not data:
        raise ValueError("cannot summarise zero values: no run has this metric")
    if any(math.isnan(v) for v in data):
        raise ValueError(f"cannot summarise values containing NaN: {data}")
    n = len(data)
    mean = math.fsum(data) / n
    if n == 1:
        return Summary(n=1, mean=mean, std=None, ci_low=None, ci_high=None, t=None, confidence=confidence)
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in data) / (n - 1))
    t = t_quantile(n - 1, confidence)
    half = t * std / math.sqrt(n)
    return Summary(n=n, mean=mean, std=std, ci_low=mean - half, ci_high=mean + half, t=t, confidence=confidence)


class Verdict(str, Enum):
    REPRODUCED = "reproduced"
    BELOW = "below"
    ABOVE = "above"
    NOT_COMPARABLE = "not comparable"
    NO_PAPER_VALUE = "no paper value"


@dataclass(frozen=True)
class Judgement:
    verdict: Verdict
    delta: float | None  # mean - paper, points
    reason: str


def judge(summary: Summary, paper: float | None, tolerance: float, comparable: bool = True) -> Judgement:
    """The verdict of ``summary`` against the paper's value ``paper`` (points)."""
    if paper is None:
        return Judgement(Verdict.NO_PAPER_VALUE, None, "the paper reports no value here")
    delta = summary.mean - paper
    if not comparable:
        return Judgement(Verdict.NOT_COMPARABLE, delta,
                         "synthetic/demo data: the paper's number is shown for orientation only")
    within = abs(delta) <= tolerance
    if summary.ci_low is not None and summary.ci_low <= paper <= summary.ci_high:
        return Judgement(Verdict.REPRODUCED, delta,
                         f"the paper's {paper:.2f} lies inside the {summary.confidence:.0%} interval "
                         f"{summary.interval()}")
    prefix = "n=1, no interval: verdict by tolerance only; " if summary.n == 1 else (
        f"the paper's {paper:.2f} is outside the {summary.confidence:.0%} interval {summary.interval()}; ")
    if within:
        return Judgement(Verdict.REPRODUCED, delta,
                         f"{prefix}|Δ| = {abs(delta):.2f} is within the tolerance of {tolerance:g} point(s)")
    verdict = Verdict.BELOW if delta < 0 else Verdict.ABOVE
    return Judgement(verdict, delta,
                     f"{prefix}|Δ| = {abs(delta):.2f} exceeds the tolerance of {tolerance:g} point(s)")
