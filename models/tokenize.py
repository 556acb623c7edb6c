"""Tokenization shared by training and inference: normalization, head + tail truncation, dynamic padding.

Training and serving use this same code, so a model never sees text normalized or cut differently
from the way it was trained.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from models.errors import ArtifactError
from models.text import clean_text

# Characters read per token kept, before tokenizing: a token spans at most a few characters in any
# text a model is fine-tuned on, so a text cut to this many characters per kept token, head and
# tail, gives the same ids as the whole text, and a 100,000-character body costs what 2,000 do.
CHARS_PER_TOKEN = 16
_SPACE = re.compile(r"\s")


@dataclass(frozen=True)
class Batch:
    """Token ids and attention mask padded to the longest document of the batch."""

    input_ids: np.ndarray
    attention_mask: np.ndarray
    truncated_rows: tuple[bool, ...]

    @property
    def truncated(self) -> int:
        """How many documents of the batch were cut to the maximum length."""
        return sum(self.truncated_rows)

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.input_ids.shape[0]), int(self.input_ids.shape[1]))


class TextEncoder:
    """Turns texts into padded id arrays; long texts keep their head and their tail."""

    def __init__(self, tokenizer: Tokenizer, max_length: int = 128, head_fraction: float = 0.5):
        if max_length < 4:
            raise ValueError("max_length must be at least 4")
        self._tokenizer = tokenizer
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()
        self.max_length = max_length
        self.head_fraction = head_fraction
        self.cls_id = self._special_id("[CLS]", "<s>")
        self.sep_id = self._special_id("[SEP]", "</s>")
        self.pad_id = self._special_id("[PAD]", "<pad>")

    @classmethod
    def from_file(cls, path: Path, max_length: int = 128, head_fraction: float = 0.5) -> TextEncoder:
        try:
            tokenizer = Tokenizer.from_file(str(path))
        except Exception as exc:  # tokenizers raises plain Exception subclasses
            raise ArtifactError(f"cannot read tokenizer {path}: {exc}") from exc
        return cls(tokenizer, max_length=max_length, head_fraction=head_fraction)

    def _special_id(self, *names: str) -> int:
        for name in names:
            token_id = self._tokenizer.token_to_id(name)
            if token_id is not None:
                return int(token_id)
        raise ArtifactError(f"tokenizer has none of the special tokens {names}")

    def read(self, text: str) -> str:
        """The text as the model reads it: its head and tail (``clip``), normalized (``clean_text``)."""
        return clean_text(self.clip(text))

    def clip(self, text: str) -> str:
        """The text's head and tail, as much of each as the model can keep, cut at white space where
        there is some near the cut (never inside a kept word); the text itself when it is short."""
        budget = self.max_length - 2
        head_chars = round(budget * self.head_fraction) * CHARS_PER_TOKEN
        tail_chars = (budget - round(budget * self.head_fraction)) * CHARS_PER_TOKEN
        if len(text) <= head_chars + tail_chars + 2 * CHARS_PER_TOKEN:
            return text
        head, tail = text[: head_chars + CHARS_PER_TOKEN], text[len(text) - tail_chars - CHARS_PER_TOKEN :]
        space = _SPACE.search(head, head_chars)
        head = head[: space.start()] if space else head
        first = _SPACE.search(tail, 0, CHARS_PER_TOKEN)
        tail = tail[first.end() :] if first else tail
        return f"{head} {tail}" if tail_chars else head

    def ids(self, text: str) -> tuple[list[int], bool]:
        """Ids with special tokens, cut to ``max_length`` as head + tail; and whether it was cut."""
        content = self._tokenizer.encode(self.read(text), add_special_tokens=False).ids
        return self._frame(content)

    def _frame(self, content: list[int]) -> tuple[list[int], bool]:
        budget = self.max_length - 2
        truncated = len(content) > budget
        if truncated:
            head = round(budget * self.head_fraction)
            tail = budget - head
            content = content[:head] + (content[len(content) - tail :] if tail else [])
        return [self.cls_id, *content, self.sep_id], truncated

    def encode(self, texts: Sequence[str]) -> Batch:
        """Encode a batch, padding only to the longest document in it."""
        encodings = self._tokenizer.encode_batch([self.read(t) for t in texts], add_special_tokens=False)
        framed = [self._frame(enc.ids) for enc in encodings]
        width = max(len(ids) for ids, _ in framed)
        input_ids = np.full((len(framed), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(framed), width), dtype=np.int64)
        for row, (ids, _) in enumerate(framed):
            input_ids[row, : len(ids)] = ids
            mask[row, : len(ids)] = 1
        return Batch(input_ids, mask, tuple(cut for _, cut in framed))
