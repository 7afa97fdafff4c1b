"""Wide expert parallel: attention data parallel over several nodes with the experts spread over all of them.
The exchanges' formulas by hand, the layouts searched and refused, the redundant expert slot in memory, the
example's choice and its explanation, and the launch flags of each engine."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from planner.candidates import enumerate_candidates
from planner.catalog.loader import load_catalogs
from planner.catalog.topology import group_link
from planner.cli import main
from planner.evaluate import resolve_workload
from planner.perf.comm import all_to_all_s, remote_copies
from planner.perf.serving import (
    EngineParams,
    ServingFeatures,
    replica_profile,
    serving_structural_problems,
    step_cost,
    wide_ep_domains,
)
from planner.perf.shapes import llm_footprint
from planner.perf.types import Parallel
from planner.solve import solve
from planner.spec import load_spec

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "deepseek-v3-h100-wide-ep.yaml"
CAT = load_catalogs()
IB = CAT.systems["hgx-h100-8-ib"]
DEVICE = CAT.accelerators[IB.accelerator]
DEEPSEEK = llm_footprint(CAT.models["deepseek-v3"].shape)


def wide(ep: int, batch: int = 256) -> Parallel:
    return Parallel(tp=ep, ep=ep, attention_dp=True, micro_batch=batch)


def cost_of(par: Parallel, system=IB, precision: str = "fp8"):
    return step_cost(DEEPSEEK, par=par, precision=precision, device=DEVICE, family=CAT.family_of(DEVICE),
                     system=system, engine=EngineParams.of(CAT.engines["sglang"], DEVICE, par.tp), input_tokens=2000)


def test_remote_copies_per_expert_and_per_node():
    # Low latency: one copy per routed expert on another node, 8 x 3/4 over four nodes.
    assert remote_copies(8, 4, per_expert=True) == pytest.approx(6.0)
    # Normal: one copy per other node reached, 3 x (1 - (3/4)^8).
    assert remote_copies(8, 4, per_expert=False) == pytest.approx(3 * (1 - 0.75 ** 8))
    assert remote_copies(8, 1, per_expert=True) == 0.0


def test_a_decode_steps_exchanges_by_hand():
    """EP32 over four nodes, 64 sequences a GPU decoding: per MoE layer, FP8 dispatch and BF16 combine of each
    token's six remote copies through the GPU's 50 GB/s of NICs, against its local copies over NVLink."""
    cost = cost_of(wide(32))
    assert cost.ep_domains == 4 and cost.ep_remote_bw == pytest.approx(50e9)
    seqs = 64 * 32
    h = DEEPSEEK.hidden * 2.0
    remote = 64 * 6.0 * (h / 2 + h) / (50e9 * cost.comm_efficiency) + 2 * cost.ep_remote_latency_s
    local_link = group_link(IB, 8, 1, world=32)
    local_copies = 64 * DEEPSEEK.top_k / 4
    local = (all_to_all_s(local_link, local_copies * h / 2, cost.comm_efficiency)
             + all_to_all_s(local_link, local_copies * h, cost.comm_efficiency))
    assert remote > local
    expected = DEEPSEEK.moe_layers * remote
    assert cost.stage_parts(seqs, seqs * 2000, 0, 0)["comm"] == pytest.approx(expected, rel=1e-9)


def test_prompt_steps_send_a_token_once_per_node_and_bf16_checkpoints_dispatch_16_bits():
    fp8, bf16 = cost_of(wide(32)), cost_of(wide(32), precision="bf16")
    tokens = 4096 * 32
    h = DEEPSEEK.hidden * 2.0
    per_layer = {c: tokens / 32 * remote_copies(8, 4, per_expert=False) * (d + h) / (50e9 * c.comm_efficiency)
                 + 2 * c.ep_remote_latency_s for c, d in ((fp8, h / 2), (bf16, h))}
    for c in (fp8, bf16):
        assert c.stage_parts(0, 0, tokens, tokens * 1000)["comm"] == pytest.approx(
            DEEPSEEK.moe_layers * per_layer[c], rel=1e-9)


def test_within_one_node_the_exchange_is_unchanged():
    par = wide(8)
    assert wide_ep_domains(par, IB) == 1
    assert cost_of(par).ep_domains == 1


def test_wide_layouts_need_whole_nodes_joined_by_a_network():
    assert not serving_structural_problems(DEEPSEEK, wide(16), IB, 8)
    assert any("scale-out" in p for p in serving_structural_problems(DEEPSEEK, wide(16), CAT.systems["hgx-h100-8"], 8))
    assert any("whole domains" in p for p in serving_structural_problems(DEEPSEEK, wide(12), IB, 8))
    # Tensor parallel attention still stays inside the domain.
    assert any("scale-up domain" in p for p in serving_structural_problems(
        DEEPSEEK, Parallel(tp=16, ep=16, micro_batch=16), IB, 8))


def test_each_rank_holds_one_redundant_expert_for_eplb():
    kwargs = {"input_tokens": 2000, "output_tokens": 1000, "precision": "fp8", "device": DEVICE,
              "family": CAT.family_of(DEVICE), "engine": EngineParams.of(CAT.engines["vllm"], DEVICE, 16),
              "features": ServingFeatures()}
    spread = replica_profile(DEEPSEEK, par=wide(16), system=IB, **kwargs)
    # The same shape inside one 16-GPU domain: no redundant slot (a made-up domain, for the comparison only).
    one_domain = IB.model_copy(update={"scaleup": IB.scaleup.model_copy(update={"domain_devices": 16})})
    inside = replica_profile(DEEPSEEK, par=wide(16), system=one_domain, **kwargs)
    slot = DEEPSEEK.expert_params_total / DEEPSEEK.experts  # FP8: a byte a parameter
    assert spread.memory.weights - inside.memory.weights == pytest.approx(slot, rel=1e-6)


def _spec(tmp_path, **changes) -> Path:
    text = EXAMPLE.read_text()
    for old, new in changes.items():
        text = text.replace(old, new)
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    return path


def _wide_widths(spec_path: Path) -> set[int]:
    work = resolve_workload(load_spec(spec_path), CAT)
    table = enumerate_candidates(work, CAT)
    return {r.candidate.parallel.tp for r in table.replica_rows
            if wide_ep_domains(r.candidate.parallel, CAT.systems[r.candidate.system]) > 1}


def test_the_search_spans_two_to_eight_nodes_where_the_engine_runs_it(tmp_path):
    assert _wide_widths(EXAMPLE) == {16, 32, 64}
    assert _wide_widths(_spec(tmp_path, **{"max_devices: 64": "max_devices: 8"})) == {16}
    assert _wide_widths(_spec(tmp_path, **{"  model: deepseek-v3": "  model: deepseek-v3\n  engine: trtllm"})) == set()
    assert _wide_widths(_spec(tmp_path, **{"min_price_confidence: low": "min_price_confidence: low\n  attention_dp: never"})) == set()


def test_the_example_spreads_the_experts_over_two_nodes_and_says_why_not_one():
    work = resolve_workload(load_spec(EXAMPLE), CAT)
    result = solve(work, CAT)
    assert result.status == "optimal"
    # Aggregated, each prompt stalls fifteen decoding ranks while one prefills it: the decode pool runs wide.
    decode = [p.evaluation.candidate for p in result.plan.parts if p.evaluation.candidate.role == "decode"]
    assert len(decode) == 1 and len(result.plan.parts) == 2
    cand = decode[0]
    assert cand.parallel.attention_dp and cand.parallel.ep == 16 and cand.parallel.pp == 1
    assert wide_ep_domains(cand.parallel, CAT.systems[cand.system]) == 2
    out = CliRunner().invoke(main, ["solve", str(EXAMPLE)])
    assert out.exit_code == 0, out.output
    assert "expert layout within one node" in " ".join(out.output.split())


@pytest.mark.parametrize("engine, flags, env", [
    ("vllm", ["--data-parallel-size 16", "--data-parallel-size-local 8", "--data-parallel-backend ray", "--enable-dbo",
              "--enable-eplb", "num_redundant_experts"], "VLLM_ALL2ALL_BACKEND=deepep_low_latency"),
    ("sglang", ["--tp-size 16", "--dp-size 16", "--nnodes 2", "--moe-a2a-backend deepep", "--deepep-mode auto",
                "--enable-two-batch-overlap", "--enable-eplb", "--ep-num-redundant-experts 16"], None),
])
def test_emit_launches_the_wide_layout_on_deepep(tmp_path, engine, flags, env):
    spec = _spec(tmp_path, **{"  model: deepseek-v3": f"  model: deepseek-v3\n  engine: {engine}",
                              "min_price_confidence: low": "min_price_confidence: low\n  disaggregated: never"})
    out = tmp_path / "launch"
    result = CliRunner().invoke(main, ["solve", str(spec), "--no-explain", "--emit", str(out)])
    assert result.exit_code == 0, result.output
    script = (out / "launch.sh").read_text()
    assert all(flag in script for flag in flags), script
    if env:
        assert f"export {env}" in script
    assert "DeepEP must be installed" in (out / "README.md").read_text()
