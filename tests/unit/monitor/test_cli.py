import json
import subprocess
import sys
from pathlib import Path

import pytest

from monitor.cli import main


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    "argv",
    [
        ["score", "--input", "missing.csv", "--output", "x.jsonl"],
        ["score", "--bogus"],
        ["evaluate", "--data", "missing.csv", "--task", "sentiment"],
        ["evaluate", "--data", "pyproject.toml", "--task", "mood"],
        ["train", "--output", "out", "--epochs", "0"],
        ["nonsense"],
        ["demo", "--rate", "-5"],
        ["feed", "--rate", "0"],
        ["score", "--input", "tests", "--output", "x.jsonl"],
        ["score", "--input", "pyproject.toml", "--output", "tests"],
        ["score", "--input", "pyproject.toml", "--output", "no/such/folder/x.jsonl"],
    ],
)
def test_bad_flags_and_files_are_one_line_and_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(argv, capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert "error:" in err


def test_bad_model_folder_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text('{"text": "good"}\n')
    (tmp_path / "empty").mkdir()
    code, _, err = run(
        ["score", "--input", str(source), "--output", str(tmp_path / "o.jsonl"), "--model", str(tmp_path / "empty")],
        capsys,
    )
    assert code == 2
    assert err.strip().splitlines()[-1] == f"finmon: error: model folder {tmp_path / 'empty'} has no manifest.json"


def test_bad_setting_is_one_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("FINMON_MODEL__BATCH_SIZE", "lots")
    code, _, err = run(["config", "show"], capsys)
    assert code == 2
    assert err.startswith("finmon: error: invalid setting FINMON_MODEL__BATCH_SIZE")


def test_config_show_masks_secrets(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("FINMON_KAFKA__SASL_PASSWORD", "hunter2")
    monkeypatch.setenv("FINMON_MODEL__DEVICE", "cpu")
    code, out, _ = run(["config", "show"], capsys)
    assert code == 0
    shown = json.loads(out)
    assert shown["model"]["device"] == "cpu"
    assert shown["kafka"]["sasl_password"] == "**********"
    assert "hunter2" not in out


def test_score_jsonl_keeps_order_and_ids_and_reports_bad_lines(
    tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text(
        "\n".join(
            [
                '{"id": "a", "text": "good dividend"}',
                '{"id": "b", "title": "bad", "body": "oil w1"}',
                '{"id": "c", "text": ""}',
                "{broken",
                '{"id": "e", "text": 17}',
                '{"text": "flat fed"}',
            ]
        )
        + "\n"
    )
    target = tmp_path / "out.jsonl"
    code, _, err = run(
        ["score", "--input", str(source), "--output", str(target), "--model", str(tiny_model), "--no-progress"], capsys
    )
    assert code == 0, err
    lines = [json.loads(line) for line in target.read_text().splitlines()]
    assert [line.get("id") for line in lines] == ["a", "b", "c", None, "e", "in-6"]  # numbered by its line
    assert (lines[0]["sentiment"], lines[0]["topic"]) == ("positive", "Dividend")
    assert (lines[1]["sentiment"], lines[1]["topic"]) == ("negative", "Energy / Oil")
    assert [lines[i]["error"]["reason"] for i in (2, 3, 4)] == ["empty_text", "invalid_json", "schema"]
    assert [lines[i]["line"] for i in (2, 3, 4)] == [3, 4, 5]
    assert lines[5]["topic"] == "Fed / Central Banks"
    assert lines[0]["model_version"] == "tiny-1"
    assert "scored 3, rejected 3" in err
    # the scored lines are news.scored records, as the worker and rescoring write them
    assert lines[0]["title"] == "good dividend" and lines[0]["schema_version"] == 1 and lines[0]["lang"] == "en"
    assert {"published_at", "scored_at", "tickers", "entities", "sentiment_scores"} <= set(lines[0])


def test_score_csv(tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "in.csv"
    source.write_text('id,text\n1,"good\nipo"\n2,bad\n')
    target = tmp_path / "out.jsonl"
    code, _, _ = run(
        ["score", "--input", str(source), "--output", str(target), "--model", str(tiny_model), "--no-progress"], capsys
    )
    assert code == 0
    lines = [json.loads(line) for line in target.read_text().splitlines()]
    assert [(x["id"], x["sentiment"]) for x in lines] == [("1", "positive"), ("2", "negative")]
    assert lines[0]["topic"] == "IPO"


def test_csv_without_text_column(tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "in.csv"
    source.write_text("headline\nhello\n")
    code, _, err = run(
        ["score", "--input", str(source), "--output", str(tmp_path / "o"), "--model", str(tiny_model)], capsys
    )
    assert code == 2
    assert "CSV needs a 'text' column" in err


def test_evaluate_reports_metrics(tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "labeled.csv"
    data.write_text("text,label\ngood w1,positive\nbad w2,negative\ngood w3,negative\n")
    out_json = tmp_path / "m.json"
    code, out, _ = run(
        ["evaluate", "--data", str(data), "--task", "sentiment", "--model", str(tiny_model), "--json", str(out_json)],
        capsys,
    )
    assert code == 0
    assert "accuracy 0.6667" in out
    assert json.loads(out_json.read_text())["confusion_matrix"][0] == [1, 0, 1]


def test_console_script_exit_code() -> None:
    result = subprocess.run([sys.executable, "-m", "monitor.cli", "score"], capture_output=True, text=True, check=False)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1


def test_an_unknown_global_flag_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["--bogus"], capsys)
    assert (code, err) == (2, "finmon: error: unrecognized arguments: --bogus\n")


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["--version"], capsys)
    assert code == 0 and out.startswith("finmon ") and len(out.split()) >= 2


@pytest.mark.parametrize(
    ("name", "value"), [("FINMON_ALERTS__TARGETS", "not json"), ("FINMON_WINDOWS__WATCH_TICKERS", "TSLA,NKE")]
)
def test_a_list_setting_that_is_not_json_is_named(
    name: str, value: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(name, value)
    monkeypatch.setenv("FINMON_ALERTS__SENSITIVITY", "high")  # a plain value in the same section is not the culprit
    code, _, err = run(["config", "show"], capsys)
    assert code == 2 and len(err.splitlines()) == 1
    assert err.startswith(f"finmon: error: invalid setting {name}={value!r}: give JSON")


def test_config_show_gives_the_detector_values_the_preset_uses_and_hides_webhook_paths(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FINMON_ALERTS__SENSITIVITY", "high")
    monkeypatch.setenv("FINMON_ALERTS__ALPHA", "0.02")
    hook = "https://hooks.slack.com/services/T000/B000/XXXXSECRET"
    monkeypatch.setenv("FINMON_ALERTS__TARGETS", json.dumps([{"url": hook, "format": "slack"}]))
    code, out, _ = run(["config", "show"], capsys)
    alerts = json.loads(out)["alerts"]
    assert code == 0
    assert (alerts["min_count"], alerts["alpha"], alerts["exit_windows"]) == (5, 0.02, 2)
    assert None not in alerts.values()
    assert alerts["targets"][0]["url"] == "https://hooks.slack.com/**********" and "XXXXSECRET" not in out
