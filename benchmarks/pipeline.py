"""End-to-end pipeline speed: feed -> Apache Kafka -> one worker -> news.scored and the windows.

For each model and batching setting, on the demo's mix of stories (30% Chinese, companies named as
wires name them): docs/s through one worker when news is pre-filled, Kafka records written and
read per document (every topic of the run but news: scored, trend events, window changelog, trends,
internal topics), the worker's CPU ms per document, event -> scored latency p50/p99 while feeding at
half that rate; beside the classifier alone on the same texts, batch size and routing, measured in
the same run, over the whole set (sorted by length across it) and in the batches the worker takes
(a worker cannot sort across batches it has not read yet); the ratio is against the better of the
two. ``--model free`` is a stand-in for an accelerator: real tokenization, then an ONNX graph that
returns random logits at no cost, so what remains is the path around the model.
``--before PATH`` runs the same configurations with the worker of another checkout (an earlier
commit) on the same broker, interleaved, for a before/after in one run.

    python benchmarks/pipeline.py [--docs 3000] [--model shipped free] [--configs 64:0.1 256:0.2]
        [--before ../finmon-before] [--broker kafka embedded]
    python benchmarks/pipeline.py --linking-only     # the scoring step with and without company linking
    python benchmarks/pipeline.py --adversarial      # cost outside the model of 100,000-character bodies

Apache Kafka comes from the test setup's jars (`python -m tests.kafka fetch`, Java 17).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from brokers import broker_of, cpu_seconds  # benchmarks/brokers.py, beside this file

from models.runtime import Classifier
from models.settings import DEFAULT_MODEL_DIR
from monitor.embedded_broker import free_port
from monitor.feed import FeedOptions, SyntheticNews


def documents(count: int, lang: str = "mixed") -> list[dict[str, object]]:
    generator = SyntheticNews(FeedOptions(seed=11, lang=lang))
    return [generator.next() for _ in range(count)]


def free_model(folder: Path) -> Path:
    """A model folder that costs nothing to run: the shipped tokenizer, and a graph whose logits are
    random numbers of the right shape (a stand-in for an accelerator, never for accuracy)."""
    import onnx
    from onnx import TensorProto, helper

    from models.artifact import VARIANT_FILES, write_manifest

    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(DEFAULT_MODEL_DIR / "tokenizer.json", folder / "tokenizer.json")
    nodes = [helper.make_node("Shape", ["input_ids"], ["shape"], end=1)]
    outputs = []
    for name, width in (("sentiment_logits", 3), ("topic_logits", 20)):
        nodes += [
            helper.make_node("Concat", ["shape", f"{name}_width"], [f"{name}_shape"], axis=0),
            helper.make_node("ConstantOfShape", [f"{name}_shape"], [f"{name}_zeros"],
                             value=helper.make_tensor("v", TensorProto.FLOAT, [1], [0.0])),
            helper.make_node("RandomUniformLike", [f"{name}_zeros"], [name], low=-3.0, high=3.0),
        ]  # fmt: skip
        outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, ["batch", width]))
    widths = (("sentiment_logits", 3), ("topic_logits", 20))
    inits = [helper.make_tensor(f"{n}_width", TensorProto.INT64, [1], [w]) for n, w in widths]
    names = ("input_ids", "attention_mask")
    inputs = [helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "sequence"]) for n in names]
    graph = helper.make_graph(nodes, "free", inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(folder / VARIANT_FILES["int8"]))
    shutil.copy(folder / VARIANT_FILES["int8"], folder / VARIANT_FILES["fp16"])
    manifest = json.loads((DEFAULT_MODEL_DIR / "manifest.json").read_text())
    cut = manifest.get("truncation", {"strategy": "head+tail", "head_fraction": 0.5})
    write_manifest(
        folder, {"version": "free-stand-in", "max_length": manifest.get("max_length", 128), "truncation": cut}
    )
    return folder


def records_on(url: str, prefix: str, skip: str) -> int:
    """Records written to the run's topics (those named with ``prefix``), ``skip`` aside."""
    from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

    admin = KafkaAdminClient(bootstrap_servers=url)
    try:
        names = [t for t in admin.list_topics() if t.startswith(prefix) and t != skip]
    finally:
        admin.close()
    consumer = KafkaConsumer(bootstrap_servers=url)
    try:
        tps = [TopicPartition(t, p) for t in names for p in consumer.partitions_for_topic(t) or ()]
        return sum(consumer.end_offsets(tps).values())
    finally:
        consumer.close()


