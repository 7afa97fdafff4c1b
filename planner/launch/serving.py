"""The serving engine's own launch for one replica of a plan: vLLM `vllm serve`, SGLang `launch_server`,
TensorRT-LLM `trtllm-serve` (with its LLM-API options file), at the versions engines.yaml pins.

Every setting the performance model assumed is written out rather than left to the engine's default, so
the server runs what was predicted: the running-sequence cap the solver chose, the step token budget, the
memory rule the KV capacity was computed with, the KV cache dtype and the quantization.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import yaml

from planner.catalog.loader import Catalog
from planner.errors import EmitError, Problem
from planner.launch.request import LaunchRequest
from planner.perf.serving import EngineParams, wide_ep_redundant_experts
from planner.units import GIB

# The share of the KV cache left free at the planned load: request lengths vary around the spec's, and a
# burst of long ones is what makes an engine preempt (recompute) what it was running.
MEMORY_SAFETY_MARGIN = 0.10


@dataclass
class ServerLaunch:
    engine: str
    version: str
    argv: list[str]  # the server, on the replica's first node (and on every node when worker_argv is None)
    port: int
    devices_per_node: int  # devices of the replica on each of its nodes
    nodes: int  # nodes one replica spans
    leader_before: list[list[str]] = field(default_factory=list)  # run on the first node before the server
    worker_argv: list[str] | None = None  # what the replica's other nodes run instead of the server
    files: dict[str, str] = field(default_factory=dict)  # extra files the command reads, by name
    assumptions: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)  # exported on every node before it starts
    # What each launcher is handed (launcher id, version, "argv" or "keys", items): checked before writing.
    checks: list[tuple[str, str, str, list[str]]] = field(default_factory=list)


@dataclass(frozen=True)
class MemoryBudget:
    """The engine's memory flag, what it leaves outside the engine's pool (the safety margin against
    out-of-memory at start-up), and how full the KV cache runs at the planned load."""

    flag_value: float  # the engine's own number (a fraction)
    outside_gib: float  # per device, never handed to the engine's pool
    capacity_gib: float
    kv_tokens: float  # the KV cache the rest holds, tokens per replica
    sequences_fit: int  # sequences of the spec's lengths that fit in it
    running: float  # sequences running at once at the planned rate

    @property
    def kv_headroom(self) -> float:
        return 1.0 - self.running / self.sequences_fit if self.sequences_fit else -math.inf

    def sentences(self, flag: str, cap: int) -> list[str]:
        return [f"{flag} {self.flag_value:.2f}: {self.outside_gib:.1f} GiB of each device's {self.capacity_gib:.1f} GiB "
                "stays outside the engine's pool (CUDA context, communication buffers, fragmentation), the margin "
                "against running out of memory at start-up.",
                f"The KV cache then holds {self.kv_tokens:,.0f} tokens: {self.sequences_fit} sequences of the spec's "
                f"lengths; at the planned rate {self.running:.0f} run at once ({max(self.kv_headroom, 0):.0%} to spare) "
                f"under a cap of {cap}."]


def engine_fraction(engine: EngineParams, device) -> float:
    """The engine's memory flag: its fraction, or (SGLang) all but the reserve as a share of the device."""
    if engine.memory_fraction_of == "total_minus_reserved":
        return 1.0 - engine.reserved_bytes / device.memory_bytes
    return engine.memory_fraction


def memory_budget(req: LaunchRequest, catalog: Catalog, engine: EngineParams) -> MemoryBudget:
    """The engine's memory flag as the model read it (engines.yaml), and the KV cache it leaves."""
    device = catalog.accelerators[req.plan.device]
    capacity = device.memory_bytes / GIB
    profile = replica_profile_of(req, catalog, engine)
    fraction = engine_fraction(engine, device)
    if engine.memory_fraction_of == "total_minus_reserved":
        outside = engine.reserved_bytes / GIB
    elif engine.memory_fraction_of == "free_after_weights":
        outside = (1.0 - fraction) * (capacity - profile.memory.weights / GIB)
    else:
        outside = (1.0 - fraction) * capacity
    return MemoryBudget(flag_value=fraction, outside_gib=outside, capacity_gib=capacity,
                        kv_tokens=profile.kv_capacity_tokens, sequences_fit=profile.max_batch_fit,
                        running=float(req.plan.predicted.get("running_batch") or req.plan.batch.micro))


