"""Statistics over seeds and the verdict against the paper's number.

A reproduction is n train runs that differ only by seed. For each accuracy (in points, i.e. %) the report gives
the mean, the sample std (ddof=1) and a two-sided 95% confidence interval for the mean from Student's t with n-1
degrees of freedom: mean ± t(0.975, n-1)·std/√n.

**Verdict.** The paper's value p and the tolerance τ (``paper.tolerance``, points) make the band [p-τ, p+τ] of
means that count as the paper's. The interval is the evidence of where the mean lies, so noise cannot win:

- *reproduced*: the interval lies inside the band (edges included);
- *below* / *above*: the interval lies entirely below / above the band;
- *inconclusive*: the interval overlaps the band and reaches outside it. The reason says how many seeds would
  decide if the mean and the std stayed as observed: the smallest n whose half-width t(0.975, n-1)·std/√n fits
  the room between the mean and the band's nearest edge (inside the band) or the band (outside it); t depends on
  n, so n is stepped up until it fits. A mean inside the band but on its edge leaves no room: no finite number
  of seeds decides. Above :data:`MAX_SEEDS` the reason says "more than" instead of a number.

So two seeds at 33.0 and 35.0 against the paper's 39.03 (interval [21.29, 46.71], t = 12.71) are inconclusive
(one more seed would show them below), not reproduced.

**One seed** has no spread, hence no interval: the verdict is *inconclusive* whatever the value. A single value
inside the band says nothing about where the next seed lands, and assuming a typical spread would be evidence the
runs did not give. (Seeds that gave identical values have std 0 and a zero-width interval, which does decide.)

**Precision.** Numbers are compared as the report prints them, with 2 decimals of a point: the mean, the interval's
bounds, the paper's value and the tolerance are each rounded once, by :func:`hundredths`, and every comparison and
Δ is on whole hundredths. So 78.76 against 79.76 is Δ = -1.00, on the edge of a tolerance of 1, not beyond it, and
a paper value printed as an interval's bound is inside that interval.

A demo (``paper.table: none``, or data other than the table's data set) is *not comparable*; a column the paper
leaves empty has *no paper value*.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from typing import Iterable

import numpy as np
from scipy import stats as scipy_stats

CONFIDENCE = 0.95
DIGITS = 2  # accuracies are printed, and compared, in hundredths of a point
# The seeds-needed estimate stops here: more seeds than this is not a plan, and the reason says "more than".
MAX_SEEDS = 100


def printed(value: float) -> str:
    """``value`` as the report prints an accuracy in points: ``39.03``."""
    return f"{value:.{DIGITS}f}"


def hundredths(value: float) -> int:
    """``value`` rounded as printed, in whole hundredths of a point (``39.03`` -> 3903): what every comparison uses."""
    return int(Decimal(printed(value)).scaleb(DIGITS))


def from_hundredths(count: int, sign: bool = False) -> str:
    """Whole hundredths as printed (``-100`` -> ``-1.00``; with ``sign``, ``+0.00``)."""
    return f"{count / 10 ** DIGITS:{'+' if sign else ''}.{DIGITS}f}"


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

    def mean_std(self) -> str:
        """``39.12 ± 0.45`` (``39.12`` for n=1)."""
        if self.std is None:
            return printed(self.mean)
        return f"{printed(self.mean)} ± {printed(self.std)}"

    def interval(self) -> str:
        if self.ci_low is None:
            return "none (n=1)"
        return f"[{printed(self.ci_low)}, {printed(self.ci_high)}]"


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
    INCONCLUSIVE = "inconclusive"
    NOT_COMPARABLE = "not comparable"
    NO_PAPER_VALUE = "no paper value"


@dataclass(frozen=True)
class Judgement:
    verdict: Verdict
    delta: float | None  # mean - paper, points, at the printed precision (a whole number of hundredths)
    reason: str
    # Inconclusive: the seeds (in all) the observed spread says would decide; None when no finite number, more
    # than MAX_SEEDS, or unknown (one seed); ``seeds`` says which, in a few words ("" when the verdict decides).
    seeds_needed: int | None = None
    seeds: str = ""


@dataclass(frozen=True)
class Band:
    """paper ± tolerance in hundredths: the means that count as the paper's."""

    paper: int
    tolerance: int

    @property
    def low(self) -> int:
        return self.paper - self.tolerance

    @property
    def high(self) -> int:
        return self.paper + self.tolerance

    def __str__(self) -> str:
        return (f"the paper's {from_hundredths(self.paper)} ± {from_hundredths(self.tolerance)} = "
                f"[{from_hundredths(self.low)}, {from_hundredths(self.high)}]")


