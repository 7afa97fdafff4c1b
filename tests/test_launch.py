"""Launch configurations (planner/launch/): every shipped serving and training example's plan emits files
that match their golden copies, pass the pinned flag lists, the Kubernetes OpenAPI schemas and the shell's
parser; bad results and targets are refused in one line.

Regenerate the golden files after an intended change with PLANNER_UPDATE_GOLDEN=1.
"""

from __future__ import annotations

import json
import os
import subprocess
import tomllib
from functools import cache
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from planner.catalog.loader import load_catalogs
from planner.cli import main
from planner.launch.emit import MARKER, emit
from planner.launch.flags import flag_problems, key_problems, load_launchers
from planner.launch.request import request_of

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden" / "emit"
EMITTED = ["deepseek-v3-serving", "llama3-70b-chat", "llama3-70b-h100-peer", "qwen3-32b-h200-peer",
           "mixtral-moe-serving", "onprem-power-capped", "small-model-serving", "long-context-serving",
           "llama3-8b-pretrain", "llama3-405b-pretrain", "spot-vs-ondemand-training", "energy-min-finetune",
           "llama3-8b-lora", "llama3-8b-qlora", "llama3-70b-speculative-chat", "rag-prefix-cache",
           "disaggregated-long-prompts"]
K8S_VERSION = "1.33.0"


