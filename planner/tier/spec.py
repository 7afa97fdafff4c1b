"""The tier spec: the workloads of one kind of site, its limits, and its network to the cloud.

    planner tier spec.yaml

Every site of the spec is identical (`site.count` of them); costs are per site per month. A workload runs
at the edge (on a device at every site), in the cloud (one fleet shared by every site), or split (a small
model at the edge on everything, the fallback fraction sent to a larger model in the cloud). Units are in
field names; unknown keys are errors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Union

from pydantic import ConfigDict, Field, model_validator

from planner.strict import Strict
from planner.catalog.schema import PricingModel
from planner.spec import MAX_USD_PER_KWH
from planner.errors import Problem, SpecError
from planner.yamlio import load_yaml, parse_document

PositiveFloat = Annotated[float, Field(gt=0)]
PositiveInt = Annotated[int, Field(ge=1)]
Retention = Annotated[float, Field(gt=0, le=1)]
# Ceilings far above any real site, below what the solver's integers can hold once multiplied out.
MAX_STREAMS = 100_000
MAX_KB = 1_000_000  # one message of a gigabyte
MAX_USD_PER_GB = 1000.0
TierPrecision = Literal["fp32", "fp16", "bf16", "fp8", "int8", "int4"]
# What may leave the site: nothing, derived data (crops, embeddings, transcripts), or the raw input.
Locality = Literal["on_site", "crops_only", "any"]
LOCALITY_RANK = {"on_site": 0, "crops_only": 1, "any": 2}
Runtime = Literal["framework", "optimized"]
Tier = Literal["edge", "cloud", "split"]
ALL_TIERS: list = ["edge", "cloud", "split"]
HOURS_PER_MONTH = 730.0




class Split(Strict):
    """A small model at the edge on every input; the fallback fraction goes on to a larger cloud model."""

    edge_model: str
    fallback_fraction: float = Field(gt=0, lt=1)
    # Quality of the pair relative to the large model alone, measured on your data (before quantization).
    accuracy_retention: Retention = 1.0
    fallback_kb: PositiveFloat = Field(le=MAX_KB, description="what one fallback sends to the cloud (a crop, an embedding)")


class TierWorkloadBase(Strict):
    name: str
    model: str
    locality: Locality = "any"
    precisions: dict[TierPrecision, Retention] = Field(min_length=1, description="accuracy retained per precision")
    min_accuracy: Retention | None = None
    split: Split | None = None
    tiers: list[Tier] = Field(default=ALL_TIERS, min_length=1, description="tiers to consider")


class Video(Strict):
    """How frames reach the site's computer: compressed by the camera (decoded on site before inference) or
    raw (`codec: none`: MIPI and USB cameras, frames already decoded)."""

    codec: Literal["h264", "h265", "av1", "mjpeg", "none"] = "none"
    resolution: tuple[Annotated[int, Field(ge=16, le=16384)], Annotated[int, Field(ge=16, le=16384)]] = (1920, 1080)


class VisionTierWorkload(TierWorkloadBase):
    kind: Literal["vision"]
    streams: PositiveInt = Field(le=MAX_STREAMS)
    fps: PositiveFloat = Field(le=1000)
    input_resolution: tuple[PositiveInt, PositiveInt] | None = None
    # Absent: frames arrive decoded, and the report says so (IP cameras name their codec, since the host's
    # decoder then decides how many streams one site can take).
    video: Video = Video()
    latency_budget_ms: PositiveFloat | None = Field(default=None, description="default: one frame interval")
    frame_kb: PositiveFloat = Field(le=MAX_KB, description="one frame as sent to the cloud (encoded)")
    result_kb: PositiveFloat = Field(default=1.0, le=MAX_KB)
    # framework: a Python application (Ultralytics, pycoral, Frigate) pays its per-call cost; optimized: a
    # C++ pipeline (DeepStream, GStreamer with HailoRT), timed like a C++ benchmark harness.
    runtime: Runtime = "framework"

    @property
    def frame_budget_ms(self) -> float:
        return 1000.0 / self.fps

    @property
    def budget_ms(self) -> float:
        return self.latency_budget_ms if self.latency_budget_ms is not None else self.frame_budget_ms

    @property
    def budget_path(self) -> str:
        return "latency_budget_ms" if self.latency_budget_ms is not None else "fps"


class LLMTierWorkload(TierWorkloadBase):
    kind: Literal["llm"]
    requests_per_hour: PositiveFloat = Field(le=1e7, description="per site")
    input_tokens: PositiveInt = Field(le=10_000_000)
    output_tokens: PositiveInt = Field(le=1_000_000)
    ttft_ms: PositiveFloat | None = None
    tpot_ms: PositiveFloat | None = None
    request_kb: PositiveFloat = Field(default=4.0, le=MAX_KB)
    response_kb: PositiveFloat = Field(default=2.0, le=MAX_KB)


class SpeechTierWorkload(TierWorkloadBase):
    """Streams of audio (microphones, calls) transcribed window by window (Whisper: 30-second windows)."""

    kind: Literal["speech"]
    streams: PositiveInt = Field(le=MAX_STREAMS, description="concurrent audio streams per site")
    transcript_tokens_per_minute: PositiveFloat = Field(le=100_000, description="about 1.3 tokens per spoken word")
    latency_budget_ms: PositiveFloat = Field(description="from the end of a window to its transcript")
    audio_kb_per_s: PositiveFloat = Field(le=10_000, description="audio as sent to the cloud (16 kHz 16-bit PCM: 32)")
    result_kb_per_min: PositiveFloat = Field(default=1.0, le=MAX_KB)


TierWorkload = Annotated[Union[VisionTierWorkload, LLMTierWorkload, SpeechTierWorkload], Field(discriminator="kind")]


class Site(Strict):
    count: PositiveInt = Field(default=1, le=1_000_000)
    electricity_usd_per_kwh: float = Field(ge=0, le=MAX_USD_PER_KWH)
    power_w: PositiveFloat | None = Field(default=None, le=10_000_000)
    device_slots: PositiveInt | None = Field(default=None, le=10_000)
    budget_usd_per_month: PositiveFloat | None = None


class Link(Strict):
    """One hop of the tier graph. `from: site` is the site's own uplink; cloud regions are `provider/region`."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    source: str = Field(alias="from")
    target: str = Field(alias="to")
    rtt_ms: float = Field(ge=0, le=100_000)
    bandwidth_mbps: PositiveFloat | None = Field(default=None, le=10_000_000,
                                                description="upstream, per site; absent: not a limit")
    usd_per_gb: float = Field(default=0.0, ge=0, le=MAX_USD_PER_GB, description="metered transfer, e.g. a cellular plan")


