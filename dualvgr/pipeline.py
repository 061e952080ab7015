"""The stages in pipeline order: data -> appearance, motion, questions -> train -> evaluate -> report.

This module only lists them; each stage's glue lives beside its package (``dualvgr/<package>/stage.py``).
"""

from __future__ import annotations

from dualvgr.core.stage import Stage
from dualvgr.data.stage import DATA_STAGE

# The order `dualvgr pipeline` runs them in (evaluate is on demand: train already scores the test split).
PIPELINE = ("data", "appearance", "motion", "questions", "train", "report")


def all_stages() -> dict[str, Stage]:
    stages = [DATA_STAGE]
    return {stage.name: stage for stage in stages}
