"""Shared fixtures: a private feature cache per test session, generated images, the shared data folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory):
    """Tests never read or fill the user's ~/.cache; the backbone ONNX export is made once per session."""
    os.environ["FASHIONLENS_CACHE"] = str(tmp_path_factory.mktemp("fashionlens-cache"))
    yield


@pytest.fixture(scope="session")
def shared_datasets() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"real data not found at {SHARED} (a fresh clone has no ../shared)")
    return SHARED
