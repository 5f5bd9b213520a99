"""Shared test fixtures: the real data sets beside the checkout, GPU detection."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

# CI runs derandomized property tests: the same examples on every run
settings.register_profile("ci", derandomize=True, deadline=None)
settings.register_profile("dev", deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

# ../shared/data beside the repository (present in development and in CI);
# TENSORAPPROX_SHARED_DATA overrides it.
SHARED_DATA = Path(
    os.environ.get("TENSORAPPROX_SHARED_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data")
)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Folder of the real data sets; the test is skipped when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is absent")
    return SHARED_DATA


def _gpu_available() -> bool:
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


def pytest_collection_modifyitems(config, items):
    if _gpu_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device and cupy (pip install 'tensorapprox[gpu]')")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