def replica_profile_of(req: LaunchRequest, catalog: Catalog, engine: EngineParams):
    """The replica as the performance model saw it, rebuilt from the result (the same function `solve` used)."""
    from planner.catalog.schema import LLMShape
    from planner.perf.serving import replica_profile
    from planner.perf.shapes import llm_footprint
    from planner.perf.types import Parallel

    device = catalog.accelerators[req.plan.device]
    p = req.plan.parallel
    par = Parallel(tp=p.tp, pp=p.pp, dp=p.dp, ep=p.ep, attention_dp=p.attention_dp, micro_batch=req.plan.batch.micro)
    from planner.evaluate import features_of

    w = req.workload
    shape = LLMShape.model_validate(w.shape)
    cache = w.prefix_cache
    features = features_of(shape, w.speculative, cache.cached_tokens if cache else 0,
                           cache.shared_prefix_tokens if cache else 0, catalog)
    return replica_profile(llm_footprint(shape), input_tokens=w.input_tokens, output_tokens=w.output_tokens, par=par,
                           precision=req.plan.precision, device=device, family=catalog.family_of(device),
                           system=catalog.systems[req.plan.system], engine=engine, features=features)


def _max_model_len(req: LaunchRequest) -> int:
    w = req.workload
    return int(w.input_tokens + w.output_tokens)


def _engine_params(req: LaunchRequest, catalog: Catalog) -> EngineParams:
    device = catalog.accelerators[req.plan.device]
    par = req.plan.parallel
    return EngineParams.of(catalog.engine(req.workload.engine), device, par.tp * par.pp,
                           kv_cache_dtype=req.workload.kv_cache_dtype)


def _quantization(req: LaunchRequest, engine_id: str) -> tuple[list[str], list[str]]:
    """(flags, assumptions) for the plan's weight precision."""
    precision = req.plan.precision
    if precision in ("bf16", "fp16"):
        return [], []
    if precision == "fp8" and engine_id in ("vllm", "sglang"):
        return ["--quantization", "fp8"], [
            "FP8 weights: the engine quantizes the 16-bit checkpoint at load (dynamic per-tensor scales); a "
            "pre-quantized FP8 checkpoint of the same model works too, without the flag."]
    what = {"fp8": "an FP8 checkpoint (e.g. quantized with NVIDIA ModelOpt)",
            "int4": "an INT4 weight-only checkpoint (AWQ or GPTQ)", "int8": "an INT8 checkpoint (W8A8)",
            "fp4": "an NVFP4 checkpoint (NVIDIA ModelOpt)",
            "mxfp4": "an MXFP4 checkpoint (gpt-oss ships its MoE weights so)"}.get(precision, f"a {precision} checkpoint")
    return [], [f"{precision.upper()} weights: point MODEL at {what}; the engine reads the quantization from the "
                "checkpoint's config, so no flag is set."]


def _kv_dtype_flag(req: LaunchRequest, engine_id: str) -> list[str]:
    kv = req.workload.kv_cache_dtype
    if kv == "fp8":
        return ["--kv-cache-dtype", "fp8_e4m3" if engine_id == "sglang" else "fp8"]
    return []  # auto, bf16, fp16: the checkpoint's dtype, which is the engine's default


def _cap_per_scheduler(req: LaunchRequest) -> int:
    """The running-sequence cap one scheduler takes: the replica's, or under attention data parallel each rank's
    share of it (vLLM's and TensorRT-LLM's caps are per rank there)."""
    par = req.plan.parallel
    return math.ceil(req.plan.batch.micro / par.tp) if par.attention_dp else req.plan.batch.micro


def _draft_path(req: LaunchRequest, catalog: Catalog) -> tuple[str, list[str]]:
    """The drafter's checkpoint: the draft model's repository, the EAGLE head the spec names, or a placeholder."""
    spec = req.workload.speculative
    if spec.method == "draft":
        entry = catalog.models.get(spec.draft_model)
        if entry is not None and entry.hf_repo:
            return entry.hf_repo, []
    elif spec.draft_model:
        return spec.draft_model, []
    return "${DRAFT_MODEL}", [f"DRAFT_MODEL: point it at the {spec.method} drafter trained for this model (the spec "
                              "names none)."]


