"""Collective communication times over a `GroupLink` (bandwidth and latency read off the topology graph).

Ring all-reduce: 2(N-1)/N * M/BW + 2(N-1)*alpha. A double binary tree pays ~2*M/BW in bandwidth but only
2*log2(N)*alpha in latency; the cheaper of the two is used, as NCCL does. `efficiency` is the family's
achievable fraction of link bandwidth (protocol overheads, imperfect overlap of ring steps).
"""

from __future__ import annotations

import math

from planner.catalog.topology import GroupLink


def _bw(link: GroupLink, efficiency: float) -> float:
    return link.bw_bytes_per_s * efficiency


def all_reduce_lines(link: GroupLink, efficiency: float) -> tuple[float, float, float, float]:
    """Ring and tree all-reduce as (fixed s, s per byte) each: the cost is the cheaper line at a size."""
    n = link.size
    bw = _bw(link, efficiency)
    return (2 * (n - 1) * link.latency_s, 2 * (n - 1) / n / bw,
            2 * math.ceil(math.log2(n)) * link.latency_s, 2 / bw)


def all_reduce_s(link: GroupLink, message_bytes: float, efficiency: float) -> float:
    if link.size <= 1 or message_bytes <= 0:
        return 0.0
    ring_fixed, ring_per_byte, tree_fixed, tree_per_byte = all_reduce_lines(link, efficiency)
    return min(ring_fixed + ring_per_byte * message_bytes, tree_fixed + tree_per_byte * message_bytes)


def all_gather_s(link: GroupLink, message_bytes: float, efficiency: float) -> float:
    """`message_bytes` is the gathered (full) size; reduce-scatter costs the same."""
    n = link.size
    if n <= 1 or message_bytes <= 0:
        return 0.0
    return (n - 1) / n * message_bytes / _bw(link, efficiency) + (n - 1) * link.latency_s


reduce_scatter_s = all_gather_s


def all_to_all_s(link: GroupLink, message_bytes: float, efficiency: float) -> float:
    """Each device exchanges `message_bytes` in total, (N-1)/N of it with peers."""
    n = link.size
    if n <= 1 or message_bytes <= 0:
        return 0.0
    return (n - 1) / n * message_bytes / _bw(link, efficiency) + (n - 1) * link.latency_s


def remote_copies(top_k: int, domains: int, per_expert: bool) -> float:
    """Copies of one token's hidden state an expert-parallel exchange sends to other scale-up domains (nodes),
    its experts spread evenly over `domains`: one per routed expert there (DeepEP's low-latency kernels send
    each expert its copy over RDMA), or one per domain it reaches (the normal kernels send a token once per
    node and forward it over NVLink inside: (D - 1)(1 - (1 - 1/D)^k) domains of the D - 1 others)."""
    if domains <= 1:
        return 0.0
    if per_expert:
        return top_k * (domains - 1) / domains
    return (domains - 1) * (1.0 - (1.0 - 1.0 / domains) ** top_k)


def p2p_s(link: GroupLink, message_bytes: float, efficiency: float) -> float:
    if link.size <= 1 or message_bytes <= 0:
        return 0.0
    return message_bytes / _bw(link, efficiency) + link.latency_s
