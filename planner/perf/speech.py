"""Speech recognition (Whisper-style encoder-decoder): one window of audio through the encoder, then the
transcript decoded token by token.

    window(b) = overhead + max(b x encoder FLOPs / compute, encoder weights / bw)
              + tokens x max(b x decoder FLOPs per token / compute, (decoder weights + b x cross-attention KV) / bw)
A device transcribing b windows together finishes them all after window(b); it carries b / window(b)
windows per second. Weights in bytes use the published parameter count; the encoder/decoder split and the
FLOPs come from the shape (`SpeechShape`). No published edge speech measurement is in the catalog yet, so
this model is unvalidated: treat speech plans as estimates.
"""

from __future__ import annotations

from dataclasses import dataclass

from planner.catalog.schema import SpeechShape
from planner.units import BYTES_PER_ELEMENT


@dataclass(frozen=True)
class SpeechWindow:
    latency_s: float  # one batch of windows, from the end of the audio to the transcript
    windows_per_s: float  # capacity
    breakdown: dict[str, float]


def speech_window(shape: SpeechShape, precision: str, *, compute_flops: float, bandwidth_bytes: float | None,
                  overhead_s: float, tokens: float, batch: int = 1) -> SpeechWindow:
    """`compute_flops` and `bandwidth_bytes` are what the device achieves (peak x efficiency)."""
    per_param = BYTES_PER_ELEMENT[precision]
    total = shape.encoder_params + shape.decoder_params
    weights = shape.params_m * 1e6 * per_param
    encoder_bytes = weights * shape.encoder_params / total
    decoder_bytes = weights * shape.decoder_params / total
    kv_bytes = shape.cross_kv_elems() * min(per_param, 2.0)  # activations stay 16-bit under weight-only INT4
    memory = (lambda nbytes: nbytes / bandwidth_bytes) if bandwidth_bytes else (lambda nbytes: 0.0)
    encoder = max(batch * shape.encoder_flops() / compute_flops, memory(encoder_bytes))
    step = max(batch * shape.decoder_flops_per_token() / compute_flops, memory(decoder_bytes + batch * kv_bytes))
    decode = tokens * step
    latency = overhead_s + encoder + decode
    return SpeechWindow(latency, batch / latency, {"overhead": overhead_s, "encoder": encoder, "decoder": decode})
