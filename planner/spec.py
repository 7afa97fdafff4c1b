"""The user's workload spec: what to run, how much of it, within which limits, optimising what.

Loaded from YAML (`load_spec`), with `include:` of reusable constraint profiles merged underneath the
spec (the spec's own values win). Every field carries its unit in its name; unknown keys are errors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import Field, model_validator

from planner.strict import Strict
from planner.catalog.schema import PRICING_MODELS, LLMShape, PricingModel, VisionShape
from planner.perf.types import Adapter
from planner.errors import Problem, SpecError, did_you_mean
from planner.yamlio import YamlDocument, load_yaml, parse_document

Objective = Literal["cost", "energy", "carbon"]
SpecPrecision = Literal["fp32", "bf16", "fp16", "fp8", "int8", "int4", "fp4", "mxfp4"]
Recompute = Literal["none", "selective", "full"]

PositiveFloat = Annotated[float, Field(gt=0)]
PositiveInt = Annotated[int, Field(ge=1)]
# Ceilings far above any real deployment, below what the solver's integers can hold once multiplied out.
MAX_DEVICES = 1_000_000
MAX_USD_PER_KWH = 10.0  # retail electricity peaks near 1 USD/kWh
MAX_GCO2_PER_KWH = 2000.0  # coal-fired generation is about 1,000 g/kWh




class Traffic(Strict):
    requests_per_s: PositiveFloat = Field(le=1e6)
    input_tokens: PositiveInt = Field(le=10_000_000)
    output_tokens: PositiveInt = Field(le=1_000_000)
    prefix_hit_rate: float | None = Field(
        default=None, ge=0, lt=1, description="share of prompt tokens whose KV the engine finds in its prefix cache "
        "(what vLLM and SGLang report as the prefix cache hit rate); default: shared_prefix_tokens / input_tokens")
    shared_prefix_tokens: int = Field(
        default=0, ge=0, le=10_000_000, description="a prefix every request shares (system prompt, common "
        "documents): its KV is held once per replica and never prefilled again")

    @model_validator(mode="after")
    def _prefix_within_prompt(self) -> "Traffic":
        if self.shared_prefix_tokens >= self.input_tokens:
            raise ValueError(f"`shared_prefix_tokens`: {self.shared_prefix_tokens} must be less than input_tokens "
                             f"({self.input_tokens}): the engine computes at least the prompt's last token")
        if self.prefix_hit_rate is not None and self.prefix_hit_rate * self.input_tokens < self.shared_prefix_tokens:
            raise ValueError(f"`prefix_hit_rate`: {self.prefix_hit_rate:g} finds fewer tokens than the "
                             f"{self.shared_prefix_tokens} shared ones every request hits; give at least "
                             f"{self.shared_prefix_tokens / self.input_tokens:.3f} or leave it out")
        return self

    @property
    def cached_tokens(self) -> int:
        """Prompt tokens per request served from the prefix cache (at least the last one is computed)."""
        if self.prefix_hit_rate is None:
            return self.shared_prefix_tokens
        return min(self.input_tokens - 1, max(self.shared_prefix_tokens, round(self.prefix_hit_rate * self.input_tokens)))


class ServingSLO(Strict):
    ttft_p99_ms: PositiveFloat | None = None
    ttft_mean_ms: PositiveFloat | None = None
    tpot_ms: PositiveFloat | None = Field(default=None, description="mean time per output token after the first")
    tpot_p99_ms: PositiveFloat | None = Field(default=None, description="p99 over requests of each request's mean TPOT")
    e2e_p99_ms: PositiveFloat | None = None


class SpeculativeTree(Strict):
    """Tree drafting: each draft pass after the first expands `topk` candidates a sequence, and the target verifies
    the `verified_tokens` most likely nodes of the tree in one pass (SGLang --speculative-eagle-topk and
    --speculative-num-draft-tokens)."""

    topk: int = Field(ge=2, le=16, description="candidates a draft pass keeps per sequence (1 is a chain: leave "
                      "`tree` out)")
    verified_tokens: PositiveInt = Field(le=1024, description="tree nodes the target verifies per sequence per step, "
                                         "the verified token included (SGLang's --speculative-num-draft-tokens)")


class SpeculativeSpec(Strict):
    """Speculative decoding: a drafter proposes `tokens` per step, the target verifies them in one pass."""

    method: Literal["draft", "eagle", "mtp"] = Field(description="draft: a smaller model (draft_model); eagle: an "
                                                     "EAGLE-3 head; mtp: the model's own multi-token-prediction layers")
    draft_model: str | None = Field(default=None, description="draft: the draft model's catalog id (same tokenizer); "
                                    "eagle: the head's checkpoint, for launch files")
    tokens: PositiveInt = Field(le=16, description="tokens drafted per sequence per step (num_speculative_tokens)")
    acceptance_rate: float | None = Field(default=None, gt=0, le=1, description="chance each drafted token is "
                                          "accepted given the ones before it were")
    acceptance_length: float | None = Field(default=None, ge=1, description="mean tokens a step yields per sequence, "
                                            "the bonus token included (SGLang's accept length, vLLM's mean "
                                            "acceptance length)")
    tree: SpeculativeTree | None = Field(default=None, description="draft a tree instead of a chain (needs "
                                         "acceptance_length measured with that tree)")

    @model_validator(mode="after")
    def _one_acceptance(self) -> "SpeculativeSpec":
        if (self.acceptance_rate is None) == (self.acceptance_length is None):
            raise ValueError("give exactly one of acceptance_rate or acceptance_length (measured on your traffic: "
                             "the engine logs both)")
        if self.acceptance_length is not None and self.acceptance_length > self.tokens + 1:
            raise ValueError(f"`acceptance_length`: {self.acceptance_length:g} exceeds tokens + 1 = {self.tokens + 1}, "
                             "the most one step can yield")
        tree = self.tree
        if tree is not None:
            if self.acceptance_length is None:
                raise ValueError("`tree`: a tree's accept length is not a chain's; give acceptance_length, measured "
                                 "with this tree (the engine logs it), instead of acceptance_rate")
            # SGLang picks the verified nodes among the first pass's topk and each later pass's topk x topk
            # expansions (speculative/eagle_utils.py:1083-1113).
            most = 1 + tree.topk + (self.tokens - 1) * tree.topk ** 2
            if not self.tokens + 1 <= tree.verified_tokens <= most:
                raise ValueError(f"`tree.verified_tokens`: {tree.verified_tokens} is outside {self.tokens + 1}..{most}, "
                                 f"what {self.tokens} draft passes of top-{tree.topk} can offer the target")
        if self.method == "draft" and self.draft_model is None:
            raise ValueError("`draft_model`: method draft needs one, a catalog model with the target's tokenizer "
                             "(e.g. llama-3.2-1b for Llama 3.1)")
        return self


class AdapterSpec(Strict):
    """LoRA / QLoRA: train low-rank adapters on a frozen base. Defaults follow NeMo 2 / Megatron-Bridge
    (rank 32 on the attention and MLP linears, source F2)."""

    method: Literal["lora", "qlora"]
    rank: PositiveInt = 32
    targets: list[Literal["attention", "mlp"]] = Field(default=["attention", "mlp"], min_length=1)

    def to_perf(self) -> Adapter:
        return Adapter(method=self.method, rank=self.rank, targets=tuple(self.targets))


class TrainingWorkload(Strict):
    kind: Literal["training"]
    model: str | LLMShape
    tokens: PositiveFloat = Field(description="tokens to train on")
    seq_len: PositiveInt = Field(le=10_000_000)
    global_batch_tokens: PositiveFloat | None = Field(
        default=None, description="approximate: each layout rounds it to the nearest multiple of dp x micro-batch sequences")
    global_batch_sequences: PositiveInt | None = Field(
        default=None, description="exact: dp x micro-batch must divide it")
    adapter: AdapterSpec | None = Field(default=None, description="fine-tune adapters on a frozen base "
                                        "(lora | qlora) instead of every weight")
    framework: str | None = Field(default=None, description="training framework: megatron-core | megatron-lm | "
                                  "torchtitan | deepspeed | llm-foundry (default: the catalog's default, "
                                  "megatron-core); see `planner catalog list frameworks`")

    @model_validator(mode="after")
    def _one_batch_size(self) -> "TrainingWorkload":
        if (self.global_batch_tokens is None) == (self.global_batch_sequences is None):
            raise ValueError("give exactly one of global_batch_tokens or global_batch_sequences")
        if self.global_batch_tokens is not None and self.global_batch_tokens < self.seq_len:
            raise ValueError(f"global_batch_tokens ({self.global_batch_tokens:g}) is less than one sequence of "
                             f"seq_len {self.seq_len} tokens; give at least {self.seq_len}")
        return self

    @property
    def global_batch_seqs(self) -> int:
        if self.global_batch_sequences is not None:
            return self.global_batch_sequences
        return max(1, round(self.global_batch_tokens / self.seq_len))

    def batch_for(self, sequences_per_step: int) -> int:
        """The global batch (sequences) a layout consuming `sequences_per_step` per micro-step runs.

        A batch given in tokens is a target, rounded to the nearest multiple; one given in sequences is
        taken as is (the structural check then rejects layouts that do not divide it).
        """
        if self.global_batch_sequences is not None:
            return self.global_batch_sequences
        return max(1, round(self.global_batch_seqs / sequences_per_step)) * sequences_per_step


class ServingWorkload(Strict):
    kind: Literal["serving"]
    model: str | LLMShape
    traffic: Traffic
    slo: ServingSLO = ServingSLO()
    engine: str | None = Field(default=None, description="serving engine: vllm | sglang | trtllm (default: the "
                               "catalog's default, vllm); see `planner catalog list engines`")
    kv_cache_dtype: Literal["auto", "fp8", "bf16", "fp16"] = Field(
        default="auto", description="the KV cache's element type, as the engine's --kv-cache-dtype: auto keeps the "
                                    "engine's default for the weights (see `planner catalog list engines`)")
    speculative: SpeculativeSpec | None = Field(default=None, description="speculative decoding: method, tokens "
                                                "and the acceptance measured on your traffic")


class VisionWorkload(Strict):
    kind: Literal["vision"]
    model: str | VisionShape
    streams: PositiveInt = Field(le=1_000_000)
    fps_per_stream: PositiveFloat = Field(le=1000)
    latency_budget_ms: PositiveFloat | None = None


Workload = Annotated[Union[TrainingWorkload, ServingWorkload, VisionWorkload], Field(discriminator="kind")]


class Degrees(Strict):
    """Allowed parallel degrees; left out, every structurally valid value."""

    nonempty_lists = ("tp", "pp", "dp", "ep", "cp")

    tp: list[PositiveInt] = []
    pp: list[PositiveInt] = []
    dp: list[PositiveInt] = []
    ep: list[PositiveInt] = []
    cp: list[PositiveInt] = Field(default=[], description="context parallel (training); default: 1, and up to 8 "
                                  "for sequences of 16k tokens or more")


class SpotPolicy(Strict):
    """How a training job lives with spot interruptions: it checkpoints, loses half an interval of work on
    average per interruption, and restarts. The time (and so the cost) of spot jobs is stretched by
    1 + checkpoint_s / (60 x interval_min) + interruptions_per_hour x (interval_min / 2 + restart_min) / 60."""

    interruptions_per_hour: float = Field(ge=0, le=60)
    checkpoint_interval_min: float = Field(gt=0, le=100_000)
    checkpoint_s: float = Field(ge=0, le=86_400)
    restart_min: float = Field(ge=0, le=10_000)

    @property
    def slowdown(self) -> float:
        return (1.0 + self.checkpoint_s / (60.0 * self.checkpoint_interval_min)
                + self.interruptions_per_hour * (self.checkpoint_interval_min / 2.0 + self.restart_min) / 60.0)


# What a spot plan assumes when the spec gives no `search.spot`: an ASSUMPTION, not a measured rate (no
# provider publishes GPU interruption rates per hour), chosen so spot is never free of risk by default:
# one interruption per 20 instance-hours, a 60 s checkpoint every 30 min, 15 min to restart.
DEFAULT_SPOT_POLICY = SpotPolicy(interruptions_per_hour=0.05, checkpoint_interval_min=30, checkpoint_s=60,
                                 restart_min=15)


class Search(Strict):
    nonempty_lists = ("devices", "providers", "regions", "pricing", "precisions", "micro_batches", "zero_stages",
                      "recompute")

    devices: list[str] = []
    providers: list[str] = []
    regions: list[str] = []
    pricing: list[PricingModel] = []
    precisions: list[SpecPrecision] = []
    degrees: Degrees = Degrees()
    micro_batches: list[PositiveInt] = []
    zero_stages: list[Literal[0, 1, 2, 3]] = []
    recompute: list[Recompute] = []
    attention_dp: Literal["auto", "always", "never"] = Field(
        default="auto", description="MoE serving: data-parallel attention with expert-parallel experts (auto: "
        "searched beside tensor parallel where the engine runs it; always: instead of it; never: tensor parallel only)")
    disaggregated: Literal["auto", "always", "never"] = Field(
        default="auto", description="serving: a prefill pool and a decode pool with the KV cache sent between them "
        "(auto: searched beside whole-request replicas where the engine runs it; always: instead of them; never: "
        "whole-request replicas only)")
    allow_mix: bool = False
    spot: SpotPolicy | None = Field(default=None, description="training on spot: interruption and checkpoint costs "
                                    "(default: an assumed 0.05 interruptions per hour, 30 min checkpoints)")
    spot_overhead: bool = Field(default=True, description="false: plan spot training as if never interrupted")
    min_price_confidence: Literal["high", "medium", "low"] = Field(
        default="medium", description="offerings whose price confidence is below this are left out (low: use every price)")

    @model_validator(mode="before")
    @classmethod
    def _merge_repeats(cls, data):
        """A name listed twice means it once (a thousand repeats must not multiply the search)."""
        if isinstance(data, dict):
            data = {k: list(dict.fromkeys(v)) if isinstance(v, list) and all(isinstance(i, (str, int)) for i in v)
                    else v for k, v in data.items()}
        return data


class Limits(Strict):
    max_devices: PositiveInt | None = Field(default=None, le=MAX_DEVICES)
    max_utilization: float = Field(
        default=0.9, gt=0, le=1,
        description="serving and vision: highest planned utilisation per replica; the rest is headroom for bursts")
    power_kw: PositiveFloat | None = None
    budget_usd_per_hour: PositiveFloat | None = None
    budget_usd: PositiveFloat | None = Field(default=None, description="whole-job budget (training)")
    deadline_days: PositiveFloat | None = None
    inventory: dict[str, Annotated[int, Field(ge=1, le=MAX_DEVICES)]] = Field(
        default_factory=dict, description="devices available per device id")


class OnPremSite(Strict):
    """Owned hardware: the devices in `limits.inventory` become candidates, priced by their electricity."""

    pue: float = Field(ge=1.0, le=3.0)
    electricity_usd_per_kwh: PositiveFloat | None = Field(default=None, le=MAX_USD_PER_KWH)
    grid_gco2_per_kwh: float | None = Field(default=None, ge=0, le=MAX_GCO2_PER_KWH)


class WorkloadSpec(Strict):
    name: str
    description: str | None = None
    include: list[str] = []
    workload: Workload
    search: Search = Search()
    limits: Limits = Limits()
    onprem: OnPremSite | None = None
    objective: Objective = "cost"


def _deep_merge(base: dict, override: dict) -> dict:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def resolve_profile(name: str, here: Path, constraints_dir: Path, spec_dir: Path | None = None) -> Path:
    """The profile file an `include:` names, looked up beside the file including it (`here`), then among the
    shipped profiles; it must lie inside the spec's folder (`spec_dir`, default `here`) or the shipped ones.

    Anything else (an absolute path, `..`, a symlink out) is refused without being read, so an include can
    never show what another file on the machine holds."""
    roots = [(spec_dir or here).resolve(), constraints_dir.resolve()]
    candidates = [here / name, constraints_dir / name, constraints_dir / f"{name}.yaml"]
    outside = False
    for path in candidates:
        try:
            real = path.resolve()
            if not any(real.is_relative_to(root) for root in roots):
                outside = outside or path.exists()
                continue
            if real.is_file():
                return path
        except OSError:  # a name the file system cannot hold (too long, bad bytes) names no profile
            continue
    if outside or Path(name).is_absolute():
        raise SpecError(Problem(f"include `{name}` is outside the spec's folder and the shipped profiles",
                                path="include",
                                fix="copy the profile next to the spec (or into a folder below it)"))
    known = sorted(p.stem for p in constraints_dir.glob("*.yaml"))
    raise SpecError(
        Problem(
            f"unknown constraint profile `{name}`.{did_you_mean(name, known)}",
            path="include",
            fix=f"use one of: {', '.join(known)} (from {constraints_dir}) or a path to a YAML file",
        )
    )


class Profile(Strict):
    """A reusable bundle of limits and SLOs; it may set any part of a spec but `name`/`workload.kind`."""

    description: str
    rationale: str | None = None
    source: list[str] = []
    include: list[str] = []
    workload: dict[str, Any] = {}
    search: dict[str, Any] = {}
    limits: dict[str, Any] = {}
    objective: Objective | None = None


def _load_profiles(names: list[str], here: Path, constraints_dir: Path, seen: tuple[str, ...],
                   spec_dir: Path) -> dict:
    merged: dict = {}
    for name in names:
        path = resolve_profile(name, here, constraints_dir, spec_dir)
        key = str(path.resolve())
        if key in seen:
            raise SpecError(Problem(f"profile `{name}` includes itself", file=str(path), path="include",
                                    fix="remove the cycle"))
        doc = load_yaml(path, SpecError)
        profile: Profile = parse_document(doc, Profile, SpecError)
        nested = _load_profiles(profile.include, path.parent, constraints_dir, seen + (key,), spec_dir)
        body = {k: v for k, v in doc.data.items() if k in ("workload", "search", "limits", "objective")}
        merged = _deep_merge(merged, _deep_merge(nested, body))
    return merged


def load_spec(path: Path | str, constraints_dir: Path | None = None) -> WorkloadSpec:
    path = Path(path)
    doc = load_yaml(path, SpecError)
    if not isinstance(doc.data, dict):
        raise SpecError(Problem("expected a mapping at the top level", file=str(path), fix="see `planner schema`"))
    return spec_from_document(doc, path, constraints_dir)


def spec_from_document(doc: YamlDocument, path: Path, constraints_dir: Path | None = None) -> WorkloadSpec:
    """A spec from an already-read YAML document of `path` (a sweep edits one before parsing it)."""
    from planner.catalog.loader import default_constraints_dir

    includes = doc.data.get("include") or []
    if not isinstance(includes, list) or not all(isinstance(i, str) for i in includes):
        raise SpecError(Problem("must be a list of profile names", file=str(path), path="include",
                                line=doc.line_of(("include",)), fix="write include: [chat-interactive]"))
    try:
        base = _load_profiles(includes, path.parent, constraints_dir or default_constraints_dir(), (), path.parent)
    except SpecError as exc:
        raise SpecError([Problem(p.message, file=p.file or str(path), path=p.path, fix=p.fix, line=p.line)
                         for p in exc.problems]) from None
    merged = YamlDocument(file=doc.file, data=_deep_merge(base, doc.data), text=doc.text)
    return parse_document(merged, WorkloadSpec, SpecError)


def spec_json_schema() -> dict:
    return WorkloadSpec.model_json_schema()


__all__ = [
    "WorkloadSpec",
    "TrainingWorkload",
    "ServingWorkload",
    "VisionWorkload",
    "load_spec",
    "spec_json_schema",
    "PRICING_MODELS",
]
