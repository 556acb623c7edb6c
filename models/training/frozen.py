"""Training the upper layers on fixed lower ones: the embeddings and the lowest layers are frozen, and
their output for each text is computed once, so an epoch costs only the layers that learn.

On two CPU cores this is what lets a 12-layer encoder be fine-tuned at all: each epoch of the whole
network costs about three times its forward pass, while the cached part costs one forward pass, once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch

from models.tokenize import TextEncoder
from models.training.network import TwoHeadClassifier

CACHE_BATCH = 64


class Forward:
    """Logits of both heads for texts, through the whole network."""

    def __init__(self, model: TwoHeadClassifier, encoder: TextEncoder) -> None:
        self.model = model
        self.encoder = encoder

    def __call__(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        enc = self.encoder.encode(list(texts))
        return self.model(torch.from_numpy(enc.input_ids), torch.from_numpy(enc.attention_mask))


class CachedLower(Forward):
    """The same logits, with the embeddings and the lowest ``cut`` layers frozen and their output kept
    per text (real tokens only: attention never reads a padded position, so padding does not change them)."""

    def __init__(self, model: TwoHeadClassifier, encoder: TextEncoder, cut: int, texts: Iterable[str] = ()) -> None:
        super().__init__(model, encoder)
        layers = len(model.layers())
        if not 0 < cut < layers:
            raise ValueError(f"freeze between 1 and {layers - 1} of the encoder's {layers} layers, not {cut}")
        self.cut = cut
        encoder_module: torch.nn.Module = model.encoder
        for name, parameter in encoder_module.named_parameters():
            if name.startswith("embeddings.") or any(name.startswith(f"encoder.layer.{i}.") for i in range(cut)):
                parameter.requires_grad_(False)
        self.states: dict[str, torch.Tensor] = {}
        self.fill(texts)

    def fill(self, texts: Iterable[str]) -> None:
        """Compute and keep the lower output of every text not yet kept (in batches of similar length)."""
        todo = sorted({t for t in texts if t not in self.states}, key=len)
        was_training = self.model.training
        self.model.eval()
        with torch.inference_mode():
            for start in range(0, len(todo), CACHE_BATCH):
                chunk = todo[start : start + CACHE_BATCH]
                enc = self.encoder.encode(chunk)
                mask = torch.from_numpy(enc.attention_mask)
                hidden = self.model.lower(torch.from_numpy(enc.input_ids), mask, self.cut)
                for row, text in enumerate(chunk):
                    self.states[text] = hidden[row, : int(mask[row].sum())].clone()
        self.model.train(was_training)

    def __call__(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        self.fill(texts)
        rows = [self.states[t] for t in texts]
        width = max(r.shape[0] for r in rows)
        hidden = torch.zeros(len(rows), width, rows[0].shape[1])
        mask = torch.zeros(len(rows), width, dtype=torch.long)
        for i, row in enumerate(rows):
            hidden[i, : row.shape[0]] = row
            mask[i, : row.shape[0]] = 1
        return self.model.upper(hidden, mask, self.cut)
