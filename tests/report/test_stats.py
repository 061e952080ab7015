"""Statistics over seeds against hand-computed values, and the verdicts (no tracking store)."""

from __future__ import annotations

import math

import pytest

from dualvgr.report.paper import paper_table
from dualvgr.report.stats import (
    MAX_SEEDS,
    Summary,
    Verdict,
    hundredths,
    judge,
    seeds_to_decide,
    summarize,
    t_quantile,
)

MSVD_ALL = 39.03  # the paper's MSVD-QA overall test accuracy; band with tolerance 1: [38.03, 40.03]


def interval(low: float, high: float, n: int = 3, std: float = 1.0) -> Summary:
    """A summary with exactly these bounds (to pin float edges the arithmetic of summarize rarely hits)."""
    return Summary(n=n, mean=(low + high) / 2, std=std, ci_low=low, ci_high=high, t=t_quantile(n - 1))


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


# ------------------------------------------------------------------------------------------- verdicts


def test_two_wide_seeds_far_below_the_paper_are_inconclusive_not_reproduced():
    """33.0 and 35.0 vs 39.03: the old rule called this reproduced (the paper lies inside [21.29, 46.71])."""
    j = judge(summarize([33.0, 35.0]), MSVD_ALL, tolerance=1.0)
    assert j.verdict is Verdict.INCONCLUSIVE and j.delta == -5.03
    # mean 34, std sqrt(2); below the band needs t(n-1) * 1.414 / sqrt(n) < 38.03 - 34 = 4.03: n=3 gives 3.51
    assert j.seeds_needed == 3 and j.seeds == "3"
    assert j.reason == ("the 95% interval [21.29, 46.71] overlaps the paper's 39.03 ± 1.00 = [38.03, 40.03] but "
                        "reaches outside it; with this spread (std 1.41), 3 seeds in all (1 more) would put the "
                        "interval entirely below the band, if the mean stayed at 34.00")


def test_three_spread_seeds_two_points_below_are_inconclusive_with_the_seeds_needed():
    """35/37/39 vs 39.03: Δ -2.03, the paper inside [32.03, 41.97]; the old rule said reproduced."""
    j = judge(summarize([35.0, 37.0, 39.0]), MSVD_ALL, tolerance=1.0)
    assert j.verdict is Verdict.INCONCLUSIVE and j.delta == -2.03
    # std 2: t(15) * 2 / 4 = 1.066 >= 1.03, t(16) * 2 / sqrt(17) = 1.028 < 1.03
    assert 2.1314 * 2 / 4 >= 1.03 > 2.1199 * 2 / math.sqrt(17), "hand check of the t-table values used"
    assert j.seeds_needed == 17 and "17 seeds in all (14 more) would put the interval entirely below" in j.reason


def test_interval_inside_the_band_is_reproduced():
    j = judge(summarize([38.9, 39.0, 39.1]), MSVD_ALL, tolerance=1.0)  # [38.75, 39.25]
    assert j.verdict is Verdict.REPRODUCED and j.seeds_needed is None and j.seeds == ""
    assert j.reason == "the 95% interval [38.75, 39.25] lies inside the paper's 39.03 ± 1.00 = [38.03, 40.03]"
    assert j.delta == pytest.approx(-0.03)


def test_interval_entirely_below_or_above_the_band():
    below = judge(summarize([36.9, 37.0, 37.1]), MSVD_ALL, tolerance=1.0)  # [36.75, 37.25]
    assert below.verdict is Verdict.BELOW
    assert below.reason == ("the 95% interval [36.75, 37.25] lies entirely below the paper's 39.03 ± 1.00 = "
                            "[38.03, 40.03]")
    above = judge(summarize([40.9, 41.0, 41.1]), MSVD_ALL, tolerance=1.0)
    assert above.verdict is Verdict.ABOVE and "lies entirely above" in above.reason


