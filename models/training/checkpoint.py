"""Re-export a saved training checkpoint (``finmon export``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from transformers import AutoConfig, AutoModel

from models.dataset import Example
from models.errors import ArtifactError
from models.tokenize import TextEncoder
from models.training.export import MAX_INT8_DROP, export_artifact
from models.training.network import TwoHeadClassifier
from models.training.train import add_report_metrics

REQUIRED = ("encoder", "heads.pt", "tokenizer.json", "training.json", "select.jsonl", "report.jsonl")


def read_examples_jsonl(path: Path) -> list[Example]:
    with path.open(encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle if line.strip()]
    return [Example(row["text"], row.get("sentiment"), row.get("topic")) for row in rows]


def load_checkpoint(folder: Path) -> tuple[TwoHeadClassifier, dict[str, Any], list[Example], list[Example]]:
    """The trained network, its training record and its labeled select and report splits."""
    missing = [name for name in REQUIRED if not (folder / name).exists()]
    if "select.jsonl" in missing and (folder / "validation.jsonl").exists():
        raise ArtifactError(
            f"checkpoint {folder} was written before the select/report split (it has validation.jsonl): "
            "split that file into select.jsonl and report.jsonl, or train again"
        )
    if missing:
        raise ArtifactError(f"checkpoint {folder} lacks {', '.join(missing)}")
    config = AutoConfig.from_pretrained(str(folder / "encoder"), local_files_only=True)
    encoder = AutoModel.from_pretrained(str(folder / "encoder"), local_files_only=True)
    model = TwoHeadClassifier(encoder, int(config.hidden_size))
    heads = torch.load(folder / "heads.pt", weights_only=True)
    model.sentiment.load_state_dict(heads["sentiment"])
    model.topic.load_state_dict(heads["topic"])
    record = json.loads((folder / "training.json").read_text(encoding="utf-8"))
    select, report = (read_examples_jsonl(folder / f"{part}.jsonl") for part in ("select", "report"))
    return model.eval(), record, select, report


def export_checkpoint(
    folder: Path, output: Path, keep_fp32: bool = False, max_int8_drop: float = MAX_INT8_DROP
) -> dict[str, Any]:
    model, record, select, report = load_checkpoint(folder)
    encoder = TextEncoder.from_file(
        folder / "tokenizer.json",
        int(record.get("max_length", 128)),
        float(record.get("truncation", {}).get("head_fraction", 0.5)),
    )
    manifest = export_artifact(
        model,
        encoder,
        folder / "tokenizer.json",
        output,
        select,
        report,
        record,
        keep_fp32=keep_fp32,
        max_int8_drop=max_int8_drop,
    )
    return add_report_metrics(output, model, encoder, report, manifest)
