"""Where a launch runs: a Kubernetes manifest, a SkyPilot task and a SLURM batch script around the engine's
or framework's own command (`serving.py`, `training.py`).

One node script is the unit all three wrap: it knows the node's role from NODE_RANK (0 leads) and the
leader's address from LEADER_ADDRESS / MASTER_ADDR, which each scheduler fills its own way (LeaderWorkerSet
and Indexed Job environment, SkyPilot's node list, SLURM's node list).
"""

from __future__ import annotations

import re
import shlex

import yaml

from planner.launch.serving import ServerLaunch
from planner.launch.training import RENDEZVOUS_PORT, TrainLaunch

# Extended resource each vendor's Kubernetes device plugin advertises (sources in catalogs/launchers.yaml).
_VAR = re.compile(r"\$\{[A-Z_]+(:[-?][^}]*)?\}")


def shell_word(arg: str) -> str:
    """One argument for sh: quoted, but with ${VAR} references left for the shell to expand."""
    if _VAR.search(arg):
        return '"' + arg.replace('"', '\\"') + '"'
    return shlex.quote(arg)


def require(var: str, what: str) -> str:
    """A line that stops the script when the user has not set `var`: the message may hold no quotes."""
    message = re.sub(r"[\"'`$\\}]", "", what)
    return f': "${{{var}:?set {var}, {message}}}"'


def shell_line(argv: list[str]) -> str:
    return " ".join(shell_word(a) for a in argv)


def node_script(launch: ServerLaunch | TrainLaunch) -> str:
    """The commands one node runs, chosen by NODE_RANK when the job spans nodes."""
    lead = [shell_line(a) for a in getattr(launch, "leader_before", [])] + [shell_line(launch.argv)]
    worker_argv = getattr(launch, "worker_argv", None)
    # Exported before anything starts: a Ray worker node's processes inherit the environment of `ray start`.
    exports = "".join(f"export {var}={shlex.quote(value)}\n" for var, value in getattr(launch, "env", {}).items())
    if launch.nodes == 1 or worker_argv is None:
        if len(lead) == 1:
            return exports + lead[0]
        return exports + " && \\\n  ".join(lead)
    return (exports + 'if [ "${NODE_RANK}" = 0 ]; then\n  ' + " && \\\n  ".join(lead) + "\nelse\n  "
            + shell_line(worker_argv) + "\nfi")


def _dump(docs: list[dict]) -> str:
    return "---\n".join(yaml.safe_dump(d, sort_keys=False, width=120) for d in docs)


def _container(name: str, image: str, script: str, env: list[dict], resource: str, devices: int,
               port: int | None) -> dict:
    c = {"name": name, "image": image, "command": ["sh", "-c", script], "env": env,
         "resources": {"limits": {resource: devices}},
         "volumeMounts": [{"name": "shm", "mountPath": "/dev/shm"}]}
    if port is not None:
        c["ports"] = [{"containerPort": port, "name": "http"}]
        c["readinessProbe"] = {"httpGet": {"path": "/health", "port": port}, "initialDelaySeconds": 120,
                               "periodSeconds": 10, "failureThreshold": 60}
    return c


def _pod_spec(containers: list[dict], instance_type: str | None, extra: dict | None = None) -> dict:
    spec = {"containers": containers,
            # NCCL and the engines' worker processes share tensors through /dev/shm; the default 64 MiB is too small.
            "volumes": [{"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": "32Gi"}}]}
    if instance_type:
        spec["nodeSelector"] = {"node.kubernetes.io/instance-type": instance_type}
    return spec | (extra or {})


def _model_env(model: str) -> list[dict]:
    return [{"name": "MODEL", "value": model},
            {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf-token", "key": "token", "optional": True}}}]


def kubernetes_serving(name: str, launch: ServerLaunch, image: str, model: str, replicas: int, resource: str,
                       instance_type: str | None) -> str:
    script = node_script(launch)
    env = _model_env(model)
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "labels": {"app": name}},
               "spec": {"selector": {"app": name}, "ports": [{"name": "http", "port": 80, "targetPort": launch.port}]}}
    if launch.nodes == 1:
        deployment = {
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "labels": {"app": name}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": _pod_spec([_container("server", image, script, env, resource,
                                                                launch.devices_per_node, launch.port)], instance_type)}}}
        return _dump([deployment, service])
    # A replica over several nodes: one LeaderWorkerSet group per replica, the leader serves.
    group_env = env + [{"name": "LEADER_ADDRESS", "value": "$(LWS_LEADER_ADDRESS)"},
                       {"name": "NODE_RANK", "value": "$(LWS_WORKER_INDEX)"}]
    leader = _pod_spec([_container("server", image, script, group_env, resource, launch.devices_per_node,
                                   launch.port)], instance_type)
    worker = _pod_spec([_container("server", image, script, group_env, resource, launch.devices_per_node, None)],
                       instance_type)
    lws = {"apiVersion": "leaderworkerset.x-k8s.io/v1", "kind": "LeaderWorkerSet", "metadata": {"name": name},
           "spec": {"replicas": replicas, "leaderWorkerTemplate": {
               "size": launch.nodes, "restartPolicy": "RecreateGroupOnPodRestart",
               "leaderTemplate": {"metadata": {"labels": {"app": name, "role": "leader"}}, "spec": leader},
               "workerTemplate": {"metadata": {"labels": {"app": name, "role": "worker"}}, "spec": worker}}}}
    service["spec"]["selector"] = {"app": name, "role": "leader"}
    return _dump([lws, service])


