import json
import shutil
from pathlib import Path

import pytest

from models.artifact import load_artifact
from models.errors import ArtifactError


@pytest.fixture
def folder(tiny_model: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(tiny_model, tmp_path / "model"))


def test_a_complete_folder_loads(folder: Path) -> None:
    artifact = load_artifact(folder)
    assert artifact.version == "tiny-1"
    assert set(artifact.variants) == {"int8", "fp16"}
    assert artifact.max_length == 16


def test_a_corrupted_file_refuses_to_load(folder: Path) -> None:
    with (folder / "model.int8.onnx").open("ab") as handle:
        handle.write(b"\0")
    with pytest.raises(ArtifactError, match=r"model.int8.onnx does not match its sha256"):
        load_artifact(folder)


def test_a_missing_file_refuses_to_load(folder: Path) -> None:
    (folder / "tokenizer.json").unlink()
    with pytest.raises(ArtifactError, match=r"tokenizer.json is missing"):
        load_artifact(folder)


def test_missing_folder_and_manifest(tmp_path: Path, folder: Path) -> None:
    with pytest.raises(ArtifactError, match="does not exist"):
        load_artifact(tmp_path / "nowhere")
    (folder / "manifest.json").unlink()
    with pytest.raises(ArtifactError, match="has no manifest.json"):
        load_artifact(folder)


def test_label_maps_must_match(folder: Path) -> None:
    labels = json.loads((folder / "labels.json").read_text())
    labels["sentiment"] = ["positive", "neutral", "negative"]
    (folder / "labels.json").write_text(json.dumps(labels))
    manifest = json.loads((folder / "manifest.json").read_text())
    from models.artifact import sha256_of

    manifest["files"]["labels.json"] = sha256_of(folder / "labels.json")
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="sentiment labels differ"):
        load_artifact(folder)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda m: m.update(schema_version=99), "schema_version 99"),
        (lambda m: m.pop("version"), "lacks the field 'version'"),
        (lambda m: m["files"].pop("labels.json"), "no checksum for labels.json"),
    ],
)
def test_manifest_problems_are_named(folder: Path, edit, message: str) -> None:  # type: ignore[no-untyped-def]
    manifest = json.loads((folder / "manifest.json").read_text())
    edit(manifest)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match=message):
        load_artifact(folder)


def test_manifest_that_is_not_json(folder: Path) -> None:
    (folder / "manifest.json").write_text("{oops")
    with pytest.raises(ArtifactError, match="not valid JSON"):
        load_artifact(folder)
