"""The trained network: one BERT-family encoder, mean pooling, two classification heads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import AutoConfig, AutoModel

from models.labels import SENTIMENT_LABELS, TOPIC_LABELS


class TwoHeadClassifier(nn.Module):
    """One forward pass gives the sentiment logits and the topic logits."""

    def __init__(self, encoder: nn.Module, hidden_size: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.encoder = encoder
        self.dropout = nn.Dropout(dropout)
        self.sentiment = nn.Linear(hidden_size, len(SENTIMENT_LABELS))
        self.topic = nn.Linear(hidden_size, len(TOPIC_LABELS))

    @classmethod
    def from_base(cls, base: Path, dropout: float = 0.1) -> TwoHeadClassifier:
        config = AutoConfig.from_pretrained(str(base), local_files_only=True)
        encoder = AutoModel.from_pretrained(str(base), local_files_only=True)
        return cls(encoder, int(config.hidden_size), dropout)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return self.classify(hidden, attention_mask)

    def classify(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean of the real tokens' last hidden states, then both heads."""
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
        pooled = self.dropout(pooled)
        return self.sentiment(pooled), self.topic(pooled)

    # The network cut between two layers, for training the upper part on fixed lower outputs.

    def layers(self) -> nn.ModuleList:
        encoder: Any = self.encoder
        layers: nn.ModuleList = encoder.encoder.layer
        return layers

    def lower(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, cut: int) -> torch.Tensor:
        """Hidden states after the embeddings and the lowest ``cut`` layers."""
        encoder: Any = self.encoder
        hidden: torch.Tensor = encoder.embeddings(input_ids=input_ids)
        additive = _additive(attention_mask, hidden.dtype)
        for layer in self.layers()[:cut]:
            hidden = _output(layer(hidden, additive))
        return hidden

    def upper(self, hidden: torch.Tensor, attention_mask: torch.Tensor, cut: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The layers from ``cut`` up, pooling and heads, over the output of :meth:`lower`."""
        additive = _additive(attention_mask, hidden.dtype)
        for layer in self.layers()[cut:]:
            hidden = _output(layer(hidden, additive))
        return self.classify(hidden, attention_mask)


def _additive(attention_mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """The (batch, 1, 1, tokens) mask every attention implementation adds to its scores."""
    keep = attention_mask[:, None, None, :].to(dtype)
    return (1.0 - keep) * torch.finfo(dtype).min


def _output(result: torch.Tensor | tuple[torch.Tensor, ...]) -> torch.Tensor:
    return result[0] if isinstance(result, tuple) else result