def _side(low: int, high: int, band: Band) -> Verdict:
    """Where the interval [low, high] (hundredths) lies against the band."""
    if band.low <= low and high <= band.high:
        return Verdict.REPRODUCED
    if high < band.low:
        return Verdict.BELOW
    if low > band.high:
        return Verdict.ABOVE
    return Verdict.INCONCLUSIVE


def seeds_to_decide(n: int, std: float, room: int, strict: bool) -> int | None:
    """The fewest seeds (> n) whose half-width t·std/√n fits ``room`` hundredths; None if none up to MAX_SEEDS.

    ``strict``: the half-width must be smaller than the room (to lie entirely outside the band), not just fit it.
    """
    if n >= MAX_SEEDS:
        return None
    counts = np.arange(max(n + 1, 2), MAX_SEEDS + 1)
    half = scipy_stats.t.ppf(0.5 + CONFIDENCE / 2, counts - 1) * std / np.sqrt(counts) * 10 ** DIGITS
    fits = half < room if strict else half <= room
    return int(counts[np.argmax(fits)]) if fits.any() else None


NO_FINITE = "no finite number"
UNKNOWN_ONE_SEED = "unknown (one seed)"


def _inconclusive(summary: Summary, mean: int, band: Band, delta: float, interval: str) -> Judgement:
    """The inconclusive verdict, with the seeds that would decide if the mean and std stayed as observed."""
    inside = band.low <= mean <= band.high
    room = min(mean - band.low, band.high - mean) if inside else max(band.low - mean, mean - band.high)
    outcome = "inside" if inside else ("entirely below" if mean < band.low else "entirely above")
    spread = f"with this spread (std {printed(summary.std)})"
    needed = None
    if inside and room == 0:
        seeds, why = NO_FINITE, (f"no finite number of seeds would decide: the mean {from_hundredths(mean)} sits on "
                                 f"the edge of the band, so an interval around it always reaches outside")
    elif (needed := seeds_to_decide(summary.n, summary.std, room, strict=not inside)) is None:
        seeds, why = f"more than {MAX_SEEDS}", (
            f"{spread} more than {MAX_SEEDS} seeds would be needed: the mean {from_hundredths(mean)} is only "
            f"{from_hundredths(room)} from the band's edge")
    else:
        seeds, why = str(needed), (f"{spread}, {needed} seeds in all ({needed - summary.n} more) would put the "
                                   f"interval {outcome} the band, if the mean stayed at {from_hundredths(mean)}")
    return Judgement(Verdict.INCONCLUSIVE, delta, f"{interval} overlaps {band} but reaches outside it; {why}",
                     needed, seeds)


def judge(summary: Summary, paper: float | None, tolerance: float, comparable: bool = True) -> Judgement:
    """The verdict of ``summary`` against the paper's value ``paper`` (points); see the module docstring."""
    if not math.isfinite(tolerance) or tolerance < 0:
        raise ValueError(f"the tolerance must be a number of points >= 0, got {tolerance}")
    if paper is None:
        return Judgement(Verdict.NO_PAPER_VALUE, None, "the paper reports no value here")
    band = Band(hundredths(paper), hundredths(tolerance))
    mean = hundredths(summary.mean)
    delta = (mean - band.paper) / 10 ** DIGITS
    if not comparable:
        return Judgement(Verdict.NOT_COMPARABLE, delta,
                         "not the paper's data, or no published table claimed (paper.table: none): the "
                         "paper's number is shown for orientation only")
    if summary.ci_low is None:
        return Judgement(Verdict.INCONCLUSIVE, delta,
                         f"one seed has no spread, hence no interval: a single value ({from_hundredths(mean)}) "
                         f"cannot show the mean inside or outside {band}; train more seeds (train.seeds), how many "
                         f"depends on their spread", seeds=UNKNOWN_ONE_SEED)
    interval = f"the {summary.confidence:.0%} interval {summary.interval()}"
    verdict = _side(hundredths(summary.ci_low), hundredths(summary.ci_high), band)
    identical = " (the seeds gave identical values: the interval has zero width)" if summary.std == 0 else ""
    if verdict is Verdict.REPRODUCED:
        return Judgement(verdict, delta, f"{interval} lies inside {band}{identical}")
    if verdict is not Verdict.INCONCLUSIVE:
        return Judgement(verdict, delta, f"{interval} lies entirely {verdict.value} {band}{identical}")
    return _inconclusive(summary, mean, band, delta, interval)
