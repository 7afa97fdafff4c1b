"""Arithmetic on a transformer's shape: parameter counts, FLOPs per token, KV-cache bytes per token.

Counts come from the shape, not from the headline parameter figure, so FLOPs follow the architecture
(GQA, gated MLPs, MoE routing); `tests/test_shapes.py` checks them against each model's published size.
"""

from __future__ import annotations

from dataclasses import dataclass

from planner.catalog.schema import LLMShape


@dataclass(frozen=True)
class LLMCounts:
    attn_params_per_layer: int
    dense_mlp_params_per_layer: int
    expert_params: int  # one expert's MLP
    router_params_per_layer: int
    moe_layers: int
    dense_layers: int
    embedding_params: int
    lm_head_params: int
    head_dim: int
    attn_dim: int  # heads * head_dim

    @property
    def layers(self) -> int:
        return self.moe_layers + self.dense_layers

    def total_params(self, moe_experts: int, shared: int) -> int:
        per_moe_layer = self.attn_params_per_layer + self.router_params_per_layer + (moe_experts + shared) * self.expert_params
        per_dense_layer = self.attn_params_per_layer + self.dense_mlp_params_per_layer
        return (self.moe_layers * per_moe_layer + self.dense_layers * per_dense_layer
                + self.embedding_params + self.lm_head_params)


def llm_counts(shape: LLMShape) -> LLMCounts:
    head_dim = shape.head_dim or shape.hidden // shape.heads
    attn_dim = shape.heads * head_dim
    kv_dim = shape.kv_heads * head_dim
    if shape.mla is not None:
        m = shape.mla
        qk_dim = m.qk_nope_head_dim + m.qk_rope_head_dim
        attn = (shape.hidden * m.q_lora_rank + m.q_lora_rank * shape.heads * qk_dim
                + shape.hidden * (m.kv_lora_rank + m.qk_rope_head_dim)
                + m.kv_lora_rank * shape.heads * (m.qk_nope_head_dim + m.v_head_dim)
                + shape.heads * m.v_head_dim * shape.hidden)
    else:
        # q and o projections are attn_dim wide, k and v are kv_dim wide.
        attn = shape.hidden * (2 * attn_dim + 2 * kv_dim)
    mlp_mats = 3 if shape.gated_mlp else 2
    dense_mlp = mlp_mats * shape.hidden * shape.ffn
    if shape.moe is None:
        moe_layers, dense_layers, expert, router = 0, shape.layers, 0, 0
    else:
        moe_layers = shape.layers - shape.moe.dense_layers
        dense_layers = shape.moe.dense_layers
        expert = mlp_mats * shape.hidden * shape.moe.expert_ffn
        router = shape.hidden * shape.moe.experts
    embed = shape.vocab * shape.hidden
    head = 0 if shape.tied_embeddings else shape.vocab * shape.hidden
    return LLMCounts(attn, dense_mlp, expert, router, moe_layers, dense_layers, embed, head, head_dim, attn_dim)


@dataclass(frozen=True)
class LLMFootprint:
    """What the performance model needs of an LLM, derived once per shape."""

    total_params: float
    active_params: float  # matmul parameters a token passes through (excl. the embedding lookup)
    expert_params_total: float  # all routed+shared expert weights (sharded by EP)
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    attn_dim: int
    kv_elems_per_token_per_layer: int
    vocab: int
    ffn: int
    is_moe: bool
    experts: int
    top_k: int
    gated: bool
    kv_shardable_by_tp: bool
    embedding_params: float = 0.0  # the input table (also the output head when tied)
    lm_head_params: float = 0.0  # an untied output head (0 when tied)
    # Decode attention FLOPs per (query, key) pair and layer when decoding computes attention in another
    # form than prefill: MLA decodes in its latent space (weights absorbed, FlashMLA's "MQA mode": keys
    # 576 wide, values 512, source M36) where prefill runs plain heads (192 / 128). None: as prefill.
    decode_attn_flops_per_pair_layer: float | None = None
    # Layers attending over a window (see catalog.schema.LocalAttention): how many, the window, its kind.
    local_layers: int = 0
    local_window: int = 0
    moe_layers: int = 0  # layers whose MLP is routed experts
    routed_active_params: float = 0.0  # the routed experts' weights one token passes through (grouped GEMMs)
    local_kind: str = "sliding"

    def local_tokens(self, context: float) -> float:
        """KV tokens a local layer keeps (and a decoding token reads) at `context`: the window, or for chunks
        the current chunk's fill, half a window on average once the context passes one."""
        if self.local_kind == "chunked":
            return context if context <= self.local_window else self.local_window / 2.0
        return min(context, float(self.local_window))

    def kv_share(self, context: float) -> float:
        """Share of a full cache (every layer holding every token) kept at `context` tokens."""
        if not self.local_layers or context <= 0:
            return 1.0
        local = self.local_layers * self.local_tokens(context) / context
        return (self.layers - self.local_layers + local) / self.layers

    def prefill_pair_share(self, prompt: float) -> float:
        """Share of a prompt's causal (query, key) pairs computed: local layers stop at the window."""
        if not self.local_layers or prompt <= 0:
            return 1.0
        w = float(self.local_window)
        full = prompt / 2.0  # keys per query, causal
        if self.local_kind == "chunked":
            chunks, tail = divmod(prompt, w)
            local = (chunks * w * w / 2.0 + tail * tail / 2.0) / prompt
        else:
            local = full if prompt <= w else w - w * w / (2.0 * prompt)
        return (self.layers - self.local_layers + self.local_layers * local / full) / self.layers

    def attention_flops_per_token(self, context: float) -> float:
        """Forward FLOPs of QK^T and AV for one token attending over `context` tokens (all layers)."""
        return 4.0 * self.layers * context * self.attn_dim

    def decode_attention_flops_per_token(self, context: float) -> float:
        """The same for a decoding token, in the form engines decode in."""
        if self.decode_attn_flops_per_pair_layer is None:
            return self.attention_flops_per_token(context)
        return self.layers * context * self.decode_attn_flops_per_pair_layer

    def forward_flops_per_token(self, context: float) -> float:
        return 2.0 * self.active_params + self.attention_flops_per_token(context)

    def kv_bytes_per_token(self, bytes_per_elem: float) -> float:
        return self.layers * self.kv_elems_per_token_per_layer * bytes_per_elem


