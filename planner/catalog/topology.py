"""Interconnect topologies as networkx graphs, and what a communication group sees of them.

A cluster of a `System` is a graph whose vertices are devices, switches and NICs and whose directed edges
carry `bw` (bytes/s, one direction) and `lat` (seconds). The scale-up domain (NVSwitch node, NVL72 rack,
xGMI/RoCE mesh, PCIe tree, TPU ICI torus) is built from `system.scaleup`; domains are joined through their
NICs by a leaf/spine fabric from `system.scaleout` (rail-optimised: NIC *i* of every node on leaf *i*).

`group_link(system, size, stride)` places a group the way Megatron lays out ranks (group members `stride`
apart in a linear rank space, the scale-up domain filled first), routes the ring(s) a collective library
would build over the graph, and returns the bottleneck bandwidth per ring step and the worst path latency.
The graph is built for as many domains as the group spans, capped at one more domain than a leaf
switch serves: the bottleneck and the longest path (through a spine) are then already present, and the
ring formula applies the real group size. Results are cached per (system, size, stride).
"""

from __future__ import annotations

from dataclasses import dataclass
import networkx as nx

from planner.catalog.schema import System
from planner.units import GB, US, ceil_div, gbit_to_bytes_per_s


@dataclass(frozen=True)
class GroupLink:
    """What one collective group sees of the topology."""

    size: int
    bw_bytes_per_s: float  # bottleneck bandwidth available to the group's ring, per direction
    latency_s: float  # worst per-step path latency
    crosses_domain: bool
    hops: int

    def describe(self) -> str:
        where = "scale-out" if self.crosses_domain else "scale-up"
        return f"{self.size} devices over {where}, {self.bw_bytes_per_s / GB:.0f} GB/s, {self.latency_s / US:.1f} us/step"


def _dev(i: int) -> str:
    return f"d{i}"


def _add_link(g: nx.DiGraph, a: str, b: str, bw: float, lat: float) -> None:
    g.add_edge(a, b, bw=bw, lat=lat)
    g.add_edge(b, a, bw=bw, lat=lat)


def _build_domain(g: nx.DiGraph, system: System, first: int, count: int, tag: str) -> None:
    up = system.scaleup
    if up.link_gb_per_s is None:
        raise ValueError(f"system {system.id}: scale-up link bandwidth unknown")
    bw = up.link_gb_per_s * GB
    half = up.hop_latency_us * US / 2
    devices = [_dev(first + i) for i in range(count)]
    for d in devices:
        g.add_node(d, kind="device")
    if count == 1:
        return
    if up.topology == "nvswitch":
        sw = f"{tag}:nvswitch"
        for d in devices:
            _add_link(g, d, sw, bw, half)
    elif up.topology == "pcie":
        per_switch = up.devices_per_pcie_switch or count
        root = f"{tag}:cpu"
        for i, d in enumerate(devices):
            sw = f"{tag}:pcie{i // per_switch}"
            _add_link(g, d, sw, bw, half)
            if not g.has_edge(sw, root):
                _add_link(g, sw, root, bw, half)
    elif up.topology in ("xgmi-mesh", "roce-mesh"):
        # The device's aggregate is split over point-to-point links, one to each peer.
        per_peer = bw / (count - 1)
        for i in range(count):
            for j in range(i + 1, count):
                _add_link(g, devices[i], devices[j], per_peer, 2 * half)
    elif up.topology in ("torus-2d", "torus-3d"):
        dims = list(up.torus_dims or [])
        size = 1
        for d in dims:
            size *= d
        if not dims or size < count:
            raise ValueError(f"system {system.id}: torus_dims {dims} do not cover {count} devices")
        # A slice of `count` devices: fill dimensions in order, as TPU slices are cut.
        shape = _slice_shape(dims, count)
        per_port = bw / (2 * len(dims))
        attrs = {"bw": per_port, "lat": 2 * half}
        edges = []
        for i in range(count):
            # index -> coordinates with the first dimension fastest (row-major over reversed dims)
            rest, coord = i, []
            for d in shape:
                coord.append(rest % d)
                rest //= d
            stride = 1
            for axis, d in enumerate(shape):
                if d > 1:
                    j = i + (((coord[axis] + 1) % d) - coord[axis]) * stride
                    if d > 2 or coord[axis] == 0:  # a ring of two is one link, not two
                        edges.append((devices[i], devices[j]))
                        edges.append((devices[j], devices[i]))
                stride *= d
        g.add_edges_from(edges, **attrs)
    else:  # pragma: no cover - the schema's Literal forbids it
        raise ValueError(up.topology)