def _speculative_flags(req: LaunchRequest, catalog: Catalog, engine_id: str) -> tuple[list[str], dict, list[str]]:
    """(argv, LLM-API options, assumptions) for the spec's speculative decoding: a chain of `tokens` drafts per
    step (one candidate per position), or the spec's tree (SGLang only: other engines' trees are refused)."""
    spec = req.workload.speculative
    if spec is None:
        return [], {}, []
    k = spec.tokens
    path, notes = _draft_path(req, catalog) if spec.method != "mtp" else ("", [])
    accept = (f"acceptance rate {spec.acceptance_rate:g} per draft" if spec.acceptance_rate is not None
              else f"accept length {spec.acceptance_length:g}")
    shape = (f"a tree of top-{spec.tree.topk} over {k} draft passes, {spec.tree.verified_tokens} nodes verified"
             if spec.tree else f"{k} drafts a step")
    notes = notes + [f"Speculative decoding ({spec.method}, {shape}): the plan assumes the {accept}; check "
                     "the engine's logged acceptance on real traffic, since TPOT scales with it."]
    if engine_id == "vllm":
        config = {"method": "mtp"} if spec.method == "mtp" else {"method": "eagle3", "model": path}
        config["num_speculative_tokens"] = k
        return ["--speculative-config", json.dumps(config, separators=(",", ":"))], {}, notes
    if engine_id == "sglang":
        algorithm = {"eagle": "EAGLE3", "mtp": "NEXTN", "draft": "STANDALONE"}[spec.method]
        argv = ["--speculative-algorithm", algorithm]
        if spec.method != "mtp":
            argv += ["--speculative-draft-model-path", path]
        tree = spec.tree
        argv += ["--speculative-num-steps", str(k), "--speculative-eagle-topk", str(tree.topk if tree else 1),
                 "--speculative-num-draft-tokens", str(tree.verified_tokens if tree else k + 1)]
        return argv, {}, notes + ["SGLang turns its overlap scheduler off with speculative decoding (server_args.py "
                                  "727-733); the per-step host cost the plan charges is the engine's without overlap."]
    if spec.method == "mtp":
        options = {"decoding_type": "MTP", "num_nextn_predict_layers": k}
    else:
        options = {"decoding_type": "Eagle", "max_draft_len": k, "speculative_model_dir": path, "eagle3_one_model": True}
    return [], {"speculative_config": options}, notes


def server_launch(req: LaunchRequest, catalog: Catalog, data_parallel: int = 1) -> ServerLaunch:
    """One replica's server; with `data_parallel` > 1, that many replicas in one server process on one node
    (vLLM and SGLang data parallelism: one endpoint, a scheduler per replica), for schedulers that run one
    server per instance."""
    engine_id = req.workload.engine
    builders = {"vllm": _vllm, "sglang": _sglang, "trtllm": _trtllm}
    if engine_id not in builders:
        raise EmitError(Problem(f"no launch configuration is written for engine `{engine_id}`", path="workload.engine",
                                fix=f"solve with workload.engine one of: {', '.join(sorted(builders))}"))
    system = catalog.systems[req.plan.system]
    par = req.plan.parallel
    ranks = par.tp * par.pp
    per_node = min(ranks, system.devices_per_node)
    nodes = math.ceil(ranks / per_node)
    engine = _engine_params(req, catalog)
    if data_parallel > 1 and (engine_id == "trtllm" or nodes > 1 or par.attention_dp):
        raise EmitError(Problem(f"{engine_id} cannot run {data_parallel} replicas in one server here",
                                path="plan.replicas", fix="run one server per replica"))
    launch = builders[engine_id](req, catalog, engine, per_node, nodes)
    if data_parallel > 1:
        flag = "--data-parallel-size" if engine_id == "vllm" else "--dp-size"
        at = launch.argv.index("--host")
        launch.argv[at:at] = [flag, str(data_parallel)]
        launch.checks = [(which, version, kind, launch.argv[3:] if kind == "argv" else items)
                         for which, version, kind, items in launch.checks]
        launch.devices_per_node *= data_parallel
    budget = memory_budget(req, catalog, engine)
    flag = {"vllm": "--gpu-memory-utilization", "sglang": "--mem-fraction-static",
            "trtllm": "--kv_cache_free_gpu_memory_fraction"}[engine_id]
    launch.assumptions += budget.sentences(flag, req.plan.batch.micro)
    if budget.kv_headroom < MEMORY_SAFETY_MARGIN:
        launch.warnings.append(f"at the planned rate the running sequences fill the KV cache to within "
                               f"{max(budget.kv_headroom, 0):.0%} (margin kept: {MEMORY_SAFETY_MARGIN:.0%}): bursts "
                               "will queue or be preempted; plan for a lower load per replica to keep the margin")
    cache = req.workload.prefix_cache
    if cache is not None:
        shared = (f", {cache.shared_prefix_tokens:,} of them a prefix every request shares, held once"
                  if cache.shared_prefix_tokens else "")
        launch.assumptions.append(
            f"Prefix caching on (the engine's default, written out where it has a flag): the plan assumes "
            f"{cache.cached_tokens:,} of each request's {req.workload.input_tokens:,} prompt tokens are found in "
            f"the cache{shared}; the engine logs the hit rate it reaches.")
    launch.assumptions.append(
        f"max model length {_max_model_len(req):,} tokens = the spec's {req.workload.input_tokens:,} input + "
        f"{req.workload.output_tokens:,} output tokens: longer requests are refused; raise it only with the KV "
        "cache to hold them.")
    return launch


