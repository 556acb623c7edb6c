"""The trained network: one BERT-family encoder, mean pooling, two classification heads."""

from __future__ import annotations

from pathlib import Path

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
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
        pooled = self.dropout(pooled)
        return self.sentiment(pooled), self.topic(pooled)