def llm_footprint(shape: LLMShape) -> LLMFootprint:
    c = llm_counts(shape)
    if shape.moe is None:
        active_layer = c.attn_params_per_layer + c.dense_mlp_params_per_layer
        active = c.layers * active_layer + c.lm_head_params + (c.embedding_params if shape.tied_embeddings else 0)
        total = c.total_params(0, 0)
        experts_total = 0.0
        experts = top_k = 0
    else:
        moe = shape.moe
        active_moe_layer = c.attn_params_per_layer + c.router_params_per_layer + (moe.top_k + moe.shared_experts) * c.expert_params
        active_dense_layer = c.attn_params_per_layer + c.dense_mlp_params_per_layer
        active = (c.moe_layers * active_moe_layer + c.dense_layers * active_dense_layer + c.lm_head_params
                  + (c.embedding_params if shape.tied_embeddings else 0))
        total = c.total_params(moe.experts, moe.shared_experts)
        experts_total = float(c.moe_layers * (moe.experts + moe.shared_experts) * c.expert_params)
        experts, top_k = moe.experts, moe.top_k
    kv_elems = shape.kv_cache_elems_per_token_per_layer or 2 * shape.kv_heads * c.head_dim
    return LLMFootprint(
        total_params=float(total),
        active_params=float(active),
        expert_params_total=experts_total,
        layers=shape.layers,
        hidden=shape.hidden,
        heads=shape.heads,
        kv_heads=shape.kv_heads,
        attn_dim=c.attn_dim,
        kv_elems_per_token_per_layer=kv_elems,
        vocab=shape.vocab,
        ffn=shape.moe.expert_ffn if shape.moe else shape.ffn,
        is_moe=shape.moe is not None,
        experts=experts,
        top_k=top_k,
        gated=shape.gated_mlp,
        kv_shardable_by_tp=shape.kv_cache_elems_per_token_per_layer is None,
        embedding_params=float(c.embedding_params),
        lm_head_params=float(c.lm_head_params),
        decode_attn_flops_per_pair_layer=_absorbed_mla_flops(shape),
        moe_layers=c.moe_layers,
        routed_active_params=float(c.moe_layers * shape.moe.top_k * c.expert_params) if shape.moe else 0.0,
        local_layers=shape.local_attention.layers if shape.local_attention else 0,
        local_window=shape.local_attention.window if shape.local_attention else 0,
        local_kind=shape.local_attention.kind if shape.local_attention else "sliding",
    )


def _absorbed_mla_flops(shape: LLMShape) -> float | None:
    """Per query head and key: the score over the latent and the shared RoPE key, then the weighted sum of
    latents (2 FLOPs per multiply-add)."""
    if shape.mla is None:
        return None
    m = shape.mla
    return shape.heads * 2.0 * ((m.kv_lora_rank + m.qk_rope_head_dim) + m.kv_lora_rank)


def model_split_problems(fp: LLMFootprint, tp: int, pp: int, domain: int, system_id: str) -> list[str]:
    """Why a model cannot be cut into tp x pp pieces on this system (shared by training and serving)."""
    problems = []
    if tp > domain:
        problems.append(f"tp={tp} exceeds the scale-up domain of {system_id} ({domain} devices)")
    if fp.heads % tp:
        problems.append(f"tp={tp} does not divide the {fp.heads} attention heads")
    if pp > fp.layers:
        problems.append(f"pp={pp} exceeds the {fp.layers} layers")
    return problems
