"""The sources file: every mistake is one line naming the file, the line and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.ingest.sources import SourcesError, load_sources

YAML = """\
defaults:
  interval: 120
sources:
  - name: sec-press
    kind: rss
    url: https://www.sec.gov/news/pressreleases.rss
  - name: wire-api
    kind: json
    url: https://api.example.com/v2/news
    headers: {Authorization: "Bearer ${WIRE_API_TOKEN}"}
    items: data.articles
    fields: {id: uuid, title: headline, body: summary, url: link, published_at: published}
  - name: portal
    kind: sitemap
    url: https://portal.example.cn/news-sitemap.xml
    interval: 600
    timezone: Asia/Shanghai
  - name: ir
    kind: pages
    urls: [https://ir.example.com/press/1, https://ir.example.com/press/2]
"""


def write(tmp_path: Path, text: str, name: str = "sources.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_yaml_file_gives_every_source_with_the_defaults_filled_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WIRE_API_TOKEN", "t0ken")
    sources = load_sources(write(tmp_path, YAML))
    assert [s.name for s in sources] == ["sec-press", "wire-api", "portal", "ir"]
    assert [s.interval for s in sources] == [120, 120, 600, 120]
    assert sources[1].resolved_headers() == {"Authorization": "Bearer t0ken"}
    assert sources[1].headers == {"Authorization": "Bearer ${WIRE_API_TOKEN}"}  # the secret is not kept as read
    assert [s.reads_pages for s in sources] == [False, False, True, True]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("    url: https://www.sec.gov/news/pressreleases.rss", "    url: ftp://sec.gov/x"), "6: sources[0].url:"),
        (("    kind: sitemap", "    kind: atom-ish"), "14: sources[2].kind:"),
        (("    timezone: Asia/Shanghai", "    timezone: Mars/Olympus"), "17: sources[2].timezone: unknown time zone"),
        (("    interval: 600", "    interval: 0"), "16: sources[2].interval:"),
        (("    items: data.articles", "    item: data.articles"), "11: sources[1].item: Extra inputs"),
        (("  - name: ir", "  - name: portal"), "18: sources[3].name: 'portal' names two sources"),
        (("    urls: [https://ir.example.com/press/1, https://ir.example.com/press/2]", "    url: https://x.example/"),
         "18: sources[3]: a pages source lists its pages in urls"),
        (("    headers: {Authorization: \"Bearer ${WIRE_API_TOKEN}\"}", "    headers: {A: \"${NOT_SET_ANYWHERE}\"}"),
         "10: sources[1].headers: header A needs the environment variable NOT_SET_ANYWHERE"),
        (("  - name: sec-press", "  - name: sec-press\n   bad: [indent"), ": not YAML"),
    ],
)  # fmt: skip
def test_a_mistake_names_the_file_the_line_and_the_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: tuple[str, str], expected: str
) -> None:
    monkeypatch.setenv("WIRE_API_TOKEN", "t0ken")
    path = write(tmp_path, YAML.replace(*change))
    with pytest.raises(SourcesError) as caught:
        load_sources(path)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{path}:"), message
    assert expected in message, message


def test_a_toml_file_names_the_line_of_the_bad_field(tmp_path: Path) -> None:
    text = """\
[defaults]
interval = 60

[[sources]]
name = "wire"
kind = "rss"
url = "https://wire.example/rss"

[[sources]]
name = "exchange"
kind = "atom"
url = "https://exchange.example/notices.atom"
lang = "not a language"
"""
    good = load_sources(write(tmp_path, text.replace('lang = "not a language"\n', ""), "ok.toml"))
    assert [(s.name, s.kind, s.interval) for s in good] == [("wire", "rss", 60), ("exchange", "atom", 60)]
    path = write(tmp_path, text, "sources.toml")
    with pytest.raises(SourcesError, match=rf"^{path}:13: sources\[1\]\.lang: "):
        load_sources(path)
    broken = write(tmp_path, text + "[[sources]\n", "broken.toml")
    with pytest.raises(SourcesError, match=rf"^{broken}:14: not TOML"):
        load_sources(broken)


def test_an_empty_or_missing_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(SourcesError, match="cannot read the sources file"):
        load_sources(tmp_path / "nothing.yaml")
    with pytest.raises(SourcesError, match=r":1: the file holds a list of sources"):
        load_sources(write(tmp_path, "- just a list\n"))
    with pytest.raises(SourcesError, match=r"sources: List should have at least 1 item"):
        load_sources(write(tmp_path, "sources: []\n"))


def test_the_sample_sources_file_is_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WIRE_API_TOKEN", "x")
    sample = Path(__file__).resolve().parents[4] / "deploy" / "ingest" / "sources.example.yaml"
    sources = load_sources(sample)
    assert {s.kind for s in sources} == {"rss", "json", "sitemap", "pages"}
    monkeypatch.delenv("WIRE_API_TOKEN")
    with pytest.raises(SourcesError, match="needs the environment variable WIRE_API_TOKEN"):
        load_sources(sample)
