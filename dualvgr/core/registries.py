"""The harness's registries, one per kind of extension point (see :mod:`dualvgr.core.registry`).

Built-in entries are named by ``"module:attribute"`` and imported the first time they are looked up.
"""

from __future__ import annotations

from dualvgr.core.registry import Registry

# dataset.kind -> dualvgr.data.entry.DatasetEntry
DATASETS = Registry(
    "data set",
    "dataset.kind",
    {
        "msvd-qa": "dualvgr.data.msvd:MSVD_QA",
        "msrvtt-qa": "dualvgr.data.msvd:MSRVTT_QA",
        "synthetic": "dualvgr.data.msvd:SYNTHETIC",
        "svqa": "dualvgr.data.svqa:SVQA",
    },
)