@cache
def solved(example: str) -> dict:
    """The example's result as `planner solve --format json` writes it (no explanation: emit does not read it)."""
    result = CliRunner().invoke(main, ["solve", str(ROOT / "examples" / f"{example}.yaml"), "--format", "json",
                                       "--no-explain", "--reproducible"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@cache
def emitted(example: str, tmp: Path) -> dict[str, str]:
    out = tmp / example
    emit(request_of(solved(example), f"examples/{example}.yaml"), load_catalogs(), out, f"examples/{example}.yaml")
    return {str(p.relative_to(out)): p.read_text() for p in sorted(out.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def emit_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("emit")


@pytest.mark.parametrize("example", EMITTED)
def test_every_example_emits_its_golden_launch_configuration(example, emit_root):
    files = emitted(example, emit_root)
    golden = GOLDEN / example
    if os.environ.get("PLANNER_UPDATE_GOLDEN"):
        for rel, text in files.items():
            (golden / rel).parent.mkdir(parents=True, exist_ok=True)
            (golden / rel).write_text(text)
    want = {str(p.relative_to(golden)): p.read_text() for p in sorted(golden.rglob("*")) if p.is_file()}
    assert sorted(files) == sorted(want), "files differ from the golden set (PLANNER_UPDATE_GOLDEN=1 to accept)"
    for rel in files:
        assert files[rel] == want[rel], f"{example}/{rel} differs from its golden copy"


@pytest.mark.parametrize("example", EMITTED)
def test_emitted_manifests_pass_the_kubernetes_schemas(example, emit_root):
    import kubernetes_validate

    lws_keys = load_launchers().get("leaderworkerset", "v0.7.0").flags
    for rel, text in emitted(example, emit_root).items():
        if not rel.endswith("k8s.yaml"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc["kind"] == "LeaderWorkerSet":
                spec = doc["spec"]["leaderWorkerTemplate"]
                used = ["apiVersion", "spec.replicas"] + [f"spec.leaderWorkerTemplate.{k}" for k in spec]
                assert key_problems(load_launchers().get("leaderworkerset", "v0.7.0"), used) == []
                assert spec["restartPolicy"] in lws_keys["spec.leaderWorkerTemplate.restartPolicy"].values
                # The group's pods are plain pod templates: the schema checks them as such.
                for role in ("leaderTemplate", "workerTemplate"):
                    kubernetes_validate.validate({"apiVersion": "v1", "kind": "PodTemplate",
                                                  "metadata": {"name": f"{doc['metadata']['name']}-{role.lower()}"},
                                                  "template": spec[role]}, K8S_VERSION, strict=True)
            else:
                kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


@pytest.mark.parametrize("example", EMITTED)
def test_emitted_scripts_parse_and_config_files_hold_only_keys_the_version_reads(example, emit_root):
    launchers = load_launchers()
    files = emitted(example, emit_root)
    for rel, text in files.items():
        if rel.endswith((".sh", ".sbatch")):
            parsed = subprocess.run(["bash", "-n"], input=text, capture_output=True, text=True)
            assert parsed.returncode == 0, f"{rel}: {parsed.stderr}"
        elif rel.endswith("torchtitan.toml"):
            config = tomllib.loads(text)
            keys = [f"{section}.{key}" for section, table in config.items() for key in table]
            assert key_problems(launchers.get("torchtitan", "0.2.2"), keys) == []
        elif rel.endswith("sky.yaml"):
            task = yaml.safe_load(text)
            keys = [k for k in task if k not in ("resources", "service")]
            keys += [f"resources.{k}" for k in task["resources"]] + [f"service.{k}" for k in task.get("service", {})]
            assert key_problems(launchers.get("skypilot", "0.14.1"), keys) == []
            cloud = task["resources"]["infra"].split("/")[0]
            assert cloud in launchers.get("skypilot", "0.14.1").flags["resources.cloud"].values


def test_a_serving_launch_writes_the_plans_cap_memory_rule_and_parallelism(emit_root):
    """The settings the prediction assumed are on the command line, not left to the engine's defaults."""
    plan = solved("llama3-70b-h100-peer")["plan"]
    files = emitted("llama3-70b-h100-peer", emit_root)
    command = files["launch.sh"].splitlines()[-1]
    assert command.startswith("trtllm-serve ")
    assert f"--tp_size {plan['parallel']['tp']}" in command
    assert f"--max_batch_size {plan['batch']['micro']}" in command
    assert "--kv_cache_free_gpu_memory_fraction 0.90" in command  # engines.yaml's TensorRT-LLM rule
    deployment = next(d for d in yaml.safe_load_all(files["k8s.yaml"]) if d["kind"] == "Deployment")
    assert deployment["spec"]["replicas"] == plan["replicas"]
    limits = deployment["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert limits == {"nvidia.com/gpu": plan["parallel"]["tp"] * plan["parallel"]["pp"]}


@pytest.mark.parametrize("engine,method,expected", [
    ("sglang", "eagle", ["--speculative-algorithm EAGLE3", "--speculative-num-steps 3",
                         "--speculative-eagle-topk 1", "--speculative-num-draft-tokens 4"]),
    ("vllm", "eagle", ['--speculative-config \'{"method":"eagle3","model":"yuhuili/EAGLE3-LLaMA3.3-Instruct-70B",'
                       '"num_speculative_tokens":3}\'']),
    ("vllm", "mtp", ['--speculative-config \'{"method":"mtp","num_speculative_tokens":3}\'']),
    ("trtllm", "eagle", ["decoding_type: Eagle", "max_draft_len: 3"]),
    ("trtllm", "mtp", ["decoding_type: MTP", "num_nextn_predict_layers: 3"]),
])
def test_speculative_decoding_is_launched_as_planned(engine, method, expected, tmp_path):
    """A chain of the spec's k drafts, with the flags the pinned version reads (emit checks them)."""
    result = json.loads(json.dumps(solved("llama3-70b-speculative-chat")))
    result["workload"]["engine"] = engine
    result["workload"]["speculative"]["method"] = method
    if method == "mtp":  # as if the checkpoint shipped an MTP layer (DeepSeek-V3's do)
        result["workload"]["shape"]["mtp_layers"] = 1
    emit(request_of(result, "spec.yaml"), load_catalogs(), tmp_path / "out", "spec.yaml")
    written = "\n".join(p.read_text() for p in (tmp_path / "out").rglob("*") if p.is_file())
    for flag in expected:
        assert flag in written, flag
    assert "check the engine's logged acceptance" in (tmp_path / "out" / "README.md").read_text()


def test_a_draft_tree_is_launched_with_sglangs_topk_and_verified_nodes(tmp_path):
    result = json.loads(json.dumps(solved("llama3-70b-speculative-chat")))
    result["workload"]["speculative"] |= {"tokens": 5, "acceptance_length": 3.6,
                                          "tree": {"topk": 8, "verified_tokens": 32}}
    emit(request_of(result, "spec.yaml"), load_catalogs(), tmp_path / "out", "spec.yaml")
    command = (tmp_path / "out" / "launch.sh").read_text()
    assert ("--speculative-num-steps 5 --speculative-eagle-topk 8 --speculative-num-draft-tokens 32" in command)
    assert "a tree of top-8 over 5 draft passes, 32 nodes verified" in (tmp_path / "out" / "README.md").read_text()


@pytest.mark.parametrize("engine,expected", [
    ("vllm", ["--tensor-parallel-size 1", "--data-parallel-size 8", "--enable-expert-parallel", "--max-num-seqs 16"]),
    ("sglang", ["--tp-size 8", "--ep-size 8", "--enable-dp-attention --dp-size 8", "--max-running-requests 128"]),
    ("trtllm", ["--tp_size 8", "--ep_size 8", "--max_batch_size 16", "enable_attention_dp: true"]),
])
def test_data_parallel_attention_is_launched_with_each_engines_flags(engine, expected, tmp_path):
    result = json.loads(json.dumps(solved("deepseek-v3-serving")))
    result["workload"]["engine"] = engine
    result["plan"]["parallel"] |= {"tp": 8, "ep": 8, "attention_dp": True}
    result["plan"]["batch"]["micro"] = 128
    emit(request_of(result, "spec.yaml"), load_catalogs(), tmp_path / "out", "spec.yaml")
    written = "\n".join(p.read_text() for p in (tmp_path / "out").rglob("*") if p.is_file())
    for flag in expected:
        assert flag in written, flag


def test_replicas_sharing_an_instance_become_one_data_parallel_skyserve_replica(emit_root):
    plan = solved("llama3-70b-chat")["plan"]
    assert plan["replicas"] == 8 and plan["offering"]["devices_per_instance"] == 8  # eight 1-GPU replicas, one box
    task = yaml.safe_load(emitted("llama3-70b-chat", emit_root)["sky.yaml"])
    assert task["service"]["replicas"] == 1
    assert "--data-parallel-size 8" in task["run"]
    slurm = emitted("llama3-70b-chat", emit_root)["slurm.sbatch"]
    assert "--array=0-7" in slurm and "--exclusive" not in slurm  # eight tasks share the node


def test_a_training_launch_carries_the_layout_to_both_gpu_stacks(emit_root):
    plan = solved("llama3-405b-pretrain")["plan"]
    files = emitted("llama3-405b-pretrain", emit_root)
    megatron = files["megatron-lm/launch.sh"].splitlines()[-1]
    p = plan["parallel"]
    for flag, value in (("--tensor-model-parallel-size", p["tp"]), ("--pipeline-model-parallel-size", p["pp"]),
                        ("--micro-batch-size", plan["batch"]["micro"]), ("--global-batch-size", plan["batch"]["global"])):
        assert f"{flag} {value}" in megatron
    assert f"--nnodes={plan['nodes']}" in megatron
    config = tomllib.loads(files["torchtitan/torchtitan.toml"])
    assert config["parallelism"]["tensor_parallel_degree"] == p["tp"]
    assert config["parallelism"]["pipeline_parallel_degree"] == p["pp"]
    assert config["training"]["global_batch_size"] == plan["batch"]["global"]
    job = next(d for d in yaml.safe_load_all(files["megatron-lm/k8s.yaml"]) if d["kind"] == "Job")
    assert job["spec"]["completions"] == plan["nodes"]


def test_a_tpu_training_launch_is_maxtext_with_the_plans_mesh(emit_root):
    plan = solved("llama3-8b-pretrain")["plan"]
    assert plan["device"].startswith("tpu")
    command = emitted("llama3-8b-pretrain", emit_root)["maxtext/launch.sh"].splitlines()[-1]
    assert command.startswith("python3 -m MaxText.train src/MaxText/configs/base.yml")
    assert f"ici_tensor_parallelism={plan['parallel']['tp']}" in command
    assert f"ici_pipeline_parallelism={plan['parallel']['pp']}" in command


def test_adapter_plans_train_through_maxtexts_sft_trainer_with_the_adapters_settings(emit_root):
    plan = solved("llama3-8b-qlora")["plan"]
    assert plan["device"].startswith("tpu")
    command = emitted("llama3-8b-qlora", emit_root)["maxtext/launch.sh"].splitlines()[-1]
    assert command.startswith("python3 -m maxtext.trainers.post_train.sft.train_sft")
    assert "lora.enable_lora=True" in command and "lora.lora_rank=16" in command
    assert "lora.lora_weight_qtype=nf4" in command  # QLoRA: the frozen base stored 4-bit
    lora = emitted("llama3-8b-lora", emit_root)["maxtext/launch.sh"].splitlines()[-1]
    assert "lora.lora_rank=32" in lora and "lora_weight_qtype" not in lora


def test_an_adapter_plan_on_gpus_is_refused_with_the_reason(tmp_path):
    result = json.loads(json.dumps(solved("llama3-8b-qlora")))
    result["plan"] |= {"device": "h100-sxm", "system": "hgx-h100-8", "offering": None}
    out = CliRunner().invoke(main, ["emit", "-", str(tmp_path / "out")], input=json.dumps(result))
    assert out.exit_code == 2
    assert "fine-tuning launches are not written" in out.output and "Traceback" not in out.output
    assert not (tmp_path / "out").exists()


def test_emit_from_a_saved_result_writes_what_solve_emit_writes(tmp_path):
    spec = str(ROOT / "examples" / "deepseek-v3-serving.yaml")
    direct = CliRunner().invoke(main, ["solve", spec, "--no-explain", "--reproducible", "--emit", str(tmp_path / "a")])
    assert direct.exit_code == 0, direct.output
    saved = tmp_path / "result.json"
    saved.write_text(json.dumps(solved("deepseek-v3-serving")))
    again = CliRunner().invoke(main, ["emit", str(saved), str(tmp_path / "b")])
    assert again.exit_code == 0, again.output

    def texts(d: Path) -> dict:
        return {str(p.relative_to(d)): p.read_text().replace(str(saved), spec)
                for p in d.rglob("*") if p.is_file() and p.name != "README.md"}

    assert texts(tmp_path / "a") == texts(tmp_path / "b")


@pytest.mark.parametrize("content, message", [
    ("{not json", "not JSON"),
    (json.dumps({"status": "infeasible", "plan": None}), "has no plan"),
    (json.dumps({"status": "optimal", "plan": {"device": "h100-sxm"}}), "does not say what was asked"),
])
def test_bad_results_are_refused_in_one_line(tmp_path, content, message):
    path = tmp_path / "result.json"
    path.write_text(content)
    result = CliRunner().invoke(main, ["emit", str(path), str(tmp_path / "out")])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line]
    assert len(lines) == 1 and message in lines[0] and str(path) in lines[0]


def test_a_directory_holding_other_files_is_refused_before_any_work(tmp_path):
    target = tmp_path / "mine"
    target.mkdir()
    (target / "notes.txt").write_text("keep me")
    result = CliRunner().invoke(main, ["solve", str(ROOT / "examples" / "deepseek-v3-serving.yaml"), "--emit",
                                       str(target)])
    assert result.exit_code == 2 and "did not write" in result.output
    assert sorted(p.name for p in target.iterdir()) == ["notes.txt"]


def test_a_directory_emit_wrote_is_rewritten(tmp_path):
    saved = tmp_path / "result.json"
    saved.write_text(json.dumps(solved("deepseek-v3-serving")))
    for _ in range(2):
        result = CliRunner().invoke(main, ["emit", str(saved), str(tmp_path / "out")])
        assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / MARKER).exists()


def test_the_flag_check_refuses_what_the_pinned_version_does_not_have():
    vllm = load_launchers().get("vllm", "0.11.0")
    assert flag_problems(vllm, ["--tensor-parallel-size", "2", "--max-num-seqs", "64"]) == []
    assert flag_problems(vllm, ["--tp-size", "2"]) == ["vllm 0.11.0 has no flag --tp-size"]
    assert flag_problems(vllm, ["--kv-cache-dtype", "int4"])[0].startswith("vllm 0.11.0: --kv-cache-dtype int4 is not")


def test_every_launcher_cites_a_source_the_catalog_lists():
    sources = load_catalogs().sources
    launchers = load_launchers()
    assert all(entry.source in sources for entry in launchers.launchers)
    assert all(plugin.source in sources for plugin in launchers.device_plugins.values())


def _spanning(engine: str) -> dict:
    """The DeepSeek-V3 plan stretched to one TP16 replica over two 8-GPU nodes, served by `engine`."""
    result = json.loads(json.dumps(solved("deepseek-v3-serving")))
    result["workload"]["engine"] = engine
    result["workload"]["engine_version"] = load_catalogs().engine(engine).version
    result["plan"] |= {"devices": 16, "nodes": 2, "replicas": 1}
    result["plan"]["parallel"] |= {"tp": 16, "dp": 1}
    result["plan"]["parallel"].pop("attention_dp", None)  # tensor ranks over the nodes (tests/test_wide_ep.py: DP)
    return result


@pytest.mark.parametrize("engine", ["vllm", "sglang"])
def test_a_replica_over_two_nodes_is_a_leaderworkerset_group(engine, tmp_path):
    import kubernetes_validate

    emit(request_of(_spanning(engine), "synthetic"), load_catalogs(), tmp_path, "synthetic")
    docs = list(yaml.safe_load_all((tmp_path / "k8s.yaml").read_text()))
    lws = next(d for d in docs if d["kind"] == "LeaderWorkerSet")
    template = lws["spec"]["leaderWorkerTemplate"]
    assert template["size"] == 2
    leader = template["leaderTemplate"]["spec"]["containers"][0]
    assert leader["resources"]["limits"] == {"nvidia.com/gpu": 8}
    env = {e["name"]: e.get("value") for e in leader["env"]}
    assert env["LEADER_ADDRESS"] == "$(LWS_LEADER_ADDRESS)" and env["NODE_RANK"] == "$(LWS_WORKER_INDEX)"
    script = leader["command"][2]
    if engine == "vllm":  # a Ray cluster: the leader starts the head and serves, the other node joins it
        assert "ray start --head" in script and "--distributed-executor-backend ray" in script
        assert 'ray start "--address=${LEADER_ADDRESS}:6379"' in script.split("else")[1]
    else:  # every node runs the same server with its rank
        assert "--nnodes 2" in script and '"${NODE_RANK}"' in script
    kubernetes_validate.validate({"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": "leader"},
                                  "template": template["leaderTemplate"]}, K8S_VERSION, strict=True)
    service = next(d for d in docs if d["kind"] == "Service")
    assert service["spec"]["selector"]["role"] == "leader"
    assert subprocess.run(["bash", "-n"], input=(tmp_path / "launch.sh").read_text(), text=True).returncode == 0


def test_a_tensorrt_llm_replica_over_two_nodes_is_refused_with_the_fix(tmp_path):
    result = CliRunner().invoke(main, ["emit", "-", str(tmp_path / "out")], input=json.dumps(_spanning("trtllm")))
    assert result.exit_code == 2 and "spans 2 nodes" in result.output and "To fix" in result.output