class Network(Strict):
    links: list[Link] = []
    # Internet egress per provider (cloud -> site). Absent providers use the catalog's published rates.
    egress_usd_per_gb: dict[str, Annotated[float, Field(ge=0, le=MAX_USD_PER_GB)]] = {}


class Cloud(Strict):
    nonempty_lists = ("providers", "regions", "pricing", "devices")

    providers: list[str] = []
    regions: list[str] = []
    pricing: list[PricingModel] = ["on-demand"]
    devices: list[str] = []
    max_utilization: float = Field(default=0.7, gt=0, le=1)


class TierSpec(Strict):
    nonempty_lists = ("edge_devices",)

    name: str
    objective: Literal["cost", "energy"] = "cost"
    amortization_months: PositiveInt = 36
    site: Site
    network: Network = Network()
    workloads: list[TierWorkload] = Field(min_length=1)
    edge_devices: list[str] = Field(default=[], description="restrict the edge devices considered")
    edge_prices: dict[str, Annotated[float, Field(gt=0, le=10_000_000)]] = Field(
        default={}, description="your quotes, USD per unit")
    edge_max_units: PositiveInt = Field(default=4, le=1000, description="most devices of one kind per workload per site")
    edge_max_utilization: float = Field(default=0.9, gt=0, le=1, description="headroom on edge devices")
    share_edge_devices: bool = Field(default=True, description="workloads may share one edge device (false: a "
                                                              "device per workload, e.g. for isolation)")
    cloud: Cloud = Cloud()

    @model_validator(mode="after")
    def _unique_names(self) -> "TierSpec":
        names = [w.name for w in self.workloads]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"workload names must be unique: {', '.join(dup)}")
        return self


def load_tier_spec(path: Path | str) -> TierSpec:
    path = Path(path)
    doc = load_yaml(path, SpecError)
    if not isinstance(doc.data, dict):
        raise SpecError(Problem("expected a mapping at the top level", file=str(path),
                                fix="see examples/edge/ for tier specs"))
    return parse_document(doc, TierSpec, SpecError)
