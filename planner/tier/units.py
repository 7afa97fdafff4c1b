"""Named constraint units of `planner tier`, and the spec's limits as items the explainer can name.

An item is one unit applied to one workload (`tier.latency[detector]`), to the site (`site.power`) or to
one network link (`network.link_bandwidth[0]`), with the spec field that sets its bound. Row units judge
each chosen option alone; sum units add the chosen options of every workload at the site.
"""

from __future__ import annotations

from dataclasses import dataclass

from planner.explain.question import Limit
from planner.tier.spec import LOCALITY_RANK, LLMTierWorkload, SpeechTierWorkload, TierSpec

LEAVES_RANK = {"none": 0, "crops": 1, "raw": 2}


@dataclass(frozen=True)
class TierUnit:
    id: str
    title: str
    unit: str
    kind: str  # row (each chosen option) | sum (over the site) | min-sum (a lower bound on a sum) | pool (per
    # shared device)


TIER_UNITS = (
    TierUnit("tier.latency", "End-to-end latency within the budget (a frame interval for real-time video, TTFT p99 "
                             "for LLMs)", "ms", "row"),
    TierUnit("tier.tpot", "Time per output token within the limit", "ms", "row"),
    TierUnit("tier.locality", "Only what the workload's locality rule allows leaves the site", "level", "row"),
    TierUnit("site.video_decode", "Each edge unit's host decodes its camera streams (hardware decoder, or CPU cores "
                                  "shared with operators left to the CPU) within the edge headroom", "share", "row"),
    TierUnit("edge.shared_capacity", "Workloads sharing an edge device fit its units: the accelerator's and the "
                                     "hosts' load within the edge headroom", "share", "pool"),
    TierUnit("tier.accuracy", "Accuracy retained after quantization and fallback at least the minimum", "ratio",
             "min-sum"),
    TierUnit("site.power", "Edge hardware power at the site within its cap", "W", "sum"),
    TierUnit("site.device_slots", "Edge devices at the site within its slots", "devices", "sum"),
    TierUnit("site.budget", "Cost per site per month within budget", "USD/month", "sum"),
    TierUnit("network.link_bandwidth", "Upstream traffic over a link within its bandwidth", "Mbps", "sum"),
)
TIER_UNIT_BY_ID = {u.id: u for u in TIER_UNITS}
# Row units a shared device stretches: a call may first wait for one call of every other workload there.
WAITS_FOR_OTHERS = ("tier.latency", "tier.tpot")


def tier_limit(id: str, unit_id: str, spec_path: str, bound: float, workload: str | None = None,
               link: int | None = None) -> Limit:
    return Limit(id, unit_id, spec_path, bound, TIER_UNIT_BY_ID[unit_id].unit, workload=workload, link=link,
                 integer=unit_id in ("tier.locality", "site.device_slots"),
                 ceiling=2.0 if unit_id == "tier.locality" else None, lower=unit_id == "tier.accuracy")


def kind_of(item: Limit) -> str:
    return TIER_UNIT_BY_ID[item.unit_id].kind


