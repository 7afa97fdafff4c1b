"""The training framework's own launch for a plan: Megatron-LM `pretrain_gpt.py` arguments and torchtitan's
TOML job config (both under torchrun, one launcher per node) on GPUs, MaxText's `key=value` overrides on
TPUs, at the versions frameworks.yaml pins.

The layout is the plan's: TP/PP/CP/EP, virtual pipeline stages, micro and global batch, recompute,
precision, ZeRO stage / FSDP group. The model's architecture comes from the catalog shape; the data,
tokenizer and optimizer hyper-parameters are the user's, read from environment variables that fail loudly
when unset.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from planner.catalog.loader import Catalog
from planner.errors import EmitError, Problem
from planner.launch.request import LaunchRequest

RENDEZVOUS_PORT = 29500
# torchrun's flags as read from this revision of torch/distributed/run.py (catalogs/launchers.yaml).
TORCHRUN = ("torchrun", "run.py@010929fd")


@dataclass
class TrainLaunch:
    framework: str
    version: str
    argv: list[str]  # one node's command; ${NODE_RANK} and ${MASTER_ADDR} differ per node
    nodes: int
    devices_per_node: int
    files: dict[str, str] = field(default_factory=dict)
    assumptions: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # Settings that are the user's to choose (name -> what it is): every scheduler's file asks for them.
    required_env: dict[str, str] = field(default_factory=dict)
    # What each launcher is handed (launcher id, version, "argv" or "keys", items): checked before writing.
    checks: list[tuple[str, str, str, list[str]]] = field(default_factory=list)


def _steps(req: LaunchRequest) -> int:
    w = req.workload
    tokens_per_step = (req.plan.batch.global_ or 1) * (w.seq_len or 1)
    return max(1, math.ceil((w.tokens or 0) / tokens_per_step))


def _torchrun(nodes: int, per_node: int) -> list[str]:
    return ["torchrun", f"--nnodes={nodes}", f"--nproc-per-node={per_node}", "--node-rank=${NODE_RANK}",
            "--master-addr=${MASTER_ADDR}", f"--master-port={RENDEZVOUS_PORT}"]


def _adapter_refusal(req: LaunchRequest, framework: str) -> None:
    if req.workload.adapter:
        method = req.workload.adapter.get("method", "lora")
        raise EmitError(Problem(f"{method.upper()} fine-tuning launches are not written for {framework}",
                                path="workload.adapter",
                                fix="run the adapter job with your fine-tuning stack using the plan's layout, "
                                    "or emit a full-weight training plan"))


def _registered(req: LaunchRequest, framework: str, names: dict, other: str = "", adapters: bool = False):
    """The framework's own name for the plan's model (frameworks that ship model configs by name)."""
    if not adapters:
        _adapter_refusal(req, framework)
    found = names.get(req.workload.model)
    if found is None:
        raise EmitError(Problem(f"{framework} has no model config for `{req.workload.model}`", path="workload.model",
                                fix=f"use one of {', '.join(sorted(names))}{other}"))
    return found


def megatron(req: LaunchRequest, catalog: Catalog, nodes: int, per_node: int) -> TrainLaunch:
    _adapter_refusal(req, "Megatron-LM")
    shape, par, w = req.workload.shape, req.plan.parallel, req.workload
    training = req.plan.training
    args = ["pretrain_gpt.py",
            "--tensor-model-parallel-size", str(par.tp), "--pipeline-model-parallel-size", str(par.pp),
            "--context-parallel-size", str(par.cp)]
    chunks = par.pp * training.virtual_stages
    uneven_note = None
    if training.virtual_stages > 1:
        args += ["--num-virtual-stages-per-pipeline-rank", str(training.virtual_stages)]
    if shape["layers"] % chunks and (shape["layers"] + 2) % chunks == 0:
        # Counting the embedding and the loss as a layer each evens the split (Llama 3 405B: 126 + 2 = 16 x 8).
        args += ["--account-for-embedding-in-pipeline-split", "--account-for-loss-in-pipeline-split"]
    elif shape["layers"] % chunks:
        uneven_note = (f"{shape['layers']} layers do not split evenly over {chunks} pipeline chunks: set "
                       "--decoder-first-pipeline-num-layers / --decoder-last-pipeline-num-layers before running")
    if par.tp > 1:
        args += ["--sequence-parallel"]
    moe = shape.get("moe")
    if moe:
        args += ["--num-experts", str(moe["experts"]), "--moe-router-topk", str(moe["top_k"]),
                 "--expert-model-parallel-size", str(par.ep)]
    args += ["--num-layers", str(shape["layers"]), "--hidden-size", str(shape["hidden"]),
             "--ffn-hidden-size", str(shape["ffn"]), "--num-attention-heads", str(shape["heads"])]
    if shape["kv_heads"] < shape["heads"]:
        args += ["--group-query-attention", "--num-query-groups", str(shape["kv_heads"])]
    if shape.get("head_dim"):
        args += ["--kv-channels", str(shape["head_dim"])]
    if shape.get("gated_mlp", True):
        args += ["--swiglu"]
    if not shape.get("tied_embeddings", False):
        args += ["--untie-embeddings-and-output-weights"]
    args += ["--normalization", "RMSNorm", "--position-embedding-type", "rope", "--disable-bias-linear",
             "--seq-length", str(w.seq_len), "--max-position-embeddings", str(max(w.seq_len, shape["max_seq_len"])),
             "--micro-batch-size", str(req.plan.batch.micro), "--global-batch-size", str(req.plan.batch.global_),
             "--train-iters", str(_steps(req)), "--bf16"]
    if req.plan.precision == "fp8":
        args += ["--fp8-format", "hybrid"]
    if training.recompute == "selective":
        args += ["--recompute-granularity", "selective"]
    elif training.recompute == "full":
        args += ["--recompute-granularity", "full", "--recompute-method", "uniform", "--recompute-num-layers", "1"]
    if training.zero_stage >= 3:
        args += ["--use-torch-fsdp2"]
    elif training.zero_stage >= 1:
        args += ["--use-distributed-optimizer", "--overlap-grad-reduce", "--overlap-param-gather"]
    if par.tp > 1:
        args += ["--tp-comm-overlap"]
    args += ["--vocab-size", str(shape["vocab"]), "--tokenizer-type", "NullTokenizer", "--mock-data",
             "--lr", "${LR}"]
    notes = ["Data and tokenizer: the script trains on Megatron's mock data with a null tokenizer of the model's "
             "vocabulary size, which is what the step time was predicted for; replace --mock-data and "
             "--tokenizer-type with your dataset (--data-path) and tokenizer before a real run.",
             f"--train-iters {_steps(req):,} = the spec's {w.tokens:,.0f} tokens / (global batch "
             f"{req.plan.batch.global_} x {w.seq_len} tokens)."]
    if training.zero_stage >= 3:
        notes.append("ZeRO-3 is run as PyTorch FSDP2 (--use-torch-fsdp2), which shards parameters, gradients "
                     "and optimizer state over the data-parallel group as the plan assumed.")
    fw = catalog.framework("megatron-lm")
    launcher = _torchrun(nodes, per_node)
    warnings = [uneven_note] if uneven_note else []
    return TrainLaunch("megatron-lm", fw.version, launcher + args, nodes, per_node, assumptions=notes,
                       warnings=warnings, required_env={"LR": "the peak learning rate (Megatron --lr)"},
                       checks=[(*TORCHRUN, "argv", launcher), ("megatron-lm", fw.version, "argv", args[1:])])


# torchtitan registers its model flavours by name; only these catalog models have one.
TORCHTITAN_FLAVORS = {"llama-3.1-8b": ("llama3", "8B"), "llama-3-8b": ("llama3", "8B"),
                      "llama-3.1-70b": ("llama3", "70B"), "llama-3-70b": ("llama3", "70B"),
                      "llama-3.1-405b": ("llama3", "405B")}


def torchtitan(req: LaunchRequest, catalog: Catalog, nodes: int, per_node: int) -> TrainLaunch:
    flavor = _registered(req, "torchtitan", TORCHTITAN_FLAVORS, ", or the Megatron-LM launch")
    par, w, training = req.plan.parallel, req.workload, req.plan.training
    # torchtitan shards with FSDP2 or not at all: a sharded optimizer (ZeRO-1/2) becomes FSDP over the same
    # group, which fits in less memory than planned but gathers parameters every step.
    shard = (training.shard_group or par.dp) if training.zero_stage >= 1 else 1
    replicate = par.dp // shard
    shard_degree = shard
    local_batch = req.plan.batch.global_ // par.dp
    config = {
        "job": {"dump_folder": "./outputs"},
        "model": {"name": flavor[0], "flavor": flavor[1]},
        "training": {"local_batch_size": local_batch, "global_batch_size": req.plan.batch.global_,
                     "seq_len": w.seq_len, "steps": _steps(req), "mixed_precision_param": "bfloat16"},
        "parallelism": {"data_parallel_replicate_degree": replicate, "data_parallel_shard_degree": shard_degree,
                        "tensor_parallel_degree": par.tp, "pipeline_parallel_degree": par.pp,
                        "context_parallel_degree": par.cp,
                        "pipeline_parallel_schedule": "Interleaved1F1B" if training.virtual_stages > 1 else "1F1B",
                        "pipeline_parallel_microbatch_size": req.plan.batch.micro},
        # Selective: op-level recompute (the attention core), as Megatron's selective recompute.
        "activation_checkpoint": {"mode": training.recompute} | (
            {"selective_ac_option": "op"} if training.recompute == "selective" else {}),
    }
    notes = [f"Micro-batch {req.plan.batch.micro} per pipeline step; local batch {local_batch} = global "
             f"{req.plan.batch.global_} / {par.dp} data-parallel ranks."]
    if 1 <= training.zero_stage < 3:
        notes.append(f"The plan's ZeRO-{training.zero_stage} (optimizer state sharded over {shard} ranks) runs as FSDP "
                     "over the same ranks: torchtitan has no optimizer-only sharding, so parameters are gathered every "
                     "step and the step is slower than the prediction for the plan's framework.")
    if req.plan.precision == "fp8":
        config["model"]["converters"] = ["quantize.linear.float8"]
        notes.append("FP8 GEMMs through torchao's float8 linear converter (its default tensorwise recipe).")
    fw = catalog.framework("torchtitan")
    launcher = _torchrun(nodes, per_node)
    own = ["--job.config_file", "torchtitan.toml"]
    keys = [f"{section}.{key}" for section, table in config.items() for key in table]
    text = "# torchtitan job config written by planner emit: the plan's layout; data and optimizer are yours.\n"
    return TrainLaunch("torchtitan", fw.version, launcher + ["-m", "torchtitan.train"] + own, nodes, per_node,
                       files={"torchtitan.toml": text + _toml(config)}, assumptions=notes,
                       checks=[(*TORCHRUN, "argv", launcher), ("torchtitan", fw.version, "argv", own),
                               ("torchtitan", fw.version, "keys", keys)])


def _toml(config: dict[str, dict]) -> str:
    def value(v) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return str(v)

    return "\n".join(f"[{section}]\n" + "".join(f"{k} = {value(v)}\n" for k, v in table.items())
                     for section, table in config.items())


# MaxText ships model configs by name; only these catalog models have one (source L7).
MAXTEXT_MODELS = {"llama-3-8b": "llama3-8b", "llama-3-70b": "llama3-70b", "llama-3.1-8b": "llama3.1-8b",
                  "llama-3.1-70b": "llama3.1-70b", "llama-3.1-405b": "llama3.1-405b"}
MAXTEXT_VERSION = "tpu-recipes-v0.1.5"


# Adapters (LoRA, QLoRA with NF4 base weights) train through MaxText's post-training SFT trainer, which the
# tpu-recipes tag above does not have; it is pinned to the commit it was read at (source L14).
MAXTEXT_SFT_VERSION = "main@e591f30c"


def maxtext(req: LaunchRequest, catalog: Catalog, nodes: int, per_node: int) -> TrainLaunch:
    """TPU: MaxText's `key=value` overrides of base.yml (pre-training) or of the SFT trainer (adapters); one
    process per host, JAX finds the slice itself."""
    adapter = req.workload.adapter
    name = _registered(req, "MaxText", MAXTEXT_MODELS, adapters=True)
    par, w, training = req.plan.parallel, req.workload, req.plan.training
    system = catalog.systems[req.plan.system]
    slice_devices = min(req.plan.devices, system.scaleup.domain_devices)
    slices = math.ceil(req.plan.devices / slice_devices)
    shard = (training.shard_group or par.dp) if training.zero_stage >= 3 else 1
    data_in_slice = par.dp // shard // slices
    micro_per_step = req.plan.batch.global_ // (par.dp * req.plan.batch.micro)
    settings = {"run_name": "${RUN_NAME:-planner}", "model_name": name, "base_output_directory": "${OUTPUT_DIR}"}
    required = {"OUTPUT_DIR": "the gs:// folder MaxText writes checkpoints and logs to"}
    if adapter:
        settings["load_parameters_path"] = "${MAXTEXT_CKPT_PATH}"
        required["MAXTEXT_CKPT_PATH"] = "the base model checkpoint in MaxText format"
    else:
        settings["dataset_type"] = "synthetic"
    settings |= {"steps": _steps(req), "max_target_length": w.seq_len,
                 "per_device_batch_size": f"{req.plan.batch.global_ / req.plan.devices:g}",
                 "ici_fsdp_parallelism": shard, "ici_data_parallelism": max(1, data_in_slice),
                 "ici_tensor_parallelism": par.tp, "ici_pipeline_parallelism": par.pp,
                 "dcn_data_parallelism": slices,
                 # MaxText has no policy that keeps every activation; minimal saves the most of those it has.
                 "remat_policy": "full" if training.recompute == "full" else "minimal"}
    notes = [f"remat_policy {settings['remat_policy']} for the plan's {training.recompute} recompute.",
             f"{slices} slice(s) of {slice_devices} chips: FSDP {shard} x data {max(1, data_in_slice)} x TP {par.tp} x "
             f"PP {par.pp} inside a slice, data parallel across slices over DCN."]
    warnings = []
    if par.pp > 1:
        settings["num_layers_per_pipeline_stage"] = req.workload.shape["layers"] // (par.pp * training.virtual_stages)
        settings["num_pipeline_microbatches"] = micro_per_step
        if micro_per_step % par.pp:
            fixed = -(-micro_per_step // par.pp) * par.pp
            warnings.append(f"MaxText needs a multiple of {par.pp} pipeline micro-batches (the stages); the plan's "
                            f"{micro_per_step} is not: raise the global batch to {fixed * par.dp * req.plan.batch.micro} "
                            f"sequences ({fixed} micro-batches) or solve with workload.global_batch_sequences set so")
    if req.plan.precision != "bf16":
        warnings.append(f"MaxText quantizes GEMMs to FP8 on GPUs only: the {req.plan.precision} plan is written as bf16")
    if adapter:
        settings |= {"enable_nnx": "True", "pure_nnx_decoder": "True", "lora.enable_lora": "True",
                     "lora.lora_rank": adapter.get("rank", 32), "lora.lora_alpha": "${LORA_ALPHA}"}
        required["LORA_ALPHA"] = "the adapters' alpha (scale = alpha / rank)"
        if adapter.get("method") == "qlora":
            settings["lora.lora_weight_qtype"] = "nf4"  # the frozen base stored 4-bit, as the plan's memory assumed
        notes.append("The SFT trainer reads its dataset from the Hugging Face defaults of post_train/sft.yml "
                     "(hf_path, train_split, train_data_columns): set them to your data. MaxText applies LoRA to its "
                     "default modules (lora.lora_module_path empty); the plan assumed the attention and MLP linears.")
        argv = ["python3", "-m", "maxtext.trainers.post_train.sft.train_sft"]
        version = MAXTEXT_SFT_VERSION
    else:
        argv = ["python3", "-m", "MaxText.train", "src/MaxText/configs/base.yml"]
        version = MAXTEXT_VERSION
    argv += [f"{k}={v}" for k, v in settings.items()]
    return TrainLaunch("maxtext", version, argv, nodes, per_node, assumptions=notes, warnings=warnings,
                       required_env=required, checks=[("maxtext", version, "keys", list(settings))])


def train_launches(req: LaunchRequest, catalog: Catalog) -> list[TrainLaunch]:
    """The plan's framework first; on GPUs the other of Megatron-LM / torchtitan beside it when it has the
    model, so a team on either stack gets the same layout."""
    device = catalog.accelerators[req.plan.device]
    system = catalog.systems[req.plan.system]
    per_node = min(req.plan.devices, system.devices_per_node)
    nodes = math.ceil(req.plan.devices / per_node)
    if device.vendor == "Google":
        return [maxtext(req, catalog, nodes, per_node)]
    if device.vendor not in ("NVIDIA", "AMD"):
        raise EmitError(Problem(f"no training launcher is written for {device.vendor} {device.name} "
                                "(Megatron-LM and torchtitan run on NVIDIA and AMD GPUs, MaxText on TPUs)",
                                path="plan.device", fix="solve with search.devices limited to GPUs or TPUs"))
    first = torchtitan if req.workload.framework in ("torchtitan", "torchtitan-2024") else megatron
    out = [first(req, catalog, nodes, per_node)]
    other = megatron if first is torchtitan else torchtitan
    try:
        out.append(other(req, catalog, nodes, per_node))
    except EmitError:
        pass  # the other stack lacks this model or adapter: the plan's own framework is enough
    return out
