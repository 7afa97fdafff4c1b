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


def test_serving_predictions_against_published_runs():
    import validate_serving

    cases, _ = validate_serving.run(load_catalogs())
    errors = sorted(abs(c.error) for c in cases)
    assert len(cases) >= 15
    assert errors[len(errors) // 2] <= 0.25
    # Current-software maximum-throughput tables (TensorRT-LLM 1.0) are the reference for the planner.
    modern = [c for c in cases if c.id.startswith("trtllm10")]
    assert modern and all(abs(c.error) <= 0.30 for c in modern)
