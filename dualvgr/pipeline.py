"""The stages in pipeline order: data -> appearance, motion, questions -> train -> evaluate -> report.

This module only lists them; each stage's glue lives beside its package (``dualvgr/<package>/stage.py``).
"""

from __future__ import annotations

from dualvgr.core.stage import Stage
from dualvgr.data.stage import DATA_STAGE
from dualvgr.features.stage import APPEARANCE_STAGE, MOTION_STAGE
from dualvgr.report.stage import REPORT_STAGE
from dualvgr.text.stage import QUESTIONS_STAGE
from dualvgr.train.evaluate import EVALUATE_STAGE
from dualvgr.train.stage import TRAIN_STAGE

# The order `dualvgr pipeline` runs them in (evaluate is on demand: train already scores the test split).
PIPELINE = ("data", "appearance", "motion", "questions", "train", "report")


def all_stages() -> dict[str, Stage]:
    stages = [DATA_STAGE, APPEARANCE_STAGE, MOTION_STAGE, QUESTIONS_STAGE, TRAIN_STAGE, EVALUATE_STAGE,
              REPORT_STAGE]
    return {stage.name: stage for stage in stages}
