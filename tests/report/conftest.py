"""Reports written once per session from fake runs (the report tests and the browser test read them)."""

from __future__ import annotations

import pytest

from dualvgr.core.tracking import Tracker
from dualvgr.report.stage import write_report
from tests.report.fakes import Upstream, log_reproduction, paper_like_spec

PER_TYPE = {"what": 0.28, "who": 0.54, "how": 0.80, "when": 0.71, "where": 0.45}


@pytest.fixture(scope="session")
def msvd_report(tracking_uri, tmp_path_factory):
    """A 3-seed MSVD-QA reproduction (38.5, 39.1, 39.6 %) reported once per session."""
    tracker = Tracker(tracking_uri)
    name = "rep-render-msvd"
    log_reproduction(tracker, paper_like_spec(name, **{"train.epochs": 20}), {666: 0.385, 667: 0.391, 668: 0.396},
                     per_type=PER_TYPE, epochs=4)
    return write_report(tracker, name, tmp_path_factory.mktemp("reports"))


@pytest.fixture(scope="session")
def demo_report(tracking_uri, tmp_path_factory):
    """The demo (paper.table: none, synthetic data, random weights), one seed, two question types absent."""
    tracker = Tracker(tracking_uri)
    name = "rep-render-demo"
    log_reproduction(tracker, paper_like_spec(name, experiment="demo.yaml"), {666: 0.52},
                     Upstream(appearance_source="random", motion_source="random", glove_source="none",
                              questions={"train": 768, "val": 192, "test": 320}),
                     per_type={"what": 0.4, "who": 0.6, "how": 0.7})  # when/where absent from the split
    return write_report(tracker, name, tmp_path_factory.mktemp("reports"))
