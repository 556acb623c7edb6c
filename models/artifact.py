"""The model folder contract: manifest, label maps and checksums, checked before use."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models.errors import ArtifactError
from models.labels import SENTIMENT_LABELS, TOPIC_LABELS

MANIFEST = "manifest.json"
LABELS = "labels.json"
TOKENIZER = "tokenizer.json"
SCHEMA_VERSION = 1
VARIANT_FILES: dict[str, str] = {
    "fp32": "model.fp32.onnx",
    "int8": "model.int8.onnx",
    "fp16": "model.fp16.onnx",
}


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def labels_document() -> dict[str, list[str]]:
    return {"sentiment": list(SENTIMENT_LABELS), "topic": list(TOPIC_LABELS)}


def write_manifest(folder: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """Write labels.json and manifest.json, recording the sha256 of every other file."""
    (folder / LABELS).write_text(json.dumps(labels_document(), indent=2) + "\n", encoding="utf-8")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.name != MANIFEST)
    manifest = dict(manifest)
    manifest["schema_version"] = SCHEMA_VERSION
    manifest["files"] = {p.name: sha256_of(p) for p in files}
    manifest["variants"] = {k: v for k, v in VARIANT_FILES.items() if (folder / v).is_file()}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


@dataclass(frozen=True)
class Artifact:
    """A verified model folder."""

    folder: Path
    manifest: dict[str, Any]

    @property
    def version(self) -> str:
        return str(self.manifest["version"])

    @property
    def max_length(self) -> int:
        return int(self.manifest.get("max_length", 128))

    @property
    def head_fraction(self) -> float:
        return float(self.manifest.get("truncation", {}).get("head_fraction", 0.5))

    @property
    def variants(self) -> dict[str, str]:
        return dict(self.manifest.get("variants", {}))

    def variant_path(self, precision: str) -> Path:
        if precision not in self.variants:
            have = ", ".join(sorted(self.variants)) or "none"
            raise ArtifactError(f"model {self.folder} has no {precision} variant (has: {have})")
        return self.folder / self.variants[precision]


def load_artifact(folder: Path, verify_checksums: bool = True) -> Artifact:
    """Read and check a model folder; any problem is an ArtifactError with one clear line."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ArtifactError(f"model folder {folder} does not exist")
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        raise ArtifactError(f"model folder {folder} has no {MANIFEST}")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{manifest_path} is not valid JSON: {exc}") from exc
    if not isinstance(manifest, dict):
        raise ArtifactError(f"{manifest_path} must hold a JSON object")
    for key in ("version", "files", "variants"):
        if key not in manifest:
            raise ArtifactError(f"{manifest_path} lacks the field {key!r}")
    if manifest.get("schema_version") != SCHEMA_VERSION:
        raise ArtifactError(
            f"{manifest_path} has schema_version {manifest.get('schema_version')!r}; this finmon reads {SCHEMA_VERSION}"
        )
    files: dict[str, str] = manifest["files"]
    for required in (LABELS, TOKENIZER, *manifest["variants"].values()):
        if required not in files:
            raise ArtifactError(f"{manifest_path} lists no checksum for {required}")
    for name, expected in files.items():
        path = folder / name
        if not path.is_file():
            raise ArtifactError(f"model file {path} is missing")
        if verify_checksums and sha256_of(path) != expected:
            raise ArtifactError(f"model file {path} does not match its sha256 in {MANIFEST} (corrupt or modified)")
    _check_labels(folder / LABELS)
    return Artifact(folder=folder, manifest=manifest)


def _check_labels(path: Path) -> None:
    try:
        labels = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{path} is not valid JSON: {exc}") from exc
    expected = labels_document()
    for head, names in expected.items():
        if labels.get(head) != names:
            raise ArtifactError(
                f"{path}: the {head} labels differ from the ones this finmon reports ({len(names)} expected)"
            )