def _slice_shape(dims: list[int], count: int) -> list[int]:
    shape = []
    remaining = count
    for d in dims:
        take = min(d, remaining)
        while remaining % take:
            take -= 1
        shape.append(take)
        remaining //= take
    if remaining != 1:
        return [count]
    return [s for s in shape if s > 1] or [1]


def build_cluster_graph(system: System, devices: int, only_domains: list[int] | None = None) -> nx.DiGraph:
    """The cluster of `devices` accelerators of `system`: scale-up domains joined by the scale-out fabric.

    `only_domains` builds just those domains (and the fabric between them): a group spread over a large
    cluster only needs the domains it touches, placed on the leaves their node numbers put them on.
    """
    g = nx.DiGraph(system=system.id)
    domain = scaleup_domain(system)
    n_domains = ceil_div(devices, domain)
    wanted = sorted(set(only_domains)) if only_domains is not None else list(range(n_domains))
    for k in wanted:
        count = min(domain, devices - k * domain)
        _build_domain(g, system, k * domain, count, f"dom{k}")
    if len(wanted) > 1:
        _build_fabric(g, system, devices, wanted)
    return g


def scaleup_domain(system: System) -> int:
    """Largest group that stays on the scale-up fabric (bounds TP): a PCIe box's node, else the domain."""
    return system.scaleup.domain_devices if system.scaleup.topology != "pcie" else system.devices_per_node


