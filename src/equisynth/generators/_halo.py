"""HALO-style hierarchical autoregressive network over a patient's visits (torch only).

A patient is a sequence ``[START, PREFIX, V_1, ..., V_L]`` of multi-hot vectors:

- ``PREFIX`` holds the one-hot demographic columns followed by the label bit (``n_prefix``
  bits, demographics first, so the model learns ``P(label | demographics)``);
- each visit ``V_t`` is a multi-hot vector over the ``n_codes`` codes.

A causal transformer over the visit embeddings (``START`` a learned vector, the prefix and the
visits linear maps of their multi-hot vectors, plus learned positions) gives at position ``t``
a context ``h_t`` that has seen everything up to and including element ``t``. Two
:class:`MaskedAutoregressive` heads (MADE-style masked linear layers, HALO's code-level module)
turn a context into the logits of the *next* element bit by bit:

- the prefix head reads ``h_0`` (the START context) and gives the prefix bits, each given the
  prefix bits before it;
- the visit head reads ``h_t`` (t >= 1) and gives ``[end, codes]`` of the next visit: bit 0 is
  the end-of-record flag (the visit after the last real one is ``END``, only its end bit
  counts), then every code given ``h_t`` and the codes of the same visit that come before it.

The loss is the negative log-likelihood (sum of the binary cross-entropies of every counted
bit, padding masked) per patient.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["HALONetwork", "MaskedAutoregressive"]


class MaskedAutoregressive(nn.Module):
    """Square masked linear layers over ``n_bits`` with a dense context input (MADE-style).

    Layer 1 has a strictly lower-triangular mask (unit ``j`` sees bits ``< j``), the following
    layers a lower-triangular mask with the diagonal (unit ``j`` sees units ``<= j``), with a
    ReLU between layers; every layer also adds a linear map of the context ``h``, and with two
    or more layers the output also has a direct (strictly masked) connection from the bits, as
    in MADE, so that pairwise dependencies are learned quickly. The output
    ``j`` therefore depends on ``h`` and on bits ``0..j-1`` only, which :meth:`sample` exploits
    to draw the bits one at a time with ``O(n_bits)`` work per bit.

    Examples
    --------
    >>> head = MaskedAutoregressive(4, 3, n_layers=2)
    >>> h, x = torch.zeros(2, 3), torch.ones(2, 4)
    >>> tuple(head(h, x).shape)
    (2, 4)
    """

    def __init__(self, n_bits: int, d_context: int, n_layers: int = 2) -> None:
        super().__init__()
        self.n_bits = int(n_bits)
        self.n_layers = int(n_layers)
        bound = 1.0 / max(1, self.n_bits) ** 0.5
        self.weight = nn.ParameterList(
            [
                nn.Parameter(torch.empty(n_bits, n_bits).uniform_(-bound, bound))
                for _ in range(n_layers)
            ]
        )
        self.context = nn.ModuleList([nn.Linear(d_context, n_bits) for _ in range(n_layers)])
        self.direct = (
            nn.Parameter(torch.zeros(n_bits, n_bits)) if n_layers > 1 else None
        )  # bits -> output, strictly masked (zero-initialised: starts as a plain MADE)
        ones = torch.ones(n_bits, n_bits)
        self.register_buffer("mask_first", torch.tril(ones, diagonal=-1), persistent=False)
        self.register_buffer("mask_rest", torch.tril(ones), persistent=False)

    def masked_weights(self) -> list[torch.Tensor]:
        return [
            w * (self.mask_first if i == 0 else self.mask_rest) for i, w in enumerate(self.weight)
        ]

    def forward(self, h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Logits of every bit given the context ``h`` (..., d) and the bits ``x`` (..., n_bits)."""
        weights = self.masked_weights()
        a = F.linear(x, weights[0]) + self.context[0](h)
        for w, ctx in zip(weights[1:], self.context[1:], strict=True):
            a = F.linear(torch.relu(a), w) + ctx(h)
        if self.direct is not None:
            a = a + F.linear(x, self.direct * self.mask_first)
        return a

    @torch.no_grad()
    def sample(
        self,
        h: torch.Tensor,
        *,
        generator: torch.Generator,
        fixed: torch.Tensor | None = None,
        values: torch.Tensor | None = None,
        one_hot: list[tuple[int, int]] = (),
        return_logits: bool = False,
    ):
        """Draw the bits of ``n`` rows one at a time (vectorised over rows).

        Parameters
        ----------
        h : tensor (n, d)
            Contexts.
        generator : torch.Generator
            Source of the uniform draws (one per row and bit, forced bits included, so the
            stream does not depend on what is forced).
        fixed, values : bool / float tensors (n, n_bits), optional
            Bits with ``fixed`` True take the value in ``values`` instead of being drawn.
        one_hot : list of (start, stop)
            Segments of bits of which exactly one is set (a categorical column): once a bit of
            the segment is drawn the others are 0, and the last bit is 1 if none was drawn
            before, so the segment follows the model's categorical distribution.
        return_logits : bool
            Also return the logits of every bit given the bits drawn before it.
        """
        n, d_bits = h.shape[0], self.n_bits
        weights = self.masked_weights()
        direct = None if self.direct is None else self.direct * self.mask_first
        ctx = [c(h) for c in self.context]
        x = torch.zeros(n, d_bits, device=h.device, dtype=h.dtype)
        hidden = [torch.zeros(n, d_bits, device=h.device, dtype=h.dtype) for _ in weights[1:]]
        logits = torch.zeros_like(x) if return_logits else None
        seg_of = {}
        for start, stop in one_hot:
            for j in range(start, stop):
                seg_of[j] = (start, stop)
        taken = None
        for j in range(d_bits):
            a = x[:, :j] @ weights[0][j, :j] + ctx[0][:, j]
            for layer in range(1, len(weights)):
                hidden[layer - 1][:, j] = torch.relu(a)
                a = hidden[layer - 1][:, : j + 1] @ weights[layer][j, : j + 1] + ctx[layer][:, j]
            if direct is not None:
                a = a + x[:, :j] @ direct[j, :j]
            if logits is not None:
                logits[:, j] = a
            u = torch.rand(n, generator=generator, device=h.device, dtype=h.dtype)
            bit = u < torch.sigmoid(a)
            seg = seg_of.get(j)
            if seg is not None:
                if j == seg[0]:
                    taken = torch.zeros(n, dtype=torch.bool, device=h.device)
                bit = bit & ~taken
                if j == seg[1] - 1:
                    bit = bit | ~taken
                taken = taken | bit
            if fixed is not None:
                bit = torch.where(fixed[:, j], values[:, j] > 0.5, bit)
            x[:, j] = bit.to(x.dtype)
        return (x, logits) if return_logits else x