# What a wide-EP launch turns on beyond the exchange kernels, and why: the published runs the plan's step time is
# checked against (tests/validation/wide_ep.yaml) ran with both.
WIDE_EP_RECIPE = ("two micro-batches overlap one's exchanges with the other's compute, and EPLB places a redundant "
                  "copy of a busy expert on each rank, as in the published wide-EP runs the planner's step time is "
                  "checked against (LMSYS, DeepSeek-V3 on 96 H100: TBO +25.5% decode throughput at 256 sequences a "
                  "GPU, EPLB 2.54x); DeepEP must be installed in the image.")


# A disaggregated plan's pools: the KV connector each engine is launched with (catalogs/engines.yaml says where
# each reads it), and what routes a request to a prefill and then a decode server.
NIXL = '{"kv_connector":"NixlConnector","kv_role":"kv_both"}'
ROUTERS = {
    "vllm": ("a proxy that sends each request to a prefill server with max_tokens=1 and then to a decode server "
             "with the returned kv_transfer_params, streaming the decode reply: llm-d's or NVIDIA Dynamo's router, "
             "or vLLM 0.11.0's own tests/v1/kv_connector/nixl_integration/toy_proxy_server.py (--prefiller-hosts/"
             "ports, --decoder-hosts/ports; not in the wheel, in the source tree)"),
    "sglang": ("python3 -m sglang_router.launch_router --pd-disaggregation --prefill http://PREFILL:30000 "
               "--decode http://DECODE:30000 (one --prefill / --decode per server; the sglang-router package, "
               "test/test_disaggregation_utils.py:21-35 of SGLang 0.5.2)"),
    "trtllm": ("trtllm-serve disaggregated -c disagg_config.yaml (written here), which sends each request to a "
               "context (prefill) server and then a generation (decode) server"),
}


def _pool_flags(req: LaunchRequest, engine_id: str) -> tuple[list[str], dict, list[str]]:
    """A disaggregated plan's pool: the server flags (vLLM, SGLang) or LLM-API options (TensorRT-LLM) that make it
    one, and what they assume; nothing for a whole-request replica."""
    role = req.plan.role
    if role is None:
        return [], {}, []
    if engine_id == "vllm":
        return ["--kv-transfer-config", NIXL], {}, [
            "prefill server: NixlConnector holds each prompt's KV cache until a decode server pulls it by RDMA."
            if role == "prefill" else
            "decode server: NixlConnector pulls each prompt's KV cache from its prefill server by RDMA once the "
            "prefill ends; this server produces every output token."]
    if engine_id == "sglang":
        return ["--disaggregation-mode", role, "--disaggregation-transfer-backend", "mooncake"], {}, [
            f"{role} server: Mooncake moves the KV cache over RDMA (set --disaggregation-ib-device to the node's "
            "InfiniBand devices where there are several)."]
    options = {"cache_transceiver_config": {"backend": "DEFAULT"}}
    if role == "prefill":
        options["disable_overlap_scheduler"] = True  # a context server does not overlap (disagg-serving.md)
    return [], options, [f"{role} server: the cache transceiver (UCX by default) moves the KV cache."]


