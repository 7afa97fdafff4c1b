"""Write a plan's launch configurations into a directory: the engine's or framework's command, the
Kubernetes, SkyPilot and SLURM files around it, and a README saying what each file is and what was assumed.

Every command is checked against the pinned flag lists of catalogs/launchers.yaml before anything is
written; a directory that holds files this command did not write is never written into.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from planner.catalog.loader import Catalog
from planner.errors import EmitError, Problem
from planner.launch import deploy
from planner.launch.flags import Launchers, check_launch, load_launchers
from planner.launch.request import LaunchRequest, PlanBlock
from planner.launch.serving import ROUTERS, ServerLaunch, server_launch
from planner.launch.training import TrainLaunch, train_launches

# Left in a directory this command wrote, so a later emit may replace its own files and nobody else's.
MARKER = ".planner-emit"


@dataclass
class Emitted:
    directory: Path
    files: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def check_directory(out_dir: Path) -> None:
    """Refuse before any work a target that is a file or holds someone else's files."""
    if out_dir.exists() and not out_dir.is_dir():
        raise EmitError(Problem("exists and is not a directory", file=str(out_dir), fix="pass a new directory"))
    if out_dir.is_dir() and any(out_dir.iterdir()) and not (out_dir / MARKER).exists():
        raise EmitError(Problem("the directory holds files planner emit did not write", file=str(out_dir),
                                fix="pass an empty or new directory (emit only replaces its own output)"))


def resource_name(launchers: Launchers, vendor: str) -> str:
    plugin = launchers.device_plugins.get(vendor)
    if plugin is None:
        raise EmitError(Problem(f"no Kubernetes device resource is known for {vendor} accelerators",
                                path="plan.device", fix="add the vendor's device plugin to catalogs/launchers.yaml"))
    return plugin.resource


# Written where no image is published for the pinned version: Kubernetes refuses to pull it, so it cannot
# be deployed by mistake, and the README says what to put there.
NO_IMAGE = "REPLACE-WITH-IMAGE"


def _image(launchers: Launchers, launcher_id: str, version: str, vendor: str) -> tuple[str, list[str]]:
    image = launchers.image(launcher_id, version, vendor)
    if image is not None:
        return image, []
    return NO_IMAGE, [f"no container image is published for {launcher_id} {version} on {vendor} devices: build one "
                      f"with {launcher_id} {version} installed and replace {NO_IMAGE} in k8s.yaml"]


def _name(req: LaunchRequest) -> str:
    # A DNS-1035 label: Kubernetes Service names allow lowercase letters, digits and '-', 63 at most.
    # A pool of a disaggregated plan is named by its role too: both pools may run on one device type.
    raw = f"{req.workload.model}-{req.plan.device}" + (f"-{req.plan.role}" if req.plan.role else "")
    return re.sub(r"[^a-z0-9-]+", "-", raw.lower()).strip("-")[:63].rstrip("-")


def _node_file(what: str, launch: ServerLaunch | TrainLaunch, defaults: dict[str, str]) -> str:
    lines = ["#!/bin/bash", f"# {what}", "# Run on every node of the job: NODE_RANK (0 leads) and LEADER_ADDRESS / "
             "MASTER_ADDR name the node and the first node when it spans more than one.",
             "set -euo pipefail", 'cd "$(dirname "$0")"', "export NODE_RANK=${NODE_RANK:-0}",
             "export LEADER_ADDRESS=${LEADER_ADDRESS:-127.0.0.1} MASTER_ADDR=${MASTER_ADDR:-${LEADER_ADDRESS}}"]
    lines += [f'export {var}="${{{var}:-{value}}}"' for var, value in defaults.items()]
    required = getattr(launch, "required_env", {})
    lines += [deploy.require(var, what_) for var, what_ in sorted(required.items())]
    return "\n".join(lines + [deploy.node_script(launch)]) + "\n"


