"""The tier graph: the site, relays and cloud regions as a networkx graph of the spec's links.

A route from the site to a region is the lowest-RTT path; it carries the sum of the hops' round trips,
the narrowest hop's upstream bandwidth, and the sum of the metered prices per GB. Which hops a route
crosses matters: every hop with a bandwidth is a shared limit on all the traffic routed over it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import networkx as nx

from planner.tier.spec import Network

SITE = "site"


@dataclass(frozen=True)
class Route:
    region: str  # provider/region
    rtt_ms: float
    bandwidth_mbps: float  # inf when no hop states one
    usd_per_gb: float
    hops: tuple[int, ...]  # indices into network.links

    def transfer_ms(self, kilobytes: float) -> float:
        return 0.0 if math.isinf(self.bandwidth_mbps) else kilobytes * 8.0 / self.bandwidth_mbps


def tier_graph(network: Network) -> nx.Graph:
    g = nx.Graph()
    g.add_node(SITE)
    for i, link in enumerate(network.links):
        g.add_edge(link.source, link.target, index=i, rtt_ms=link.rtt_ms)
    return g


def routes(network: Network) -> dict[str, Route]:
    """The route to every `provider/region` node reachable from the site."""
    g = tier_graph(network)
    if SITE not in g:
        return {}
    paths = nx.single_source_dijkstra_path(g, SITE, weight="rtt_ms")
    out: dict[str, Route] = {}
    for node, path in paths.items():
        if "/" not in node:
            continue
        hops = tuple(g.edges[a, b]["index"] for a, b in zip(path, path[1:]))
        links = [network.links[i] for i in hops]
        bandwidths = [link.bandwidth_mbps for link in links if link.bandwidth_mbps is not None]
        out[node] = Route(region=node, rtt_ms=sum(link.rtt_ms for link in links),
                          bandwidth_mbps=min(bandwidths, default=math.inf),
                          usd_per_gb=sum(link.usd_per_gb for link in links), hops=hops)
    return out
