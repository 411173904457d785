"""The character-level GPT: embeddings, pre-LayerNorm blocks, a linear head.

forward() takes either plain padded rows (positions 0..T-1, causal mask) or
packed rows, described by a Layout (pos and seg from batches.pack: positions
restart for each example, and attention never crosses from one example to
another).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import torch
import torch.nn as nn
import torch.nn.functional as F

from .dropout import Dropout
from .choices import VARIANTS  # re-exported: model.VARIANTS
from .attention import CausalSelfAttention, Context, KVCache, SynthesizerAttention, rope_angles
from .wordkeys import WordKeys


@dataclass
class GPTConfig:
    vocab_size: int
    block_size: int = 128
    n_layer: int = 4
    n_head: int = 8
    n_embd: int = 256
    variant: str = "vanilla"
    embd_pdrop: float = 0.1
    resid_pdrop: float = 0.1
    attn_pdrop: float = 0.1
    synth_per_head_b: bool = False
    word_keys: int = 0  # buckets of the word-key table (wordkeys.py); 0: the plain model
    letters: list[int] | None = None  # vocabulary ids that make words (needed with word_keys)
    rope: bool = False  # rotary positions in attention instead of learned position vectors (vanilla only)
    reference: bool = False  # the plain reference path: explicit attention and torch's dropout everywhere

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, not {self.variant!r}")
        if self.n_embd % self.n_head:
            raise ValueError("n_embd must be a multiple of n_head")
        if self.word_keys and not self.letters:
            raise ValueError("word_keys needs the vocabulary's letter ids (letters)")
        if self.rope and (self.variant != "vanilla" or (self.n_embd // self.n_head) % 2):
            raise ValueError("rope needs the vanilla variant (the synthesizer scores positions, not keys) "
                             "and an even head size")

    def to_dict(self) -> dict:
        """What a checkpoint records: the model, not how this run computes it (reference)."""
        d = asdict(self)
        d.pop("reference")
        return d


@dataclass(frozen=True)
class Layout:
    """Where the tokens of a batch sit; None everywhere is the plain case (one example a row).

    pos: (B, T) position of each token inside its example (packed rows restart it).
    seg: (B, T) the example each token belongs to in a packed row (-1: the row's padding).
    read_only: (B, T) bool, positions whose word-key vectors get no gradient (a recipe's
    questions read the word-key memory without writing it).
    """

    pos: torch.Tensor | None = None
    seg: torch.Tensor | None = None
    read_only: torch.Tensor | None = None


PLAIN = Layout()


class Block(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.n_embd)
        self.ln2 = nn.LayerNorm(cfg.n_embd)
        if cfg.variant == "vanilla":
            self.attn: nn.Module = CausalSelfAttention(cfg.n_embd, cfg.n_head, cfg.attn_pdrop, cfg.resid_pdrop)
        else:
            self.attn = SynthesizerAttention(cfg.n_embd, cfg.n_head, cfg.block_size, cfg.attn_pdrop,
                                             cfg.resid_pdrop, cfg.synth_per_head_b)
        self.mlp = nn.Sequential(
            nn.Linear(cfg.n_embd, 4 * cfg.n_embd),
            nn.GELU(),
            nn.Linear(4 * cfg.n_embd, cfg.n_embd),
            Dropout(cfg.resid_pdrop),
        )

    def forward(self, x: torch.Tensor, ctx: Context) -> torch.Tensor:
        x = x + self.attn(self.ln1(x), ctx)
        return x + self.mlp(self.ln2(x))


class GPT(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.config = cfg
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        # Learned positions start at zero, as in the original model; rotary ones need none.
        self.pos_emb = None if cfg.rope else nn.Parameter(torch.zeros(1, cfg.block_size, cfg.n_embd))
        self.drop = Dropout(cfg.embd_pdrop)
        self.word_keys = (WordKeys(cfg.vocab_size, cfg.letters or [], cfg.word_keys, cfg.n_embd, cfg.block_size)
                          if cfg.word_keys else None)
        self.blocks = nn.Sequential(*[Block(cfg) for _ in range(cfg.n_layer)])
        self.ln_f = nn.LayerNorm(cfg.n_embd)
        self.head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
        self.apply(self._init_weights)
        if self.word_keys is not None:
            nn.init.zeros_(self.word_keys.table.weight)  # starts as the plain model
        self.use_reference_kernels(cfg.reference)

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        if isinstance(m, (nn.Linear, nn.Embedding)):
            m.weight.data.normal_(mean=0.0, std=0.02)
            if isinstance(m, nn.Linear) and m.bias is not None:
                m.bias.data.zero_()
        elif isinstance(m, nn.LayerNorm):
            m.bias.data.zero_()
            m.weight.data.fill_(1.0)

    def use_reference_kernels(self, on: bool) -> None:
        """The plain reference path (config.reference): explicit attention and torch's dropout everywhere."""
        self.config = replace(self.config, reference=on)
        for m in self.modules():
            if isinstance(m, Dropout):
                m.reference = on

    def set_dropout(self, p: float) -> None:
        """One dropout probability for the embeddings, the residual branches and attention."""
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {p}")
        self.config = replace(self.config, embd_pdrop=p, resid_pdrop=p, attn_pdrop=p)
        for m in self.modules():
            if isinstance(m, Dropout):
                m.p = p
            elif isinstance(m, (CausalSelfAttention, SynthesizerAttention)):
                m.p_drop = p

    def optimizer_groups(self, weight_decay: float, decay_norms_and_embeddings: bool) -> list[dict]:
        """AdamW parameter groups chosen by the kind of module a parameter belongs to.

        decay_norms_and_embeddings=True is the original's effective rule: every
        parameter but the biases decays (its name filter missed LayerNorm weights
        and embeddings). False decays only the matrices that multiply activations:
        the weights of the linear layers and the synthesizer's B.
        """
        owner = {id(p): (m, n) for m in self.modules() for n, p in m.named_parameters(recurse=False)}
        decay, no_decay = [], []
        for p in self.parameters():  # in the order of named_parameters, as optimizer states are saved
            m, name = owner[id(p)]
            if decay_norms_and_embeddings:
                decays = name != "bias"
            else:
                decays = (isinstance(m, nn.Linear) and name == "weight") or (
                    isinstance(m, SynthesizerAttention) and name == "w2")
            (decay if decays else no_decay).append(p)
        return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]

    @property
    def max_len(self) -> int:
        """Longest sequence the model takes: the synthesizer's B has block_size − 1 columns."""
        c = self.config
        return c.block_size - 1 if c.variant == "synthesizer" else c.block_size

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward(
        self,
        idx: torch.Tensor,
        targets: torch.Tensor | None = None,
        layout: Layout = PLAIN,
        cache: KVCache | None = None,
        explicit: bool = False,
        reduction: str = "mean",
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits (B, T, vocab) and, given targets, the mean cross-entropy over non-PAD targets.

        layout: positions, packed segments and read-only word keys (see Layout).
        cache: decoding with a key/value cache, layout.pos then gives the slot of
        each new token. explicit: the reference attention for this call (the whole
        model takes it with config.reference). reduction="sum" returns the summed
        loss (for data-parallel training, which divides by the global count).
        """
        pos, seg = layout.pos, layout.seg
        B, T = idx.shape
        if pos is None:
            if T > self.max_len:
                raise ValueError(f"sequence of {T} tokens is longer than this model takes ({self.max_len})")
            pos = torch.arange(T, device=idx.device).expand(B, T)
        mask = None
        if cache is not None:
            mask = cache.mask(pos)
        elif seg is not None:
            causal = torch.ones(T, T, dtype=torch.bool, device=idx.device).tril()
            mask = ((seg[:, :, None] == seg[:, None, :]) & causal)[:, None]
        explicit = explicit or self.config.reference
        rope = rope_angles(pos, self.config.n_embd // self.config.n_head) if self.config.rope else None
        ctx = Context(pos=pos, mask=mask, cache=cache, explicit=explicit, rope=rope)
        x = self.tok_emb(idx)
        if self.pos_emb is not None:
            # F.embedding rather than indexing: its CPU backward is deterministic, which
            # bit-exact resume relies on (index_put_'s accumulation order is not fixed).
            x = x + F.embedding(pos, self.pos_emb[0])
        if self.word_keys is not None:
            keyed = self._word_keys(idx, pos, cache)
            if layout.read_only is not None:
                keyed = torch.where(layout.read_only[..., None], keyed.detach(), keyed)
            x = x + keyed
        x = self.drop(x)
        for block in self.blocks:
            x = block(x, ctx)
        logits = self.head(self.ln_f(x))
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=0,
                                   reduction=reduction)
        return logits, loss

    def _word_keys(self, idx: torch.Tensor, pos: torch.Tensor, cache: KVCache | None) -> torch.Tensor:
        assert self.word_keys is not None
        if cache is None:
            return self.word_keys(idx, pos)
        # Decoding: keys need the words read so far, which the cache keeps.
        b = torch.arange(idx.shape[0], device=idx.device)[:, None]
        cache.tokens[b, pos] = idx
        hist = cache.tokens
        full = self.word_keys(hist, torch.arange(hist.shape[1], device=idx.device).expand_as(hist))
        return full[b, pos]

    def new_cache(self, batch: int, slots: int, dtype: torch.dtype | None = None) -> KVCache:
        c = self.config
        hs = c.n_embd // c.n_head
        k_dim = hs + 1 if c.variant == "synthesizer" else hs
        p = self.head.weight
        cache = KVCache(c.n_layer, batch, c.n_head, slots, k_dim, hs, dtype or p.dtype, p.device)
        if c.word_keys:
            cache.tokens = torch.zeros(batch, slots, dtype=torch.long, device=p.device)
        return cache