def limit_items(spec: TierSpec) -> list[Limit]:
    items = []
    for i, w in enumerate(spec.workloads):
        if isinstance(w, LLMTierWorkload):
            if w.ttft_ms is not None:
                items.append(tier_limit(f"tier.latency[{w.name}]", "tier.latency", f"workloads[{i}].ttft_ms", w.ttft_ms,
                                       w.name))
            if w.tpot_ms is not None:
                items.append(tier_limit(f"tier.tpot[{w.name}]", "tier.tpot", f"workloads[{i}].tpot_ms", w.tpot_ms,
                                       w.name))
        elif isinstance(w, SpeechTierWorkload):
            items.append(tier_limit(f"tier.latency[{w.name}]", "tier.latency", f"workloads[{i}].latency_budget_ms",
                                   w.latency_budget_ms, w.name))
        else:
            items.append(tier_limit(f"tier.latency[{w.name}]", "tier.latency", f"workloads[{i}].{w.budget_path}",
                                   w.budget_ms, w.name))
            if "edge" in w.tiers or (w.split is not None and "split" in w.tiers):
                items.append(tier_limit(f"site.video_decode[{w.name}]", "site.video_decode", "edge_max_utilization",
                                       spec.edge_max_utilization, w.name))
        if w.locality != "any":
            items.append(tier_limit(f"tier.locality[{w.name}]", "tier.locality", f"workloads[{i}].locality",
                                   LOCALITY_RANK[w.locality], w.name))
        if w.min_accuracy is not None:
            items.append(tier_limit(f"tier.accuracy[{w.name}]", "tier.accuracy", f"workloads[{i}].min_accuracy",
                                   w.min_accuracy, w.name))
    if spec.share_edge_devices and len(spec.workloads) > 1:
        items.append(tier_limit("edge.shared_capacity", "edge.shared_capacity", "edge_max_utilization",
                                spec.edge_max_utilization))
    site = spec.site
    for unit_id, field in (("site.power", "power_w"), ("site.device_slots", "device_slots"),
                           ("site.budget", "budget_usd_per_month")):
        if getattr(site, field) is not None:
            items.append(tier_limit(unit_id, unit_id, f"site.{field}", float(getattr(site, field))))
    for k, link in enumerate(spec.network.links):
        if link.bandwidth_mbps is not None:
            items.append(tier_limit(f"network.link_bandwidth[{link.source}->{link.target}]", "network.link_bandwidth",
                                   f"network.links[{k}].bandwidth_mbps", link.bandwidth_mbps, link=k))
    return items


def row_value(item: Limit, option) -> float | None:
    """What a row unit reads from one option (None: the unit does not apply to it)."""
    if item.workload != option.workload:
        return None
    if item.unit_id == "tier.latency":
        return option.latency_ms
    if item.unit_id == "tier.tpot":
        return option.tpot_ms
    if item.unit_id == "tier.locality":
        return LEAVES_RANK[option.leaves]
    if item.unit_id == "site.video_decode":
        return option.host_load
    return None


def sum_value(item: Limit, option) -> float:
    """What one option adds to a sum unit."""
    if item.unit_id == "tier.accuracy":
        return option.accuracy if option.workload == item.workload else 0.0
    if item.unit_id == "site.power":
        return option.site_power_w
    if item.unit_id == "site.device_slots":
        return option.slots
    if item.unit_id == "site.budget":
        return option.usd_per_month
    if item.unit_id == "network.link_bandwidth":
        return option.uplink_mbps if item.link in option.hops else 0.0
    raise KeyError(item.unit_id)


def waits_ms(item: Limit, option, chosen) -> float:
    """What co-located workloads add to a shared row's latency or TPOT (see `wait_terms`)."""
    value = row_value(item, option)
    if item.unit_id not in WAITS_FOR_OTHERS or value is None:
        return 0.0
    return shared_wait_ms(option, chosen, value)


def wait_terms(option, others, value: float) -> list[tuple[object, float]]:
    """Per other workload q on the same shared device, what it adds to this row's latency or TPOT (`value`,
    ms): the time q holds the device before this work can run (block_q), and the stretch of this work while
    q takes its share of the device (processor sharing, first order: value x share_q)."""
    if option.role != "edge-shared":
        return []
    return [(q, q.detail["block_ms"] + value * q.detail["share"]) for q in others
            if q.role == "edge-shared" and q.detail["pool"] == option.detail["pool"] and q.workload != option.workload]


def shared_wait_ms(option, chosen, value: float | None = None) -> float:
    """A shared row's wait for the other workloads on its device, on its latency unless `value` says what."""
    return sum(ms for _, ms in wait_terms(option, chosen, option.latency_ms if value is None else value))


def pool_loads(chosen) -> dict[str, float]:
    """Each bought shared device's load: the busier of its accelerators and its hosts, per unit."""
    out = {}
    for pool in (o for o in chosen if o.role == "pool"):
        shared = [q for q in chosen if q.role == "edge-shared" and q.detail["pool"] == pool.detail["pool"]]
        out[pool.detail["pool"]] = max(sum(q.detail["share"] for q in shared),
                                       sum(q.host_load or 0.0 for q in shared)) / pool.units
    return out
