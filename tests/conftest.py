"""Shared test fixtures.

``shared_dir`` points at the reference material beside the checkout (``../shared``); tests that need it
skip with a clear reason where it is absent (a user's clone has no ``shared/``).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = REPO_ROOT.parent / "shared"
FIXTURES_DIR = REPO_ROOT / "tests" / "fixtures"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED_DIR.is_dir():
        pytest.skip(f"reference material not found at {SHARED_DIR} (only present beside the project's CI checkout)")
    return SHARED_DIR


def shared_file(relative: str) -> Path:
    """A file under ../shared, or skip the calling test with the reason."""
    path = SHARED_DIR / relative
    if not path.is_file():
        pytest.skip(f"{path} is absent (reference fixtures ship beside the checkout, not in a user's clone)")
    return path


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
