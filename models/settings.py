"""The model section of finmon's settings."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "default"
MULTILINGUAL_MODEL_DIR = Path(__file__).resolve().parent / "multilingual"
CHINESE_MODEL_DIR = Path(__file__).resolve().parent / "chinese"


class ModelSettings(BaseModel):
    """Which model folder to load and where to run it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: Path = Field(DEFAULT_MODEL_DIR, description="Model folder (manifest.json, ONNX variants, tokenizer).")
    multilingual_path: Path | None = Field(
        MULTILINGUAL_MODEL_DIR,
        description="Model folder for documents not in English (by their lang field, or their script "
        "when it is absent) other than Chinese when a Chinese model is set; empty: the main model reads them.",
    )
    chinese_path: Path | None = Field(
        CHINESE_MODEL_DIR,
        description="Model folder for Chinese documents (lang zh, or Han script when it is absent); empty: "
        "the multilingual model reads them.",
    )
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="cuda: fp16 on the CUDA provider; cpu: int8; auto: CUDA when this build offers it."
    )
    batch_size: int = Field(64, ge=1, le=4096, description="Documents per inference call.")
    threads: int | None = Field(None, ge=1, description="ONNX Runtime intra-op threads (default: all cores).")
    spin: bool = Field(
        False,
        description="Let ONNX Runtime's threads spin between operators: a little faster alone, slower beside "
        "the event loop and the Kafka clients, whose cores the spinning takes.",
    )
    verify_checksums: bool = Field(True, description="Check every model file against its sha256 at load.")

    @field_validator("multilingual_path", "chinese_path", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if isinstance(value, str) and value.strip().lower() in ("", "none") else value