def _vllm(req: LaunchRequest, catalog: Catalog, engine: EngineParams, per_node: int, nodes: int) -> ServerLaunch:
    par = req.plan.parallel
    quant, notes = _quantization(req, "vllm")
    cap = _cap_per_scheduler(req)
    if par.attention_dp:
        # Data-parallel ranks with expert-parallel MoE; each rank schedules its own share of the cap.
        argv = ["vllm", "serve", "${MODEL}", "--tensor-parallel-size", "1", "--pipeline-parallel-size", str(par.pp),
                "--data-parallel-size", str(par.tp), "--enable-expert-parallel"]
        notes = notes + [f"Attention data parallel: {par.tp} ranks of {cap} running sequences each, the experts spread "
                         "over them (--enable-expert-parallel)."]
    else:
        argv = ["vllm", "serve", "${MODEL}",
                "--tensor-parallel-size", str(par.tp), "--pipeline-parallel-size", str(par.pp)]
        if par.ep > 1:
            argv += ["--enable-expert-parallel"]
    argv += ["--max-num-seqs", str(cap), "--max-model-len", str(_max_model_len(req)),
             "--max-num-batched-tokens", str(int(engine.max_step_tokens)),
             "--gpu-memory-utilization", f"{engine.memory_fraction:.2f}",
             "--block-size", str(engine.kv_block_tokens)]
    speculative, _, spec_notes = _speculative_flags(req, catalog, "vllm")
    argv += _kv_dtype_flag(req, "vllm") + quant + speculative
    if req.workload.prefix_cache is not None:
        argv += ["--enable-prefix-caching"]
    pool, _, pool_notes = _pool_flags(req, "vllm")
    argv += pool + ["--host", "0.0.0.0", "--port", "8000"]
    version = catalog.engine("vllm").version
    launch = ServerLaunch("vllm", version, argv, 8000, per_node, nodes, assumptions=notes + spec_notes + pool_notes)
    if nodes > 1:
        # vLLM spans nodes through a Ray cluster: the head runs the server, the others join and wait. Data-parallel
        # ranks are placed by Ray as whole engines (R per node), tensor and pipeline ranks by its executor.
        launch.argv = argv + (["--data-parallel-size-local", str(per_node), "--data-parallel-backend", "ray"]
                              if par.attention_dp else ["--distributed-executor-backend", "ray"])
        redundant = wide_ep_redundant_experts(par, catalog.systems[req.plan.system])
        if redundant:
            kernels = "deepep_high_throughput" if req.plan.role == "prefill" else "deepep_low_latency"
            launch.env = {"VLLM_ALL2ALL_BACKEND": kernels}
            launch.argv += ["--enable-dbo", "--enable-eplb",
                            "--eplb-config", json.dumps({"num_redundant_experts": redundant}, separators=(",", ":"))]
            launch.assumptions.append(
                f"Wide expert parallel over {nodes} nodes: VLLM_ALL2ALL_BACKEND={kernels} runs DeepEP's "
                f"{'normal' if req.plan.role == 'prefill' else 'low-latency'} kernels for the experts' exchanges "
                "(vLLM's default, allgather_reducescatter, sends every token to every rank); " + WIDE_EP_RECIPE)
        launch.leader_before = [["ray", "start", "--head", "--port=6379"],
                                ["python3", "-c", "import ray, time; ray.init(address='auto'); "
                                 f"[time.sleep(5) for _ in iter(lambda: len(ray.nodes()) < {nodes}, False)]"]]
        launch.worker_argv = ["ray", "start", "--address=${LEADER_ADDRESS}:6379", "--block"]
    launch.checks = [("vllm", version, "argv", launch.argv[3:])]
    return launch


