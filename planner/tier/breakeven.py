"""Where the tier decision flips: the number of sites (cloud fleets are shared, edge boxes are not) and
the metered price of each upstream link (cloud and split options pay it per GB sent).

Each is found by bisection on re-solves: the site count re-enumerates options (the cloud candidate
tables are cached, only the load changes); a link price only shifts the transfer cost of the options
routed over that link, so those re-solves reuse the option table.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from planner.catalog.loader import Catalog
from planner.tier.model import TierPlan, solve_tier
from planner.tier.options import TierTable, enumerate_options
from planner.tier.spec import TierSpec
from planner.tier.units import LimitItem, limit_items

MAX_SITES = 100_000
PRICE_STEPS = 24


@dataclass(frozen=True)
class Flip:
    parameter: str  # spec path
    current: float
    at: float | None  # the nearest value at which the chosen tiers change (None: not within the range)
    now: dict[str, str]  # workload -> tier
    then: dict[str, str]

    def changes(self) -> str:
        """The workloads whose tier changes, as `name now -> then`."""
        if not self.then:
            return "feasible -> infeasible"
        if not self.now:
            return "infeasible -> feasible"
        return ", ".join(f"{w} {t} -> {self.then[w]}" for w, t in self.now.items() if self.then.get(w) != t)

    def as_dict(self) -> dict:
        return {"parameter": self.parameter, "current": self.current, "flips_at": self.at, "now": self.now,
                "then": self.then}


def tiers(plan: TierPlan) -> dict[str, str]:
    """Each workload's tier in the plan ({} when infeasible)."""
    if plan.value is None:
        return {}
    return {w: plan.tier_of(w) for w in dict.fromkeys(o.workload for o in plan.options)}


def sites_flip(spec: TierSpec, catalog: Catalog, plan: TierPlan, cache: dict) -> Flip:
    def at(count: int) -> TierPlan:
        s = spec.model_copy(update={"site": spec.site.model_copy(update={"count": count})})
        return solve_tier(s, enumerate_options(s, catalog, cache=cache), limit_items(s))

    now = tiers(plan)
    current = spec.site.count
    for end in (1, min(MAX_SITES, current * 100)):
        if end == current or tiers(at(end)) == now:
            continue
        near, far = current, end  # tiers(near) == now, tiers(far) != now
        while abs(far - near) > 1:
            mid = (near + far) // 2
            if tiers(at(mid)) == now:
                near = mid
            else:
                far = mid
        return Flip("site.count", current, far, now, tiers(at(far)))
    return Flip("site.count", current, None, now, now)


def link_price_flips(spec: TierSpec, table: TierTable, items: list[LimitItem], plan: TierPlan) -> list[Flip]:
    out = []
    now = tiers(plan)
    for k, link in enumerate(spec.network.links):
        if not any(k in o.hops for o in table.options):
            continue

        def at(price: float, k=k, base=link.usd_per_gb) -> TierPlan:
            shifted = [_reprice(o, (price - base) * o.detail.get("gb_up", 0.0)) if k in o.hops else o
                       for o in table.options]
            return solve_tier(spec, replace(table, options=shifted), items)

        current = link.usd_per_gb
        ends = [0.0, max(1.0, 10 * current)]
        flip = None
        for end in ends:
            if end == current or tiers(at(end)) == now:
                continue
            near, far = current, end
            for _ in range(PRICE_STEPS):
                mid = (near + far) / 2
                if tiers(at(mid)) == now:
                    near = mid
                else:
                    far = mid
            flip = Flip(f"network.links[{k}].usd_per_gb", current, round(far, 4), now, tiers(at(far)))
            break
        out.append(flip or Flip(f"network.links[{k}].usd_per_gb", current, None, now, now))
    return out


def _reprice(option, delta_usd: float):
    parts = dict(option.cost_parts)
    parts["transfer"] = parts.get("transfer", 0.0) + delta_usd
    return replace(option, usd_per_month=option.usd_per_month + delta_usd, cost_parts=parts)
