"""Fixtures for the question-preprocessing tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.text.qa_files import write_qa


@pytest.fixture
def qa_writer(tmp_path):
    """``qa_writer(split, entries, **kwargs)`` writes ``<tmp>/ann/{split}_qa.json`` and returns its path."""

    def write(split: str, entries: list, **kwargs) -> Path:
        return write_qa(tmp_path / "ann" / f"{split}_qa.json", entries, **kwargs)

    return write