def _build_fabric(g: nx.DiGraph, system: System, devices: int, domains: list[int]) -> None:
    out = system.scaleout
    if out is None:
        raise ValueError(f"system {system.id} has no scale-out network in the catalog: single node only")
    per_node = system.devices_per_node
    domain = scaleup_domain(system)
    nics = out.nics_per_node
    nic_bw = gbit_to_bytes_per_s(out.nic_gbit_per_s)
    nic_lat = out.nic_latency_us * US
    sw_lat = out.switch_hop_latency_us * US
    n_nodes = ceil_div(devices, per_node)
    rails = nics if out.fabric == "rail-fat-tree" else 1
    leaves_per_rail = ceil_div(n_nodes, out.nodes_per_leaf)
    uplink_bw = nic_bw * out.nodes_per_leaf * (nics // rails)  # non-blocking leaf: uplinks = downlinks
    for k in domains:
        for dev_id in range(k * domain, min((k + 1) * domain, devices)):
            node, local = divmod(dev_id, per_node)
            # Devices share a NIC when a node has fewer NICs than devices (p4d: 4 NICs for 8 GPUs).
            nic_index = local * nics // per_node
            nic = f"n{node}:nic{nic_index}"
            _add_link(g, _dev(dev_id), nic, nic_bw, nic_lat / 2)
            rail = nic_index % rails
            leaf = f"leaf{rail}.{node // out.nodes_per_leaf}"
            if not g.has_edge(nic, leaf):
                _add_link(g, nic, leaf, nic_bw, nic_lat / 2 + sw_lat / 2)
            if (leaves_per_rail > 1 or rails > 1) and not g.has_edge(leaf, "spine"):
                _add_link(g, leaf, "spine", uplink_bw, sw_lat)


def _ring_orders(members: list[int], domain: int) -> list[list[int]]:
    """One ring per device a domain contributes, each leaving a domain from a different device.

    Domains alternate direction so a ring crosses between devices of the same local index, i.e. on the
    same rail, as NCCL arranges its rings (with PXN) on rail-optimised fabrics.
    """
    by_domain: dict[int, list[int]] = {}
    for m in members:
        by_domain.setdefault(m // domain, []).append(m)
    groups = [by_domain[k] for k in sorted(by_domain)]
    if len(groups) == 1:
        return [members]
    channels = min(len(g) for g in groups)
    rings = []
    for c in range(channels):
        ring = []
        for k, grp in enumerate(groups):
            rotated = grp[c:] + grp[:c]
            ring.extend(rotated if k % 2 == 0 else list(reversed(rotated)))
        rings.append(ring)
    return rings


_GROUP_CACHE: dict[tuple, GroupLink] = {}
_GRAPH_CACHE: dict[tuple, nx.DiGraph] = {}
_ROUTE_CACHE: dict[tuple, dict[tuple[int, int], tuple[list, float]]] = {}


_KEYS: dict[int, tuple[System, tuple]] = {}


def _system_key(system: System) -> tuple:
    # Catalog models hold lists, so they are not hashable; key on what shapes the graph. The system object
    # is kept alive beside its key so its id() cannot be reused by another object.
    entry = _KEYS.get(id(system))
    if entry is None or entry[0] is not system:
        key = (system.id, system.devices_per_node, system.scaleup.model_dump_json(),
               system.scaleout.model_dump_json() if system.scaleout else None)
        entry = _KEYS[id(system)] = (system, key)
    return entry[1]


def group_link(system: System, size: int, stride: int = 1) -> GroupLink:
    """Bottleneck bandwidth and latency of a ring over `size` devices placed `stride` ranks apart."""
    key = (_system_key(system), size, stride)
    cached = _GROUP_CACHE.get(key)
    if cached is None:
        cached = _GROUP_CACHE[key] = _group_link(system, size, stride)
    return cached


def _group_link(system: System, size: int, stride: int) -> GroupLink:
    if size <= 1:
        return GroupLink(size=size, bw_bytes_per_s=float("inf"), latency_s=0.0, crosses_domain=False, hops=0)
    domain = scaleup_domain(system)
    per_domain = min(size, max(1, domain // stride) if stride < domain else 1)
    domains_spanned = ceil_div(size, per_domain)
    members = [i * stride for j in _sampled_groups(system, per_domain, domains_spanned, stride)
               for i in range(j * per_domain, min(size, (j + 1) * per_domain))]
    # Whole domains: a group smaller than its domain (a TPU sub-slice) has no wrap-around links of its own.
    devices = _round_up(members[-1] + 1, domain)
    domains = tuple(sorted({m // domain for m in members}))
    g = _cluster_cached(system, devices, domains)
    routes = _ROUTE_CACHE.setdefault((_system_key(system), devices, domains), {})
    load: dict[tuple[str, str], int] = {}
    worst_lat = 0.0
    max_hops = 0
    rings = _ring_orders(members, domain)
    for ring in rings:
        for a, b in zip(ring, ring[1:] + ring[:1]):
            route = routes.get((a, b))
            if route is None:
                path = _path(g, a, b)
                edges = list(zip(path, path[1:]))
                route = routes[(a, b)] = (edges, sum(g.edges[e]["lat"] for e in edges))
            edges, lat = route
            worst_lat = max(worst_lat, lat)
            max_hops = max(max_hops, len(edges))
            for e in edges:
                load[e] = load.get(e, 0) + 1
    per_ring_bw = min(g.edges[e]["bw"] / n for e, n in load.items())
    return GroupLink(size=size, bw_bytes_per_s=per_ring_bw * len(rings), latency_s=worst_lat,
                     crosses_domain=domains_spanned > 1, hops=max_hops)


def _sampled_groups(system: System, per_domain: int, domains_spanned: int, stride: int) -> list[int]:
    """Which of the group's per-domain slices to route: all of them inside one domain; otherwise two
    neighbours (a leaf-level crossing) plus the first slice on another leaf (a spine crossing), if any.

    Every ring step of a group crosses the same kinds of links, so these slices already hold the group's
    bottleneck and its longest path; routing thousands of them would only repeat those."""
    if domains_spanned == 1:
        return [0]
    sample = [0, 1]
    if system.scaleout is not None:
        per_leaf = system.devices_per_node * system.scaleout.nodes_per_leaf

        def leaf(j: int) -> int:
            return (j * per_domain * stride) // per_leaf

        far = next((j for j in range(2, domains_spanned) if leaf(j) != leaf(0)), None)
        if far is not None:
            sample.append(far)
    return sample


def _round_up(n: int, multiple: int) -> int:
    return ceil_div(n, multiple) * multiple


def _cluster_cached(system: System, devices: int, domains: tuple[int, ...]) -> nx.DiGraph:
    key = (_system_key(system), devices, domains)
    graph = _GRAPH_CACHE.get(key)
    if graph is None:
        graph = _GRAPH_CACHE[key] = build_cluster_graph(system, devices, list(domains))
    return graph


def _path(g: nx.DiGraph, a: int, b: int) -> list[str]:
    return nx.shortest_path(g, _dev(a), _dev(b))