async def produce(url: str, topic: str, docs: list[dict[str, object]], rate: float | None) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=url, linger_ms=5)
    await producer.start()
    began = time.monotonic()
    try:
        for i, doc in enumerate(docs):
            doc = {**doc, "published_at": datetime.now(UTC).isoformat()}
            await producer.send(topic, json.dumps(doc).encode(), key=str(doc["id"]).encode())
            if rate:
                delay = began + (i + 1) / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
        await producer.flush()
    finally:
        await producer.stop()


async def collect(url: str, topic: str, count: int, timeout: float) -> tuple[list[dict[str, object]], float]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=url, group_id=None, auto_offset_reset="earliest", isolation_level="read_committed"
    )
    await consumer.start()
    records: list[dict[str, object]] = []
    last = time.monotonic()
    deadline = last + timeout
    try:
        while len(records) < count and time.monotonic() < deadline:
            for batch in (await consumer.getmany(timeout_ms=200, max_records=5000)).values():
                records.extend(json.loads(m.value) for m in batch)
                last = time.monotonic()
    finally:
        await consumer.stop()
    return records, last


def wait_ready(port: int, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("worker exited during start")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise SystemExit("worker did not become ready")


@dataclass
class Run:
    throughput: float
    p50: float
    p99: float
    cpu_ms: float  # worker CPU per document, flat out
    written: float  # Kafka records written per document (all the run's topics but news)
    read: float  # records the worker read per document (news, trend events, trends, alerts)


def run_config(
    url: str, batch: int, within: float, docs: list[dict[str, object]], seconds: float, work: Path,
    model: Path, root: Path, tag: str,
) -> Run:  # fmt: skip
    name = f"bench{tag}{batch}x{int(within * 1000)}"
    port = free_port()
    env = dict(
        os.environ,
        FINMON_KAFKA__BOOTSTRAP_SERVERS=url,
        FINMON_STREAM__APP_ID=name,
        FINMON_STREAM__BATCH_MAX=str(batch),
        FINMON_STREAM__BATCH_WITHIN=str(within),
        FINMON_STREAM__SESSION_TIMEOUT="6",
        FINMON_STREAM__HEARTBEAT_INTERVAL="2",
        FINMON_STREAM__WEB_PORT=str(port),
        FINMON_STREAM__DATA_DIR=str(work / name),
        FINMON_MODEL__DEVICE="cpu",
        FINMON_MODEL__BATCH_SIZE=str(min(batch, 64)),
        FINMON_MODEL__PATH=str(model),
        **(
            {}
            if model == DEFAULT_MODEL_DIR
            else {"FINMON_MODEL__MULTILINGUAL_PATH": "", "FINMON_MODEL__CHINESE_PATH": ""}
        ),
        **{f"FINMON_TOPICS__{k.upper()}": f"{name}.{k}" for k in ("news", "scored", "dlq", "trends", "alerts")},
        FINMON_TOPICS__ALERTS_DLQ=f"{name}.alerts-dlq",
        FINMON_TOPICS__FEEDBACK=f"{name}.feedback",
    )
    with (work / f"{name}.log").open("ab") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "monitor.cli", "worker"],
            env=env, cwd=root, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        wait_ready(port, worker)
        asyncio.run(produce(url, f"{name}.news", docs, None))  # pre-filled: the worker runs flat out
        cpu_began, began = cpu_seconds(worker.pid), time.monotonic()
        records, last = asyncio.run(collect(url, f"{name}.scored", len(docs), timeout=900))
        throughput = len(records) / (last - began)
        cpu_ms = (cpu_seconds(worker.pid) - cpu_began) * 1000 / max(1, len(records))
        paced = docs[: max(50, int(throughput * 0.5 * seconds))]
        feeder = asyncio.run(_paced(url, name, paced, throughput * 0.5, len(docs)))
        latencies = [
            datetime.fromisoformat(str(r["scored_at"])).timestamp()
            - datetime.fromisoformat(str(r["published_at"])).timestamp()
            for r in feeder[len(docs) :]
        ]
        time.sleep(5)  # the windows' last checkpoints of the run
        total = len(docs) + len(paced)
        written = records_on(url, name, f"{name}.news")
        read = total + sum(records_on(url, t, "") for t in (f"{name}-trend-events", f"{name}.trends", f"{name}.alerts"))
        return Run(throughput, float(np.percentile(latencies, 50)), float(np.percentile(latencies, 99)), cpu_ms,
                   written / total, read / total)  # fmt: skip
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(10)