def _sglang(req: LaunchRequest, catalog: Catalog, engine: EngineParams, per_node: int, nodes: int) -> ServerLaunch:
    par = req.plan.parallel
    quant, notes = _quantization(req, "sglang")
    fraction = engine_fraction(engine, catalog.accelerators[req.plan.device])
    argv = ["python3", "-m", "sglang.launch_server", "--model-path", "${MODEL}",
            "--tp-size", str(par.tp), "--pp-size", str(par.pp)]
    if par.ep > 1:
        argv += ["--ep-size", str(par.ep)]
    if par.attention_dp:
        argv += ["--enable-dp-attention", "--dp-size", str(par.tp)]
    argv += ["--max-running-requests", str(req.plan.batch.micro), "--context-length", str(_max_model_len(req)),
             "--chunked-prefill-size", str(int(engine.max_step_tokens)),
             "--mem-fraction-static", f"{fraction:.3f}", "--page-size", str(engine.kv_block_tokens)]
    speculative, _, spec_notes = _speculative_flags(req, catalog, "sglang")
    notes = notes + spec_notes
    pool, _, pool_notes = _pool_flags(req, "sglang")
    notes = notes + pool_notes
    argv += _kv_dtype_flag(req, "sglang") + quant + speculative + pool
    argv += ["--host", "0.0.0.0", "--port", "30000"]
    if nodes > 1:
        argv += ["--nnodes", str(nodes), "--node-rank", "${NODE_RANK}", "--dist-init-addr", "${LEADER_ADDRESS}:5000"]
    redundant = wide_ep_redundant_experts(par, catalog.systems[req.plan.system])
    if redundant:
        argv += ["--moe-a2a-backend", "deepep", "--deepep-mode", "auto", "--enable-two-batch-overlap",
                 "--enable-eplb", "--ep-num-redundant-experts", str(redundant)]
        notes.append(f"Wide expert parallel over {nodes} nodes: --moe-a2a-backend deepep runs DeepEP's low-latency "
                     "kernels in decode steps and its normal ones in prefill steps (--deepep-mode auto); "
                     + WIDE_EP_RECIPE)
    version = catalog.engine("sglang").version
    return ServerLaunch("sglang", version, argv, 30000, per_node, nodes, assumptions=notes,
                        checks=[("sglang", version, "argv", argv[3:])])


def _trtllm(req: LaunchRequest, catalog: Catalog, engine: EngineParams, per_node: int, nodes: int) -> ServerLaunch:
    par = req.plan.parallel
    _, notes = _quantization(req, "trtllm")
    if nodes > 1:
        raise EmitError(Problem(f"a {par.tp * par.pp}-device TensorRT-LLM replica spans {nodes} nodes; multi-node "
                                "trtllm-serve launches (MPI) are not written yet", path="plan.parallel",
                                fix="solve with search.degrees limiting tp x pp to one node, or with workload.engine "
                                    "vllm or sglang"))
    argv = ["trtllm-serve", "${MODEL}", "--backend", "pytorch", "--tp_size", str(par.tp), "--pp_size", str(par.pp)]
    if par.ep > 1:
        argv += ["--ep_size", str(par.ep)]
    step = int(engine.step_budget(req.workload.input_tokens, req.plan.batch.micro))
    argv += ["--max_batch_size", str(_cap_per_scheduler(req)), "--max_num_tokens", str(step),
             "--max_seq_len", str(_max_model_len(req)),
             "--kv_cache_free_gpu_memory_fraction", f"{engine.memory_fraction:.2f}",
             "--host", "0.0.0.0", "--port", "8000", "--extra_llm_api_options", "extra-llm-api-options.yaml"]
    kv_config = {"free_gpu_memory_fraction": round(engine.memory_fraction, 2)}
    if req.workload.prefix_cache is not None:
        kv_config["enable_block_reuse"] = True
    if req.workload.kv_cache_dtype == "fp8":
        kv_config["dtype"] = "fp8"  # otherwise the checkpoint's dtype, the default
    _, speculative, spec_notes = _speculative_flags(req, catalog, "trtllm")
    notes = notes + spec_notes
    options = {"enable_chunked_prefill": engine.chunked_prefill, "kv_cache_config": kv_config, **speculative}
    if par.attention_dp:
        options["enable_attention_dp"] = True
    _, pool, pool_notes = _pool_flags(req, "trtllm")
    options |= pool
    notes = notes + pool_notes
    text = ("# LLM-API options trtllm-serve reads (--extra_llm_api_options), written by planner emit.\n"
            + yaml.safe_dump(options, sort_keys=False))
    version = catalog.engine("trtllm").version
    keys = [f"{k}.{sub}" if isinstance(v, dict) else k for k, v in options.items()
            for sub in (v if isinstance(v, dict) else [None])]
    return ServerLaunch("trtllm", version, argv, 8000, per_node, nodes, files={"extra-llm-api-options.yaml": text},
                        assumptions=notes, checks=[("trtllm", version, "argv", argv[2:]),
                                                   ("trtllm", version, "keys", keys)])