def test_interval_overlapping_the_band_edge_is_inconclusive_even_with_the_mean_inside():
    j = judge(summarize([38.0, 39.0, 40.5]), MSVD_ALL, tolerance=1.0)  # [36.04, 42.29], mean 39.17
    assert j.verdict is Verdict.INCONCLUSIVE
    # room to the nearer edge 40.03 - 39.17 = 0.86: t(n-1) * 1.258 / sqrt(n) <= 0.86 first at n = 11 (0.845)
    assert j.seeds_needed == 11 and "would put the interval inside the band" in j.reason


def test_tolerance_comes_from_the_caller():
    s = summarize([37.9, 38.0, 38.1])  # [37.75, 38.25]
    assert judge(s, MSVD_ALL, tolerance=1.5).verdict is Verdict.REPRODUCED, "band [37.53, 40.53]"
    assert judge(s, MSVD_ALL, tolerance=0.5).verdict is Verdict.BELOW, "band [38.53, 39.53]"
    assert judge(s, MSVD_ALL, tolerance=1.0).verdict is Verdict.INCONCLUSIVE, "band [38.03, 40.03]"


def test_zero_tolerance_reproduces_only_a_zero_width_interval_on_the_paper():
    assert judge(summarize([39.03, 39.03]), MSVD_ALL, tolerance=0.0).verdict is Verdict.REPRODUCED
    assert judge(summarize([39.02, 39.04]), MSVD_ALL, tolerance=0.0).seeds == "no finite number"


@pytest.mark.parametrize("tolerance", [-1.0, math.nan, math.inf])
def test_a_tolerance_that_is_not_a_number_of_points_is_refused(tolerance):
    with pytest.raises(ValueError, match=f"the tolerance must be a number of points >= 0, got {tolerance}"):
        judge(summarize([39.0, 39.1]), MSVD_ALL, tolerance=tolerance)


def test_one_seed_is_inconclusive_whatever_its_value():
    for value in (39.03, 38.5, 20.0, 60.0):
        j = judge(summarize([value]), MSVD_ALL, tolerance=1.0)
        assert j.verdict is Verdict.INCONCLUSIVE, f"one seed at {value}: no interval, no verdict"
        assert j.seeds_needed is None and j.seeds == "unknown (one seed)"
    j = judge(summarize([38.5]), MSVD_ALL, tolerance=1.0)
    assert j.reason == ("one seed has no spread, hence no interval: a single value (38.50) cannot show the mean "
                        "inside or outside the paper's 39.03 ± 1.00 = [38.03, 40.03]; train more seeds (train.seeds), "
                        "how many depends on their spread")


def test_identical_seeds_give_a_zero_width_interval_that_decides_and_says_so():
    j = judge(summarize([38.5, 38.5, 38.5]), MSVD_ALL, tolerance=1.0)
    assert j.verdict is Verdict.REPRODUCED
    assert j.reason.endswith("(the seeds gave identical values: the interval has zero width)")
    assert judge(summarize([37.0, 37.0]), MSVD_ALL, tolerance=1.0).verdict is Verdict.BELOW


def test_mean_on_the_band_edge_needs_no_finite_number_of_seeds():
    j = judge(summarize([40.02, 40.04]), MSVD_ALL, tolerance=1.0)  # mean 40.03 = paper + tolerance
    assert j.verdict is Verdict.INCONCLUSIVE and j.seeds_needed is None and j.seeds == "no finite number"
    assert j.reason.endswith("no finite number of seeds would decide: the mean 40.03 sits on the edge of the band, "
                             "so an interval around it always reaches outside")


def test_mean_just_outside_the_band_caps_the_seeds_needed_and_says_so():
    j = judge(summarize([37.92, 38.12]), MSVD_ALL, tolerance=1.0)  # mean 38.02: 0.01 below the band
    assert j.verdict is Verdict.INCONCLUSIVE and j.seeds_needed is None and j.seeds == f"more than {MAX_SEEDS}"
    assert j.reason.endswith(f"with this spread (std 0.14) more than {MAX_SEEDS} seeds would be needed: the mean "
                             f"38.02 is only 0.01 from the band's edge")


