"""The performance model against published training runs (tests/validation/training.yaml)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "validation"))

import validate  # noqa: E402

from planner.catalog.loader import load_catalogs  # noqa: E402


def test_training_throughput_within_targets():
    cases, _ = validate.run(load_catalogs())
    stats = validate.summary(cases)
    assert stats["rows"] >= 15
    assert stats["median_abs_error"] <= 0.10, stats
    assert stats["max_abs_error"] <= 0.25, stats


def test_validation_covers_several_device_families():
    cases, _ = validate.run(load_catalogs())
    assert {c.device for c in cases} >= {"a100-80gb", "h100-sxm", "b200"}
