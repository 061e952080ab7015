"""Shared test fixtures.

``FIXTURES_DIR`` is ``tests/fixtures/``: the golden data made by running the original DualVGR code and the
published numbers, shipped with the repository (its README says what each file is and how to regenerate it).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
FIXTURES_DIR = REPO_ROOT / "tests" / "fixtures"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device (none available on this machine)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)


@pytest.fixture(scope="session")
def tracking_uri(tmp_path_factory) -> str:
    """One SQLite tracking store for the session (creating one costs seconds); tests use unique specs."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


@pytest.fixture()
def tracker(tracking_uri):
    from dualvgr.core.tracking import Tracker

    return Tracker(tracking_uri)
