"""A model comparison as a terminal table and as a self-contained HTML page (every field escaped)."""

from __future__ import annotations

from html import escape
from typing import Any


def format_comparison(report: dict[str, Any]) -> str:
    lines = [
        f"{report['old_version']} -> {report['new_version']} over {report['documents']} documents",
        "",
        "agreement: " + "  ".join(f"{head} {rate:.1%}" for head, rate in report["agreement"].items()),
    ]
    for head, scores in report.get("accuracy", {}).items():
        lines.append(f"accuracy {head} ({scores['labeled']} labeled): old {scores['old']:.4f}  new {scores['new']:.4f}")
    lines += ["", "sentiment, old (rows) vs new (columns):"]
    confusion = report["confusion"]["sentiment"]
    labels = list(confusion)
    lines.append(f"{'':>10} " + " ".join(f"{label:>9}" for label in labels))
    for row in labels:
        lines.append(f"{row:>10} " + " ".join(f"{confusion[row][col]:>9}" for col in labels))
    lines += ["", f"{'topic':<28} {'docs old':>8} {'docs new':>8} {'neg old':>8} {'neg new':>8} {'change':>8}"]
    for topic, row in report["negative_share"].items():
        lines.append(
            f"{topic[:28]:<28} {row['old_documents']:>8} {row['new_documents']:>8} "
            f"{row['old_negative_share']:>8.1%} {row['new_negative_share']:>8.1%} {row['change']:>+8.1%}"
        )
    if report["flips"]:
        lines += ["", "largest sentiment flips:"]
        for flip in report["flips"]:
            text = " ".join(flip["text"].split())[:70]
            lines.append(f"  {flip['change']:+.2f} {flip['old']:>8} -> {flip['new']:<8} {flip['id']}: {text}")
    return "\n".join(lines)


def comparison_html(report: dict[str, Any]) -> str:
    def cell(value: Any) -> str:
        return f"<td>{escape(str(value))}</td>"

    def table(header: list[str], rows: list[list[Any]]) -> str:
        head = "".join(f"<th>{escape(h)}</th>" for h in header)
        body = "".join("<tr>" + "".join(cell(v) for v in row) + "</tr>" for row in rows)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    sections = [
        f"<h1>{escape(str(report['old_version']))} &rarr; {escape(str(report['new_version']))}</h1>",
        f"<p>{report['documents']} documents</p>",
        "<h2>Agreement</h2>",
        table(["head", "agreement"], [[h, f"{r:.1%}"] for h, r in report["agreement"].items()]),
    ]
    if report.get("accuracy"):
        rows = [[h, s["labeled"], f"{s['old']:.4f}", f"{s['new']:.4f}"] for h, s in report["accuracy"].items()]
        sections += ["<h2>Accuracy</h2>", table(["head", "labeled", "old", "new"], rows)]
    for head, confusion in report["confusion"].items():
        labels = list(confusion)
        rows = [[row, *(confusion[row][col] for col in labels)] for row in labels]
        sections += [f"<h2>{escape(head)}: old (rows) vs new (columns)</h2>", table(["", *labels], rows)]
    share_rows = [
        [t, r["old_documents"], r["new_documents"], f"{r['old_negative_share']:.1%}", f"{r['new_negative_share']:.1%}"]
        for t, r in report["negative_share"].items()
    ]
    sections += [
        "<h2>Negative share per topic</h2>",
        table(["topic", "docs old", "docs new", "negative old", "negative new"], share_rows),
        "<h2>Largest sentiment flips</h2>",
        table(
            ["change", "old", "new", "id", "text"],
            [[f"{f['change']:+.2f}", f["old"], f["new"], f["id"], f["text"]] for f in report["flips"]],
        ),
    ]
    style = (
        "body{font-family:system-ui,sans-serif;margin:2em;color:#1d2330}"
        "table{border-collapse:collapse;margin-bottom:1.5em}"
        "td,th{border:1px solid #ccd;padding:4px 8px;text-align:left}"
        "th{background:#eef1f6}"
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>finmon model comparison</title>"
        f"<style>{style}</style></head><body>{''.join(sections)}</body></html>\n"
    )
