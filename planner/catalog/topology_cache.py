"""Regenerate `group_links.json`, the group links the shipped examples ask for, routed by networkx.

    python -m planner.catalog.topology_cache

Run it after changing a system in `catalogs/systems.yaml` (a test fails until then): it solves and explains
every shipped example with nothing precomputed, records each group link routed, and writes them sorted,
so the file changes only where the catalog did.
"""

from __future__ import annotations

import json
from pathlib import Path

from planner.catalog import topology

ROOT = Path(__file__).resolve().parents[2]


def example_specs() -> list[Path]:
    return sorted((ROOT / "examples").glob("*.yaml"))


def route_examples() -> dict[str, list]:
    """Every group link solving and explaining the examples routes, keyed as `group_link` looks them up."""
    from planner.catalog.loader import load_catalogs
    from planner.check import check_plan
    from planner.evaluate import resolve_workload
    from planner.explain import explain
    from planner.solve import SolverSettings, solve, with_every_price
    from planner.spec import load_spec

    topology._PRECOMPUTED = {}  # route everything afresh
    topology._GROUP_CACHE.clear()
    topology.ROUTED.clear()
    catalog = load_catalogs()
    for path in example_specs():
        work = resolve_workload(load_spec(path), catalog, str(path))
        result = solve(work, catalog)
        with_every_price(work, catalog, result, SolverSettings())
        checks = check_plan(work, catalog, result.plan) if result.plan else []
        explain(work, catalog, result, checks)
    links = {}
    for system, size, stride, world in topology.ROUTED:
        link = topology.group_link(system, size, stride, world)
        links[topology.precomputed_key(system, size, stride, world)] = [link.bw_bytes_per_s, link.latency_s,
                                                                 int(link.crosses_domain), link.hops]
    topology._PRECOMPUTED = None
    return dict(sorted(links.items()))


def main() -> None:
    links = route_examples()
    # One link per line ([bandwidth B/s, latency s, crosses the domain, hops]), so diffs stay readable.
    body = ",\n".join(f"  {json.dumps(key)}: {json.dumps(value)}" for key, value in links.items())
    topology.PRECOMPUTED_PATH.write_text('{"generated_by": "python -m planner.catalog.topology_cache",\n'
                                         f' "links": {{\n{body}\n}}}}\n')
    print(f"{len(links)} group links written to {topology.PRECOMPUTED_PATH}")


if __name__ == "__main__":
    main()
