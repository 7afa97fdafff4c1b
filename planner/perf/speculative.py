"""Speculative decoding: a drafter proposes k tokens for each decoding sequence, and the target model checks
them all in one forward pass of k + 1 tokens per sequence, keeping the accepted run and one token of its
own (the bonus: the correction at the first rejection, or the next token when all k pass).

With each drafted token accepted with probability a given the ones before it were (the i.i.d. model of
Leviathan et al. 2023, source S110), a verification step yields on average

    E = 1 + a + a^2 + ... + a^k = (1 - a^(k+1)) / (1 - a)

tokens per sequence: what SGLang reports as its accept length and EAGLE's papers as tau. A step then costs
the target over (k + 1) x B tokens (weights read once, KV read once, the GEMMs and attention queries k + 1
times wider), k drafter passes over the B sequences, and one drafter pass over the prompt tokens of the
step (a draft model and an EAGLE head keep their own KV of every prompt). TPOT is the step over E.

The drafter by method:
- `draft`: a smaller model of the same tokenizer, run as it is;
- `eagle`: a one-layer head on the target's hidden states (EAGLE-3: a decoder layer of the target's width
  whose attention reads the token embedding and the fused hidden states side by side, a 3h x h fusion of
  three of the target's layers, and its own output head over a reduced draft vocabulary);
- `mtp`: the model's own multi-token-prediction layers (DeepSeek-V3: one full MoE layer after a 2h x h
  projection), reading the target's output head.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from planner.catalog.schema import LLMShape
from planner.perf.shapes import LLMFootprint, llm_footprint

METHODS = ("draft", "eagle", "mtp")
# EAGLE-3's released heads predict over the 32,000 most frequent target tokens (draft_vocab_size in their
# config.json, source S111), mapped back to the target vocabulary.
EAGLE3_DRAFT_VOCAB = 32_000


def tokens_per_step(draft_tokens: int, acceptance_rate: float) -> float:
    """Mean tokens a sequence gains per verification step, the bonus token included."""
    a = acceptance_rate
    if a >= 1.0:
        return float(draft_tokens + 1)
    return (1.0 - a ** (draft_tokens + 1)) / (1.0 - a)


def acceptance_for_length(draft_tokens: int, length: float) -> float:
    """The per-token acceptance rate whose mean accept length over `draft_tokens` drafts is `length` (the
    simulator draws acceptances from it when only the length is known)."""
    lo, hi = 0.0, 1.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if tokens_per_step(draft_tokens, mid) < length:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


@dataclass(frozen=True)
class Speculation:
    """What speculative decoding changes in a replica's step."""

    method: str
    draft_tokens: int  # k drafted per sequence per step
    acceptance_rate: float  # per drafted token, given the ones before it were accepted
    drafter: LLMFootprint  # the network run k times per step (and once over each prompt)
    # Parameters the drafter adds to the replica's memory: what it does not share with the target.
    extra_params: float
    # Tree drafting: every draft pass after the first carries `branches` candidates a sequence, and the target
    # verifies `tree_tokens` nodes (0: a chain, k + 1). The acceptance rate is then the chain's with the tree's
    # measured accept length over k drafts, so draws and variance keep the tree's mean.
    branches: int = 1
    tree_tokens: int = 0

    @property
    def tokens_per_step(self) -> float:
        return tokens_per_step(self.draft_tokens, self.acceptance_rate)

    @property
    def tokens_variance(self) -> float:
        """Variance of the tokens one step yields: X = 1 + accepted drafts, P(X >= x) = a^(x-1) for x <= k + 1,
        so E[X^2] = sum over x of (2x - 1) P(X >= x)."""
        a, k = self.acceptance_rate, self.draft_tokens
        second = sum((2 * j + 1) * a ** j for j in range(k + 1))
        return max(0.0, second - self.tokens_per_step ** 2)

    @property
    def verify_tokens(self) -> int:
        return self.tree_tokens or self.draft_tokens + 1


def drafter_footprint(target: LLMShape, method: str, draft: LLMShape | None = None,
                      mtp_layers: int = 0) -> tuple[LLMFootprint, float]:
    """The drafter as the step reads it, and the parameters it holds beyond the target's."""
    if method == "draft":
        assert draft is not None
        fp = llm_footprint(draft)
        return fp, fp.total_params
    hidden = target.hidden
    # The drafter's own layers attend over the whole context and draft with nothing further.
    own = {"local_attention": None, "mtp_layers": 0}
    if method == "eagle":
        head = target.model_copy(update={"layers": 1, "moe": None, "mla": None, "kv_cache_elems_per_token_per_layer": None,
                                         "vocab": min(target.vocab, EAGLE3_DRAFT_VOCAB), "tied_embeddings": False,
                                         **own})
        # The layer's q/k/v projections read 2h (the embedding and the fused hidden state side by side), and
        # a 3h x h fusion precedes it: weights every draft pass reads and multiplies by.
        head_dim = target.head_dim or hidden // target.heads
        added = hidden * (target.heads + 2 * target.kv_heads) * head_dim + 3 * hidden * hidden
        shared = ("embedding",)  # the token embedding is the target's
    else:
        assert method == "mtp" and mtp_layers >= 1
        moe = target.moe.model_copy(update={"dense_layers": 0}) if target.moe else None
        head = target.model_copy(update={"layers": mtp_layers, "moe": moe, **own})
        added = mtp_layers * 2 * hidden * hidden  # the projection of [normed embedding, hidden state]
        shared = ("embedding", "lm_head")  # DeepSeek-V3's MTP module uses the main model's (source M17)
    fp = llm_footprint(head)
    fp = replace(fp, total_params=fp.total_params + added, active_params=fp.active_params + added)
    held = fp.total_params - (fp.embedding_params if "embedding" in shared else 0.0) - (
        fp.lm_head_params if "lm_head" in shared else 0.0)
    return fp, held


def speculation(target: LLMShape, method: str, draft_tokens: int, acceptance_rate: float,
                draft: LLMShape | None = None, mtp_layers: int = 0, branches: int = 1,
                tree_tokens: int = 0) -> Speculation:
    drafter, held = drafter_footprint(target, method, draft, mtp_layers)
    return Speculation(method=method, draft_tokens=draft_tokens, acceptance_rate=acceptance_rate,
                       drafter=drafter, extra_params=held, branches=branches, tree_tokens=tree_tokens)
