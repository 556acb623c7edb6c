"""What decides a trained model: the one list of training settings and their defaults (no torch here,
so the command line reads its defaults from it without the ``[train]`` extra)."""

from __future__ import annotations

from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any


@dataclass
class TrainConfig:
    """Everything that decides the trained model; recorded in its manifest."""

    base_model: Path
    output: Path
    sentiment_data: list[Path] = field(default_factory=list)
    topic_data: list[Path] = field(default_factory=list)
    feedback_data: list[Path] = field(default_factory=list)
    unlabeled_data: list[Path] = field(default_factory=list)
    unlabeled_limit: int | None = None
    report_data: list[Path] = field(default_factory=list)
    long_examples: int = 0
    feedback_weight: float = 3.0
    max_length: int = 64
    batch_size: int = 32
    epochs: int = 3
    learning_rate: float = 8e-5
    weight_decay: float = 0.01
    warmup_fraction: float = 0.06
    dropout: float = 0.1
    patience: int = 2
    evaluations_per_epoch: int = 2
    label_smoothing: float = 0.0
    class_balance: float = 0.0
    layer_decay: float = 1.0
    length_buckets: bool = False
    teacher: Path | None = None
    teacher_threshold: float = 0.9
    teacher_weight: float = 0.5
    select_fraction: float = 0.05
    report_fraction: float = 0.05
    freeze_layers: int = 0
    seed: int = 13
    max_steps: int | None = None
    threads: int | None = None
    model_version: str | None = None
    keep_fp32: bool = False
    max_int8_drop: float = 0.003
    checkpoint: Path | None = None
    progress: bool = True

    def hyperparameters(self) -> dict[str, Any]:
        skip = {
            "base_model",
            "output",
            "sentiment_data",
            "topic_data",
            "feedback_data",
            "unlabeled_data",
            "report_data",
            "checkpoint",
            "progress",
        }
        values = {k: v for k, v in asdict(self).items() if k not in skip}
        values["teacher"] = str(self.teacher) if self.teacher else None
        if self.report_data:  # the report part is those files, not a fraction of the data
            values["report_fraction"] = None
            values["report_data"] = [path.name for path in self.report_data]
        return values


DEFAULTS: dict[str, Any] = {f.name: f.default for f in fields(TrainConfig) if f.default is not MISSING}
