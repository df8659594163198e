"""Shared fixtures: one recogniser per test session (loading it takes a few tens of milliseconds)."""

import datetime as dt
import os
from pathlib import Path

import pytest

from intents.recognize import Recognizer

ROOT = Path(__file__).resolve().parent.parent
# The team's shared folder (eval sets, real recordings) sits beside the repository; YINLING_SHARED overrides.
SHARED = Path(os.environ.get("YINLING_SHARED", ROOT.parent / "shared"))
TODAY = dt.date(2026, 11, 26)  # a Thursday


@pytest.fixture(scope="session")
def recognizer() -> Recognizer:
    return Recognizer.load(today=lambda: TODAY)


@pytest.fixture(scope="session")
def tolerant_recognizer() -> Recognizer:
    return Recognizer.load(accent_tolerant=True, today=lambda: TODAY)