def _offering_files(req: LaunchRequest, catalog: Catalog, name: str, launch, model: str | None,
                    launchers: Launchers) -> tuple[dict[str, str], list[str]]:
    """The SkyPilot task, when the plan rents an instance SkyPilot launches by its type. SkyServe runs one
    server per instance, so serving replicas that share an instance run as one data-parallel server."""
    o = req.plan.offering
    if o is None or o.provider == "onprem":
        return {}, ["sky.yaml is not written: the plan runs on owned hardware (use slurm.sbatch or k8s.yaml)."]
    cloud = launchers.skypilot_clouds.get(o.provider)
    if cloud is None or (o.devices_per_instance or 0) < launch.devices_per_node:
        why = (f"SkyPilot does not launch {o.provider}" if cloud is None
               else f"{o.instance} is sold per device, not as an instance type SkyPilot launches")
        return {}, [f"sky.yaml is not written: {why}."]
    spot = o.pricing == "spot"
    notes = []
    replicas = 1
    if isinstance(launch, ServerLaunch):
        per_instance = min(req.plan.replicas, o.devices_per_instance // launch.devices_per_node) if launch.nodes == 1 else 1
        if per_instance > 1:
            try:
                launch = server_launch(req, catalog, data_parallel=per_instance)
            except EmitError:
                return {}, [f"sky.yaml is not written: {launch.engine} cannot serve {per_instance} replicas from one "
                            f"{o.instance} as one server (SkyServe runs one per instance); use k8s.yaml or slurm.sbatch."]
            check_launch(launchers, launch)
            notes.append(f"sky.yaml serves {per_instance} replicas per {o.instance} as one data-parallel server; "
                         f"{-(-req.plan.replicas // per_instance)} SkyServe replica(s).")
        replicas = -(-req.plan.replicas // per_instance)
    return {"sky.yaml": deploy.skypilot_task(name, launch, cloud, o.region, o.instance, spot, model, replicas)}, notes


def _serving_files(req: LaunchRequest, catalog: Catalog, launchers: Launchers) -> tuple[dict[str, str], list[str], list[str]]:
    launch = server_launch(req, catalog)
    check_launch(launchers, launch)
    device = catalog.accelerators[req.plan.device]
    system = catalog.systems[req.plan.system]
    image, image_warning = _image(launchers, launch.engine, launch.version, device.vendor)
    name = _name(req)
    model = req.workload.hf_repo or "SET-ME/checkpoint"
    replicas = req.plan.replicas
    instance = req.plan.offering.instance if req.plan.offering and req.plan.offering.devices_per_instance else None
    files = {"launch.sh": _node_file(f"{launch.engine} {launch.version}: one replica of the plan", launch,
                                     {"MODEL": model}),
             "k8s.yaml": deploy.kubernetes_serving(name, launch, image, model, replicas,
                                                   resource_name(launchers, device.vendor), instance),
             "slurm.sbatch": deploy.slurm_script(name, launch, replicas,
                                                 node_share=launch.devices_per_node < system.devices_per_node)}
    files |= launch.files
    sky, notes = _offering_files(req, catalog, name, launch, model, launchers)
    files |= sky
    notes = launch.assumptions + notes
    if not req.workload.hf_repo:
        notes.insert(0, "MODEL: the catalog names no checkpoint for this model; set MODEL before launching.")
    else:
        notes.insert(0, f"MODEL defaults to {req.workload.hf_repo}, the repository the catalog's shape was read "
                        "from; set MODEL to an instruct or fine-tuned checkpoint of the same architecture to serve that.")
    summary = [f"{launch.engine} {launch.version} (image {image}): {replicas} replica(s) of "
               f"{launch.devices_per_node * launch.nodes} x {req.plan.device} "
               f"(TP{req.plan.parallel.tp} PP{req.plan.parallel.pp}"
               + (f" EP{req.plan.parallel.ep}" if req.plan.parallel.ep > 1 else "")
               + (", attention data parallel" if req.plan.parallel.attention_dp else "") + ")"
               + (f" over {launch.nodes} nodes each" if launch.nodes > 1 else "")
               + f", up to {req.plan.batch.micro} running sequences per replica."]
    return files, summary + [""] + [f"- {n}" for n in notes], launch.warnings + image_warning


def _pool_files(req: LaunchRequest, catalog: Catalog, launchers: Launchers,
               source: str) -> tuple[dict[str, str], list[str], list[str]]:
    """A disaggregated plan: each pool's files in its own folder, and how requests reach both."""
    files: dict[str, str] = {}
    body: list[str] = []
    warnings: list[str] = []
    pools = {}
    for role in ("prefill", "decode"):
        parts = req.plan.roles.get(role) or []
        if len(parts) != 1:
            raise EmitError(Problem(f"the plan has {len(parts)} {role} pools; a launch is written for one prefill "
                                    "and one decode pool", file=source, path=f"plan.roles.{role}",
                                    fix="solve without search.allow_mix"))
        pool = LaunchRequest(workload=req.workload, plan=PlanBlock.model_validate(parts[0]))
        pools[role] = pool
        pool_files, pool_body, pool_warnings = _serving_files(pool, catalog, launchers)
        files |= {f"{role}/{name}": text for name, text in pool_files.items()}
        body += [f"### {role.capitalize()} pool ({role}/)", ""] + pool_body + [""]
        warnings += [f"{role}: {w}" for w in pool_warnings]
    engine = req.workload.engine
    if engine == "trtllm":
        files["disagg_config.yaml"] = _trtllm_disagg_config(pools)
    body = [f"A disaggregated plan: {pools['prefill'].plan.replicas} prefill and {pools['decode'].plan.replicas} "
            "decode server(s), each started from its folder's files. Every request goes to a prefill server, whose KV "
            "cache moves to a decode server over the network; route requests with " + ROUTERS[engine] + ".",
            ""] + body
    return files, body, warnings


def _trtllm_disagg_config(pools: dict[str, LaunchRequest]) -> str:
    """The orchestrator's file for `trtllm-serve disaggregated -c` (docs/source/1.0/features/disagg-serving.md)."""
    def servers(pool: LaunchRequest, env: str) -> dict:
        return {"num_instances": pool.plan.replicas, "tensor_parallel_size": pool.plan.parallel.tp,
                "pipeline_parallel_size": pool.plan.parallel.pp,
                "urls": [f"${{{env}_{i}}}:8000" for i in range(pool.plan.replicas)]}

    config = {"hostname": "0.0.0.0", "port": 8000, "backend": "pytorch",
              "context_servers": servers(pools["prefill"], "PREFILL_HOST"),
              "generation_servers": servers(pools["decode"], "DECODE_HOST")}
    return ("# trtllm-serve disaggregated -c disagg_config.yaml: set each ${...} to a server's host.\n"
            + yaml.safe_dump(config, sort_keys=False))


def _training_files(req: LaunchRequest, catalog: Catalog, launchers: Launchers) -> tuple[dict[str, str], list[str], list[str]]:
    launches = train_launches(req, catalog)
    device = catalog.accelerators[req.plan.device]
    name = _name(req)
    files: dict[str, str] = {}
    lines: list[str] = []
    warnings: list[str] = []
    for i, launch in enumerate(launches):
        check_launch(launchers, launch)
        image, image_warning = _image(launchers, launch.framework, launch.version, device.vendor)
        warnings += image_warning
        prefix = f"{launch.framework}/"
        own = {"launch.sh": _node_file(f"{launch.framework} {launch.version}: the plan's training job", launch, {}),
               "k8s.yaml": deploy.kubernetes_training(f"{name}-{launch.framework}"[:63].rstrip("-"), launch, image,
                                                      resource_name(launchers, device.vendor),
                                                      req.plan.offering.instance if req.plan.offering else None),
               "slurm.sbatch": deploy.slurm_script(name, launch)}
        own |= launch.files
        sky, notes = _offering_files(req, catalog, name, launch, None, launchers)
        own |= sky
        files |= {prefix + k: v for k, v in own.items()}
        predicted_for = {"megatron-core": "megatron-lm", "torchtitan-2024": "torchtitan"}.get(
            req.workload.framework, req.workload.framework)
        role = ("the framework the plan was predicted for" if launch.framework == predicted_for
                else "the plan's layout" if i == 0 else "the same layout on the other stack")
        lines += [f"### {launch.framework} {launch.version} ({role})", "",
                  f"Image {image}; {launch.nodes} node(s) x {launch.devices_per_node} x {req.plan.device}.", ""]
        lines += [f"- {n}" for n in launch.assumptions + notes] + [""]
        warnings += launch.warnings
    return files, lines, warnings


_FILE_ROLES = {
    "launch.sh": "the engine's or framework's command for one node (NODE_RANK, LEADER_ADDRESS pick its role)",
    "k8s.yaml": "Kubernetes manifest (Deployment + Service; LeaderWorkerSet for a replica over several nodes; "
                "an Indexed Job + headless Service for training)",
    "sky.yaml": "SkyPilot task (SkyServe service for serving replicas)",
    "slurm.sbatch": "SLURM batch script (one array task per serving replica)",
    "extra-llm-api-options.yaml": "TensorRT-LLM LLM-API options that trtllm-serve reads",
    "torchtitan.toml": "torchtitan job config",
}


def emit(req: LaunchRequest, catalog: Catalog, out_dir: Path, source: str) -> Emitted:
    check_directory(out_dir)
    launchers = load_launchers()
    if req.plan.roles:
        files, body, warnings = _pool_files(req, catalog, launchers, source)
    elif req.workload.kind == "serving":
        files, body, warnings = _serving_files(req, catalog, launchers)
    else:
        files, body, warnings = _training_files(req, catalog, launchers)
    listing = [f"- `{f}`: {_FILE_ROLES.get(Path(f).name, 'configuration')}" for f in sorted(files)]
    where = req.plan.device if not req.plan.roles else " (prefill) and ".join(
        req.plan.roles[r][0]["device"] for r in ("prefill", "decode")) + " (decode)"
    readme = "\n".join([f"# Launch configuration: {req.workload.model} on {where}", "",
                        f"Written by `planner emit` from {source}. Flags are pinned to the versions named below and "
                        "checked against catalogs/launchers.yaml.", "", "## Files", ""] + listing
                       + ["", "## What was assumed", ""] + body
                       + ([""] + ["## Warnings", ""] + [f"- {w}" for w in warnings] if warnings else []))
    files["README.md"] = readme.rstrip() + "\n"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / MARKER).write_text("written by planner emit\n")
    for rel, text in files.items():
        path = out_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        if path.suffix in (".sh", ".sbatch"):
            path.chmod(0o755)
    return Emitted(out_dir, sorted(files), warnings)
