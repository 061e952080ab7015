"""The stages in pipeline order: data -> appearance, motion, questions -> train -> evaluate -> report.

This module only lists them (what each reads and writes, where its glue lives); each stage's code lives beside
its package (``dualvgr/<package>/stage.py``) and is imported only when a command runs stages, so that
``dualvgr validate`` and ``--help`` start in a second.
"""

from __future__ import annotations

import importlib

from dualvgr.core.stage import Stage

# name -> (module, attribute, what it reads -> what it writes)
STAGES = {
    "data": ("dualvgr.data.stage", "DATA_STAGE",
             "dataset.* -> checked dataset (the synthetic demo is written first), videos.json, fingerprint"),
    "appearance": ("dualvgr.features.stage", "APPEARANCE_STAGE",
                   "videos -> ResNet-101 per-frame features (V, N, F, 2048) HDF5"),
    "motion": ("dualvgr.features.stage", "MOTION_STAGE", "videos -> 3D ResNeXt-101 per-clip features (V, N, 2048) HDF5"),
    "questions": ("dualvgr.text.stage", "QUESTIONS_STAGE",
                  "QA json -> vocab.json, encoded questions (.npz), GloVe matrix"),
    "train": ("dualvgr.train.stage", "TRAIN_STAGE",
              "features + questions -> trained DualVGR (best.pt, last.pt), test accuracy, predictions"),
    "evaluate": ("dualvgr.train.evaluate", "EVALUATE_STAGE",
                 "a checkpoint (ours or the original's) -> accuracy per type on a split, predictions CSV"),
    "report": ("dualvgr.report.stage", "REPORT_STAGE",
               "FINISHED train runs -> reports/<experiment>/report.{md,html}: paper vs reproduced, audit"),
}

# The order `dualvgr pipeline` runs them in (evaluate is on demand: train already scores the test split).
PIPELINE = ("data", "appearance", "motion", "questions", "train", "report")


def all_stages() -> dict[str, Stage]:
    return {name: getattr(importlib.import_module(module), attribute) for name, (module, attribute, _) in STAGES.items()}