def test_seeds_to_decide_steps_n_because_t_depends_on_n():
    # std 1, room 1.00: t(n-1)/sqrt(n) <= 1 first at n = 7 (t(5) = 2.5706 / 2.449 = 1.0494; t(6) = 2.4469 / 2.6458)
    assert seeds_to_decide(2, 1.0, 100, strict=False) == 7
    assert seeds_to_decide(2, 1.0, 0, strict=True) is None, "no room: no number of seeds"
    assert seeds_to_decide(MAX_SEEDS, 1.0, 100, strict=False) is None, "already at the cap"
    # with a fixed z = 1.96 instead of t the answer would be 4 (1.96 / 2 = 0.98): t matters
    assert seeds_to_decide(2, 1.0, 98, strict=False) != 4


def test_verdict_not_comparable_and_no_paper_value():
    assert judge(summarize([50.0]), MSVD_ALL, 1.0, comparable=False).verdict is Verdict.NOT_COMPARABLE
    assert judge(summarize([50.0]), None, 1.0).verdict is Verdict.NO_PAPER_VALUE


# ------------------------------------------------------------------------------------ printed precision


def test_hundredths_rounds_as_printed():
    assert [hundredths(v) for v in (39.03, 78.76, 40.025, 40.035, -0.004, 1.0)] == [3903, 7876, 4002, 4003, 0, 100]
    assert f"{40.025:.2f}" == "40.02" and f"{40.035:.2f}" == "40.03", "the binary values behind the cases above"


def test_mean_one_point_below_is_on_the_tolerance_edge_not_beyond_it():
    """Runs logging 0.7876 vs MSRVTT-QA 'how' 79.76: the mean in points is 78.75999999999999, so in floats
    Δ = -1.0000000000000142, and the old rule said '|Δ| = 1.00 exceeds the tolerance of 1': below."""
    paper = paper_table("msrvtt-qa").reference_row["how"]
    mean = 100.0 * 0.7876  # as results.py turns a logged fraction into points
    assert paper == 79.76 and mean - paper == -1.0000000000000142, "the float edge this test is about"
    j = judge(summarize([mean, mean]), paper, tolerance=1.0)
    assert j.delta == -1.0, f"Δ is decided at the printed precision, got {j.delta!r}"
    assert j.verdict is Verdict.REPRODUCED, j.reason
    assert "[78.76, 80.76]" in j.reason
    one = judge(summarize([mean]), paper, tolerance=1.0)
    assert one.delta == -1.0 and "a single value (78.76)" in one.reason


def test_an_interval_printed_inside_the_band_is_inside_it():
    """Bounds a hair outside the band in floats, printed on its edges: decided as printed."""
    j = judge(interval(38.0299999999, 40.0300000001), MSVD_ALL, tolerance=1.0)
    assert j.verdict is Verdict.REPRODUCED, j.reason
    assert j.reason == "the 95% interval [38.03, 40.03] lies inside the paper's 39.03 ± 1.00 = [38.03, 40.03]"


def test_an_interval_printed_one_hundredth_outside_the_band_reaches_outside():
    j = judge(interval(38.02, 40.0), MSVD_ALL, tolerance=1.0)
    assert j.verdict is Verdict.INCONCLUSIVE and "[38.02, 40.00] overlaps" in j.reason


def test_an_interval_whose_printed_bound_touches_the_band_is_not_entirely_outside():
    touching = judge(interval(36.0, 38.0300000001), MSVD_ALL, tolerance=1.0)  # printed [36.00, 38.03]
    assert touching.verdict is Verdict.INCONCLUSIVE, "a bound on the band's edge is not below it"
    assert judge(interval(36.0, 38.024), MSVD_ALL, tolerance=1.0).verdict is Verdict.BELOW, "printed 38.02 < 38.03"


def test_a_paper_value_printed_as_the_upper_bound_is_described_consistently():
    """Paper 39.03, interval printed [37.00, 39.03] with the raw bound 39.02999: the old reason called the paper
    'outside' an interval printed ending at it; now the decision and the text use the printed bound."""
    j = judge(interval(37.0, 39.029999, std=0.5), MSVD_ALL, tolerance=0.0)
    assert "[37.00, 39.03]" in j.reason and "outside [" not in j.reason
    assert j.verdict is Verdict.INCONCLUSIVE, "the band is the single point 39.03: the interval reaches outside"
