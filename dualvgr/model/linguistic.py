"""The linguistic input unit: word embedding and the two bidirectional question LSTMs.

Follows ``../shared/reference/dualvgr-original.md`` §3.2 (``InputUnitLinguisticDynamic``). Key names are the
original's: ``encoder_embed``, ``concatRNN.rnn.*`` (the per-word LSTM, wrapped like the original
``DynamicRNN``) and ``encoder.*`` (the sentence LSTM).

Packing needs the lengths on the CPU (B3). Both LSTMs read the same packed sequence, so it is packed once.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

EMBEDDING_DROPOUT = 0.15  # one mask feeds both LSTMs and the query attention (§3.2)
QUESTION_DROPOUT = 0.18


class PaddedLSTM(nn.Module):
    """A bidirectional LSTM over a packed batch whose outputs are re-padded to the full length L.

    Plays the original ``DynamicRNN`` (sort, pack, run, unpack, unsort, zero-pad); ``pack_padded_sequence``
    with ``enforce_sorted=False`` does the sorting. The wrapped LSTM is ``self.rnn`` so keys read
    ``concatRNN.rnn.*``. The original passes ``dropout=0.15`` to a one-layer LSTM, where it has no effect (B39).
    """

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.rnn = nn.LSTM(input_size, hidden_size, num_layers=1, batch_first=True, bidirectional=True)

    def forward(self, packed: PackedSequence, total_length: int) -> torch.Tensor:
        """packed words -> (B, L, 2*hidden), exact zeros after each question's end."""
        out, _ = self.rnn(packed)
        padded, _ = pad_packed_sequence(out, batch_first=True, total_length=total_length)  # (B, L, 2H)
        return padded


class LinguisticInputUnit(nn.Module):
    """Question (B,L) -> q_vec (B,D), words (B,L,W), Hq (B,L,D) (§3.2, §3.10)."""

    def __init__(self, vocab_size: int, word_dim: int, module_dim: int) -> None:
        super().__init__()
        if module_dim % 2:
            raise ValueError(f"module_dim must be even for the bidirectional LSTMs, got {module_dim}")
        self.encoder_embed = nn.Embedding(vocab_size, word_dim)
        self.concatRNN = PaddedLSTM(word_dim, module_dim // 2)
        self.encoder = nn.LSTM(word_dim, module_dim // 2, batch_first=True, bidirectional=True)
        self.embedding_dropout = nn.Dropout(EMBEDDING_DROPOUT)
        self.final_dropout = nn.Dropout(QUESTION_DROPOUT)

    def forward(
        self, question: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """question (B,L) int, lengths (B,) int64 **on the CPU** (B3) -> q_vec, words, Hq."""
        words = torch.tanh(self.embedding_dropout(self.encoder_embed(question)))  # (B, L, W)
        packed = pack_padded_sequence(words, lengths, batch_first=True, enforce_sorted=False)
        hq = self.concatRNN(packed, total_length=question.size(1))  # (B, L, D)
        _, (h_n, _) = self.encoder(packed)  # h_n (2, B, D/2), already in the caller's batch order
        q_vec = self.final_dropout(torch.cat([h_n[0], h_n[1]], dim=-1))  # (B, D): [forward, backward]
        return q_vec, words, hq
