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
    kind: str  # row (each chosen option) | sum (over the site) | min-sum (a lower bound on a sum)


TIER_UNITS = (
    TierUnit("tier.latency", "End-to-end latency within the budget (a frame interval for real-time video, TTFT p99 "
                             "for LLMs)", "ms", "row"),
    TierUnit("tier.tpot", "Time per output token within the limit", "ms", "row"),
    TierUnit("tier.locality", "Only what the workload's locality rule allows leaves the site", "level", "row"),
    TierUnit("tier.accuracy", "Accuracy retained after quantization and fallback at least the minimum", "ratio",
             "min-sum"),
    TierUnit("site.power", "Edge hardware power at the site within its cap", "W", "sum"),
    TierUnit("site.device_slots", "Edge devices at the site within its slots", "devices", "sum"),
    TierUnit("site.budget", "Cost per site per month within budget", "USD/month", "sum"),
    TierUnit("network.link_bandwidth", "Upstream traffic over a link within its bandwidth", "Mbps", "sum"),
)
TIER_UNIT_BY_ID = {u.id: u for u in TIER_UNITS}


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
        if w.locality != "any":
            items.append(tier_limit(f"tier.locality[{w.name}]", "tier.locality", f"workloads[{i}].locality",
                                   LOCALITY_RANK[w.locality], w.name))
        if w.min_accuracy is not None:
            items.append(tier_limit(f"tier.accuracy[{w.name}]", "tier.accuracy", f"workloads[{i}].min_accuracy",
                                   w.min_accuracy, w.name))
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


def violates_row(item: Limit, option, bound: float) -> bool:
    value = row_value(item, option)
    return value is not None and value > bound + 1e-9
