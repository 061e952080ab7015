"""Statistics over seeds against hand-computed values, and the verdicts (no tracking store)."""

from __future__ import annotations

import math

import pytest

from dualvgr.report.stats import Verdict, judge, summarize, t_quantile


@pytest.mark.parametrize("dof, expected", [(1, 12.7062), (2, 4.3027), (4, 2.7764), (9, 2.2622), (30, 2.0423)])
def test_t_quantile_matches_printed_t_table(dof, expected):
    assert t_quantile(dof) == pytest.approx(expected, abs=5e-5), f"t(0.975, {dof}) differs from the t-table"


def test_three_seeds_mean_std_interval_by_hand():
    # mean = 117.5 / 3 = 39.1667; squared deviations 1.3611 + 0.0278 + 1.7778 = 3.1667, / (n-1) = 1.5833
    # std = sqrt(1.5833) = 1.25831; half width = t(0.975, 2) * std / sqrt(3) = 4.30265 * 0.72648 = 3.12581
    s = summarize([38.0, 39.0, 40.5])
    assert s.n == 3
    assert s.mean == pytest.approx(39.166667, abs=1e-6)
    assert s.std == pytest.approx(1.258306, abs=1e-6), "std must use ddof=1 (sample std)"
    assert s.ci_low == pytest.approx(36.040862, abs=1e-5) and s.ci_high == pytest.approx(42.292471, abs=1e-5)
    assert s.half_width == pytest.approx(3.125805, abs=1e-5)
    assert s.mean_std() == "39.17 ± 1.26" and s.interval() == "[36.04, 42.29]"


def test_two_seeds_interval_by_hand():
    # std = sqrt(((-1)^2 + 1^2) / 1) = sqrt(2); half = 12.7062 * sqrt(2) / sqrt(2) = 12.7062
    s = summarize([38.0, 40.0])
    assert s.std == pytest.approx(math.sqrt(2))
    assert (s.ci_low, s.ci_high) == pytest.approx((39 - 12.706205, 39 + 12.706205), abs=1e-5)


def test_one_seed_has_no_std_and_no_interval():
    s = summarize([38.25])
    assert (s.n, s.mean, s.std, s.ci_low, s.ci_high) == (1, 38.25, None, None, None)
    assert s.mean_std() == "38.25" and "n=1" in s.interval()


def test_empty_and_nan_are_refused_with_a_reason():
    with pytest.raises(ValueError, match="zero values"):
        summarize([])
    with pytest.raises(ValueError, match="NaN"):
        summarize([38.0, float("nan")])


def test_verdict_paper_inside_interval_is_reproduced():
    j = judge(summarize([38.0, 39.0, 40.5]), 39.03, tolerance=1.0)
    assert j.verdict is Verdict.REPRODUCED and "inside" in j.reason
    assert j.delta == pytest.approx(39.166667 - 39.03, abs=1e-6)


def test_verdict_outside_interval_but_within_tolerance_is_reproduced():
    s = summarize([37.9, 38.0, 38.1])  # interval [37.75, 38.25]
    j = judge(s, 38.9, tolerance=1.0)
    assert j.verdict is Verdict.REPRODUCED and "within the tolerance" in j.reason and "outside" in j.reason


def test_verdict_below_and_above():
    assert judge(summarize([37.9, 38.0, 38.1]), 39.03, tolerance=1.0).verdict is Verdict.BELOW, "Δ = -1.03"
    assert judge(summarize([40.5, 40.6, 40.7]), 39.03, tolerance=1.0).verdict is Verdict.ABOVE, "Δ = +1.57"


def test_verdict_tolerance_comes_from_the_spec():
    s = summarize([37.9, 38.0, 38.1])
    assert judge(s, 39.03, tolerance=1.5).verdict is Verdict.REPRODUCED
    assert judge(s, 38.9, tolerance=0.5).verdict is Verdict.BELOW


def test_verdict_with_one_seed_is_by_tolerance_only_and_says_so():
    close = judge(summarize([38.5]), 39.03, tolerance=1.0)
    assert close.verdict is Verdict.REPRODUCED and "n=1" in close.reason and "tolerance" in close.reason
    far = judge(summarize([37.5]), 39.03, tolerance=1.0)
    assert far.verdict is Verdict.BELOW and "n=1" in far.reason


def test_verdict_not_comparable_and_no_paper_value():
    assert judge(summarize([50.0]), 39.03, 1.0, comparable=False).verdict is Verdict.NOT_COMPARABLE
    assert judge(summarize([50.0]), None, 1.0).verdict is Verdict.NO_PAPER_VALUE
