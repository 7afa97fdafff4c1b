"""LoRA and QLoRA fine-tuning: what a frozen base with low-rank adapters stores, moves and computes.

A LoRA adapter on a linear layer W (k x n) adds B·A with A (k x r) and B (r x n): r·(k + n) trainable
parameters; only those carry gradients and optimizer state. The base stays frozen in bf16 (LoRA) or is
stored as NF4 blocks (QLoRA: 4-bit codes, one int8 scale per 64 weights, one fp32 scale per 256 scales,
torchao's NF4Tensor defaults, source F6) and dequantised to bf16 for every GEMM that reads it.
FLOPs per token: the frozen GEMMs run forward and propagate activation gradients (2 x 2·P) but compute
no weight gradients, so the base costs 4·P instead of 6·P; the adapters cost 6 x their parameters.
"""

from __future__ import annotations

from dataclasses import dataclass

from planner.perf.shapes import LLMFootprint
from planner.perf.types import Adapter

# NF4 with double quantisation: 4 bits per weight + an 8-bit scale per 64 + a 32-bit scale per 64 x 256.
NF4_BYTES_PER_PARAM = 0.5 + 1.0 / 64 + 4.0 / (64 * 256)
BF16_BYTES = 2.0


@dataclass(frozen=True)
class AdapterCosts:
    trainable_params: float  # adapter parameters of the whole model
    base_weight_bytes_per_param: float  # how the frozen base is stored
    dequantised: bool  # QLoRA: each GEMM first expands its NF4 weights to bf16


def adapter_params(fp: LLMFootprint, adapter: Adapter) -> float:
    """r·(k + n) for every targeted linear of every layer (routed experts each carry their own)."""
    r = adapter.rank
    h, attn = fp.hidden, fp.attn_dim
    qkv_out = attn + fp.kv_elems_per_token_per_layer
    per_layer = 0.0
    if "attention" in adapter.targets:
        per_layer += r * (h + qkv_out) + r * (attn + h)
    if "mlp" in adapter.targets:
        mlp_in = fp.ffn * (2 if fp.gated else 1)
        experts = fp.experts if fp.is_moe else 1
        per_layer += experts * (r * (h + mlp_in) + r * (fp.ffn + h))
    return per_layer * fp.layers


def adapter_costs(fp: LLMFootprint, adapter: Adapter) -> AdapterCosts:
    qlora = adapter.method == "qlora"
    return AdapterCosts(trainable_params=adapter_params(fp, adapter),
                        base_weight_bytes_per_param=NF4_BYTES_PER_PARAM if qlora else BF16_BYTES,
                        dequantised=qlora)