class HALONetwork(nn.Module):
    """Causal transformer over visits + autoregressive heads for the prefix and the visits.

    Parameters
    ----------
    n_prefix : int
        Bits of the prefix (one-hot demographics, then the label bit).
    n_codes : int
        Size of the code vocabulary.
    d_model, n_layers, n_heads : int
        Transformer width, depth and attention heads.
    max_visits : int
        Longest visit sequence (positions ``max_visits + 2`` with START and the prefix).
    n_code_layers : int
        Masked layers of each autoregressive head.
    dropout : float
        Dropout inside the transformer.
    """

    def __init__(
        self,
        n_prefix: int,
        n_codes: int,
        *,
        d_model: int,
        n_layers: int,
        n_heads: int,
        max_visits: int,
        n_code_layers: int,
        dropout: float,
    ) -> None:
        super().__init__()
        self.n_prefix, self.n_codes, self.max_visits = int(n_prefix), int(n_codes), int(max_visits)
        self.start = nn.Parameter(torch.randn(d_model) * 0.02)
        self.embed_prefix = nn.Linear(n_prefix, d_model)
        self.embed_visit = nn.Linear(n_codes, d_model)
        self.position = nn.Embedding(max_visits + 2, d_model)
        nn.init.normal_(self.position.weight, std=0.02)
        layer = nn.TransformerEncoderLayer(
            d_model,
            n_heads,
            dim_feedforward=4 * d_model,
            dropout=dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.transformer = nn.TransformerEncoder(
            layer, n_layers, norm=nn.LayerNorm(d_model), enable_nested_tensor=False
        )
        self.prefix_head = MaskedAutoregressive(n_prefix, d_model, n_code_layers)
        self.visit_head = MaskedAutoregressive(n_codes + 1, d_model, n_code_layers)

    # ------------------------------------------------------------------ contexts
    def contexts(
        self, prefix: torch.Tensor | None, visits: torch.Tensor | None, n: int = 1
    ) -> torch.Tensor:
        """``h`` (n, S, d) for ``[START, prefix, visits...]`` (prefix / visits may be omitted)."""
        parts = [self.start.expand(n, 1, -1)]
        if prefix is not None:
            n = prefix.shape[0]
            parts = [self.start.expand(n, 1, -1), self.embed_prefix(prefix)[:, None]]
            if visits is not None and visits.shape[1] > 0:
                parts.append(self.embed_visit(visits))
        e = torch.cat(parts, dim=1)
        s = e.shape[1]
        e = e + self.position.weight[:s]
        mask = nn.Transformer.generate_square_subsequent_mask(s, device=e.device, dtype=e.dtype)
        return self.transformer(e, mask=mask, is_causal=True)

    def label_logits(self, h0: torch.Tensor, demographics: torch.Tensor) -> torch.Tensor:
        """Logit of ``P(label = 1 | demographics)`` (differentiable); ``h0`` (1, d) or (n, d)."""
        n = demographics.shape[0]
        x = torch.cat([demographics, demographics.new_zeros(n, 1)], dim=1)
        return self.prefix_head(h0.expand(n, -1), x)[:, -1]

    # ------------------------------------------------------------------ training
    def forward(
        self,
        prefix: torch.Tensor,
        visits: torch.Tensor,
        lengths: torch.Tensor,
        demographics: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Mean NLL per patient of a batch, and the label logits of ``demographics`` rows.

        Parameters
        ----------
        prefix : (B, n_prefix) float
        visits : (B, T, n_codes) float, visits ``>= lengths`` are padding
        lengths : (B,) int64, number of real visits (1..T)
        demographics : (M, n_prefix - 1) float, optional
            Rows whose ``P(label = 1 | demographics)`` logit is returned as well (the fairness
            term, e.g. over a whole data-parallel global batch).
        """
        b, t = visits.shape[0], visits.shape[1]
        h = self.contexts(prefix, visits)  # (B, T + 2, d)
        prefix_nll = F.binary_cross_entropy_with_logits(
            self.prefix_head(h[:, 0], prefix), prefix, reduction="none"
        ).sum(-1)
        # targets of positions 1..T+1: the visits, then END (end bit) after the last one
        k = torch.arange(t + 1, device=visits.device)
        real = k[None, :] <= lengths[:, None]  # (B, T + 1): visit targets and the END target
        rows, pos = real.nonzero(as_tuple=True)
        is_end = pos == lengths[rows]
        target = visits.new_zeros(rows.shape[0], self.n_codes + 1)
        keep = ~is_end
        target[keep, 1:] = visits[rows[keep], pos[keep]]
        target[is_end, 0] = 1.0
        logits = self.visit_head(h[rows, pos + 1], target)
        bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
        weight = torch.ones_like(bce)
        weight[is_end, 1:] = 0.0  # END: only its end bit counts
        bce = bce * weight
        visit_nll = prefix_nll.new_zeros(b).index_add(0, rows, bce.sum(-1))
        nll = (prefix_nll + visit_nll).mean()
        label = None
        if demographics is not None:
            label = self.label_logits(h[:1, 0], demographics)
        return nll, label

    # ------------------------------------------------------------------ sampling
    @torch.no_grad()
    def sample(
        self,
        fixed: torch.Tensor,
        values: torch.Tensor,
        *,
        one_hot: list[tuple[int, int]],
        max_visits: int,
        generator: torch.Generator,
        max_tries: int = 10,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Draw ``n`` patients: ``(prefix (n, P), visits (n, T, C) bool, lengths (n,))``.

        ``fixed`` / ``values`` (n, P) force prefix bits (conditions). Visits are drawn until the
        end bit or ``max_visits``; the first visit cannot be the end, and a visit drawn without
        any code is drawn again (up to ``max_tries`` times, then its most likely code is set),
        so every patient has at least one visit and every visit at least one code.
        """
        n = fixed.shape[0]
        dev = fixed.device
        h0 = self.contexts(None, None, n=1)[:, 0]
        prefix = self.prefix_head.sample(
            h0.expand(n, -1), generator=generator, fixed=fixed, values=values, one_hot=one_hot
        )
        visits = torch.zeros(n, max_visits, self.n_codes, dtype=torch.bool, device=dev)
        lengths = torch.zeros(n, dtype=torch.long, device=dev)
        alive = torch.arange(n, device=dev)
        for t in range(max_visits):
            h = self.contexts(prefix[alive], visits[alive, :t].float())[:, -1]
            bits = self._draw_visit(h, generator, first=t == 0, max_tries=max_tries)
            going = bits[:, 0] < 0.5
            alive = alive[going]
            if alive.numel() == 0:
                break
            visits[alive, t] = bits[going, 1:] > 0.5
            lengths[alive] = t + 1
        return prefix, visits, lengths

    def _draw_visit(
        self, h: torch.Tensor, generator: torch.Generator, *, first: bool, max_tries: int
    ) -> torch.Tensor:
        head = self.visit_head
        fixed = torch.zeros(h.shape[0], head.n_bits, dtype=torch.bool, device=h.device)
        fixed[:, 0] = first  # the first visit is never the end of the record
        values = torch.zeros(fixed.shape, dtype=h.dtype, device=h.device)
        bits = head.sample(h, generator=generator, fixed=fixed, values=values)

        def empty(b):
            return (b[:, 0] < 0.5) & (b[:, 1:].sum(-1) == 0)

        todo = empty(bits).nonzero(as_tuple=True)[0]
        for _ in range(max_tries):
            if todo.numel() == 0:
                return bits
            bits[todo] = head.sample(
                h[todo], generator=generator, fixed=fixed[todo], values=values[todo]
            )
            todo = todo[empty(bits[todo])]
        if todo.numel():  # still empty: set the most likely first code
            logits = head(h[todo], torch.zeros_like(bits[todo]))
            bits[todo, 1 + logits[:, 1:].argmax(-1)] = 1.0
        return bits
