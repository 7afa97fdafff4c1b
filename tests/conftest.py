"""Shared fixtures: small hand-built catalog objects for formula tests, and the shipped catalogs."""

from __future__ import annotations

import datetime as dt
import os

import pytest
from hypothesis import settings

# CI replays the same examples every run (a landing must not hinge on a lucky draw); local runs keep
# exploring new ones.
settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

from planner.catalog.schema import (
    Accelerator,
    DeviceFamily,
    EfficiencyFactor,
    Fraction,
    LLMShape,
    ScaleOut,
    ScaleUp,
    System,
)

TODAY = dt.date(2026, 1, 1)


def factor(value: float) -> EfficiencyFactor:
    return EfficiencyFactor(value=value, reason="test")


@pytest.fixture
def family() -> DeviceFamily:
    return DeviceFamily(id="test-family", matmul_efficiency=factor(0.5), memory_bw_efficiency=factor(0.8),
                        collective_bw_efficiency=factor(1.0), comm_overlap=Fraction(value=0.0, reason="test"),
                        power_at_full_load=factor(1.0), power_at_idle=Fraction(value=0.1, reason="test"), framework_overhead_gib=0.0, framework_overhead_reason="test")


@pytest.fixture
def device() -> Accelerator:
    return Accelerator(id="testgpu", name="Test GPU", vendor="t", family="test-family",
                       peak_dense_tflops={"bf16": 1000.0, "fp8": 2000.0, "int8": 2000.0}, memory_gb=80,
                       memory_bw_gb_per_s=2000.0, tdp_w=500.0, source=["T"], as_of=TODAY)


@pytest.fixture
def system() -> System:
    return System(id="test-8", name="8 GPUs", accelerator="testgpu", devices_per_node=8,
                  scaleup=ScaleUp(topology="nvswitch", domain_devices=8, link_gb_per_s=400.0, hop_latency_us=2.0),
                  scaleout=ScaleOut(fabric="rail-fat-tree", nics_per_node=8, nic_gbit_per_s=400.0, nodes_per_leaf=4,
                                    switch_hop_latency_us=1.0, nic_latency_us=2.0),
                  source=["T"], as_of=TODAY)


@pytest.fixture
def gpt_shape() -> LLMShape:
    # A GPT-3-like shape with round numbers: 4h MLP, no gating, MHA.
    return LLMShape(params_b=1.0, layers=24, hidden=2048, heads=16, kv_heads=16, ffn=8192, vocab=50000,
                    max_seq_len=2048, gated_mlp=False)


@pytest.fixture
def llama_shape() -> LLMShape:
    return LLMShape(params_b=8.0, layers=32, hidden=4096, heads=32, kv_heads=8, ffn=14336, vocab=128256,
                    max_seq_len=8192)