def kubernetes_training(name: str, launch: TrainLaunch, image: str, resource: str, instance_type: str | None) -> str:
    # An Indexed Job gives each pod its index and a stable name <job>-<index>.<subdomain> for the rendezvous.
    env = [{"name": "NODE_RANK", "valueFrom": {"fieldRef": {
                "fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"}}},
           {"name": "MASTER_ADDR", "value": f"{name}-0.{name}"}]
    # The user's own settings come from a ConfigMap they create; without it the pods do not start.
    env += [{"name": var, "valueFrom": {"configMapKeyRef": {"name": f"{name}-settings", "key": var}}}
            for var in sorted(launch.required_env)]
    files = [{"name": "config", "mountPath": "/config"}] if launch.files else []
    container = _container("trainer", image, ("cd /config && " if launch.files else "") + node_script(launch),
                           env, resource, launch.devices_per_node, None)
    container["volumeMounts"] += files
    pod = _pod_spec([container], instance_type, {"subdomain": name, "restartPolicy": "Never"})
    if launch.files:
        pod["volumes"].append({"name": "config", "configMap": {"name": f"{name}-config"}})
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
           "spec": {"completionMode": "Indexed", "completions": launch.nodes, "parallelism": launch.nodes,
                    "backoffLimit": 0, "template": {"metadata": {"labels": {"app": name}}, "spec": pod}}}
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
               "spec": {"clusterIP": "None", "selector": {"app": name},
                        "ports": [{"name": "rendezvous", "port": RENDEZVOUS_PORT}]}}
    docs = []
    if launch.files:
        docs.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"{name}-config"},
                     "data": dict(launch.files)})
    return _dump(docs + [service, job])


def skypilot_task(name: str, launch: ServerLaunch | TrainLaunch, cloud: str, region: str | None,
                  instance_type: str, spot: bool, model: str | None, replicas: int = 1) -> str:
    resources = {"infra": f"{cloud}/{region}" if region else cloud, "instance_type": instance_type,
                 "use_spot": spot}
    envs: dict = {}
    serving = isinstance(launch, ServerLaunch)
    if serving:
        resources["ports"] = launch.port
        envs = {"MODEL": model, "HF_TOKEN": ""}
    else:
        envs = {var: None for var in sorted(launch.required_env)}  # null: `sky launch --env` must set it
    first_ip = 'LEADER_ADDRESS=$(echo "$SKYPILOT_NODE_IPS" | head -n1)'
    run = (f'export NODE_RANK=$SKYPILOT_NODE_RANK {first_ip} MASTER_ADDR=$(echo "$SKYPILOT_NODE_IPS" | head -n1)\n'
           + node_script(launch) + "\n")
    task = {"name": name, "resources": resources, "num_nodes": launch.nodes, "envs": envs}
    if launch.files:
        task["file_mounts"] = {f"~/sky_workdir/{f}": f for f in launch.files}
    if serving:
        task["service"] = {"readiness_probe": "/health", "replicas": replicas}
    task["run"] = run
    return yaml.safe_dump(task, sort_keys=False, width=120)


def slurm_script(name: str, launch: ServerLaunch | TrainLaunch, replicas: int = 1, node_share: bool = False) -> str:
    lines = ["#!/bin/bash", f"#SBATCH --job-name={name}", f"#SBATCH --nodes={launch.nodes}",
             "#SBATCH --ntasks-per-node=1", f"#SBATCH --gpus-per-node={launch.devices_per_node}"]
    if not node_share:
        lines.append("#SBATCH --exclusive")  # the job fills its nodes; a replica smaller than one shares it
    if replicas > 1:
        lines.append(f"#SBATCH --array=0-{replicas - 1}  # one array task per replica")
    lines += ["set -euo pipefail", 'cd "$(dirname "$0")"',
              'export MASTER_ADDR=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n1)',
              'export LEADER_ADDRESS="$MASTER_ADDR"']
    required = {"MODEL": "the checkpoint (see README.md)"} if isinstance(launch, ServerLaunch) else launch.required_env
    lines += [require(var, what) for var, what in sorted(required.items())]
    script = node_script(launch)
    lines.append("srun --export=ALL bash -c " + shlex.quote("export NODE_RANK=$SLURM_NODEID\n" + script))
    return "\n".join(lines) + "\n"