async def _paced(
    url: str, name: str, docs: list[dict[str, object]], rate: float, already: int
) -> list[dict[str, object]]:
    collector = asyncio.create_task(collect(url, f"{name}.scored", already + len(docs), timeout=120))
    await produce(url, f"{name}.news", docs, rate)
    records, _ = await collector
    return records


def classifier_alone(model: Path, batch: int, docs: list[dict[str, object]]) -> tuple[float, float]:
    """docs/s of the model(s) alone on the documents' texts, routed by language as the worker routes
    them: over the whole set at once (sorted by length across all of it, so batches pad least), and
    in the batches the worker takes (``batch`` documents in arrival order), the best a worker can do."""
    from models.routing import Router
    from models.settings import ModelSettings
    from models.text import language_of

    settings = ModelSettings(path=model, device="cpu", batch_size=min(batch, 64), spin=True)  # its best, alone
    if model != DEFAULT_MODEL_DIR:
        settings = settings.model_copy(update={"multilingual_path": None, "chinese_path": None})
    router = Router.from_settings(settings)
    texts = [" ".join(str(d.get(k) or "") for k in ("title", "body")).strip() for d in docs]
    langs = [language_of(str(d.get("lang") or "") or None, t) for d, t in zip(docs, texts, strict=True)]
    began = time.perf_counter()
    router.predict(texts, langs=langs)
    whole = len(texts) / (time.perf_counter() - began)
    began = time.perf_counter()
    for first in range(0, len(texts), batch):
        router.predict(texts[first : first + batch], langs=langs[first : first + batch])
    return whole, len(texts) / (time.perf_counter() - began)


def row(kind: str, model: str, tree: str, batch: int, alone: tuple[float, float], run: Run) -> str:
    whole, batched = alone
    return (
        f"| {kind} | {model} | {tree} | {batch} | {whole:,.0f} | {batched:,.0f} | {run.throughput:,.0f} | "
        f"{run.throughput / max(whole, batched):.2f} | {run.written:.2f} | {run.read:.2f} | {run.cpu_ms:.2f} | "
        f"{run.p50:.3f} | {run.p99:.3f} |"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=3000)
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the latency phase")
    parser.add_argument("--configs", nargs="+", default=["64:0.1", "256:0.2"], help="batch_max:batch_within pairs")
    parser.add_argument("--model", nargs="+", choices=["shipped", "free"], default=["shipped", "free"])
    parser.add_argument("--lang", choices=["en", "mixed"], default="mixed", help="the demo's mix by default")
    parser.add_argument("--before", type=Path, help="a checkout of an earlier finmon whose worker runs beside")
    parser.add_argument("--broker", nargs="+", choices=["kafka", "embedded"], default=["kafka"])
    parser.add_argument("--linking-only", action="store_true", help="only the in-process cost of company linking")
    parser.add_argument("--adversarial", action="store_true", help="only the cost of adversarial bodies")
    args = parser.parse_args()
    if args.adversarial:
        adversarial_cost()
        return 0
    docs = documents(args.docs, args.lang)
    if args.linking_only:
        linking_cost(docs)
        return 0
    with tempfile.TemporaryDirectory(prefix="finmon-pipeline-") as folder:  # broker data, logs: gone after
        return measure(args, docs, Path(folder))


