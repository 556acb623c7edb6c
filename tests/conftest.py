from __future__ import annotations

from pathlib import Path

import pytest

from tests.tiny_model import build_tiny_model

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small real model folder; tests must not modify it (copy it first)."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"))