def measure(args: argparse.Namespace, docs: list[dict[str, object]], work: Path) -> int:
    models = {"shipped": DEFAULT_MODEL_DIR, "free": free_model(work / "free-model")}
    trees = {"after": Path(__file__).resolve().parent.parent, **({"before": args.before} if args.before else {})}
    rows = []
    for kind in args.broker:
        with broker_of(kind, work) as (url, _):
            for model_name in args.model:
                for config in args.configs:
                    batch, within = int(config.split(":")[0]), float(config.split(":")[1])
                    alone = classifier_alone(models[model_name], batch, docs)
                    for tree, root in trees.items():
                        tag = f"{kind[0]}{model_name[0]}{tree[0]}"
                        run = run_config(url, batch, within, docs, args.seconds, work, models[model_name], root, tag)
                        rows.append(row(kind, model_name, tree, batch, alone, run))
                        print(f"done: {rows[-1]}", file=sys.stderr, flush=True)
    print(
        "| broker | model | worker | batch | alone, whole set docs/s | alone, worker's batches docs/s | worker docs/s "
        "| ratio | records written/doc | records read/doc | worker CPU ms/doc | p50 s @50% | p99 s @50% |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    return 0


def adversarial_cost(rounds: int = 5) -> None:
    """The scoring step outside the model (decode, tokenize, tag, link, encode) on 100,000-character
    bodies of each kind, with the stand-in model, against an ordinary headline."""
    from models.runtime import Classifier as Model
    from streams.core.decode import Limits
    from streams.core.scoring import Message, score_batch

    folder = tempfile.TemporaryDirectory(prefix="finmon-adversarial-")
    model = Model.load(free_model(Path(folder.name) / "free"), device="cpu")
    from tests.adversarial import adversarial_bodies

    kinds: dict[str, str] = {"headline": "", **adversarial_bodies()}
    print("| body (100,000 characters) | ms per document outside the model |")
    print("|---|---|")
    for name, body in kinds.items():
        doc = {"id": "a", "published_at": datetime.now(UTC).isoformat(), "title": "Tesla shares tumble", "body": body}
        message = Message(json.dumps(doc).encode())
        score_batch([message], model, Limits())  # warm
        began = time.perf_counter()
        for _ in range(rounds):
            result = score_batch([message], model, Limits())
            result.encoded()
        print(f"| {name} | {(time.perf_counter() - began) * 1000 / rounds:.2f} |")


def linking_cost(docs: list[dict[str, object]], rounds: int = 3) -> None:
    """The scoring step (decode, classify, tag) with company linking against without it, in process,
    alternating so drift in the machine's speed hits both alike."""
    from streams.core.companies import Linker, linker_for
    from streams.core.decode import Limits
    from streams.core.scoring import Message, score_batch

    classifier = Classifier.load(DEFAULT_MODEL_DIR, device="cpu", batch_size=64)
    messages = [Message(json.dumps(d).encode()) for d in docs]
    chunks = [messages[i : i + 64] for i in range(0, len(messages), 64)]
    linkers = {"with linking": linker_for(), "without": Linker([])}
    seconds = dict.fromkeys(linkers, 0.0)
    for _ in range(rounds):
        for name, linker in linkers.items():
            began = time.perf_counter()
            for chunk in chunks:
                score_batch(chunk, classifier, Limits(), linker=linker)
            seconds[name] += time.perf_counter() - began
    rates = {name: rounds * len(messages) / spent for name, spent in seconds.items()}
    print(f"{'scoring step':<16}{'docs/s':>10}{'x without':>11}")
    for name, rate in rates.items():
        print(f"{name:<16}{rate:>10.1f}{rate / rates['without']:>10.3f}x")


if __name__ == "__main__":
    sys.exit(main())
