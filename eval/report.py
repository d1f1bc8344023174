"""Readable reports of an evaluation: Markdown and a self-contained HTML page with plots."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from pathlib import Path

COLUMNS = (
    ("accuracy", "answer accuracy"),
    ("refusal_accuracy", "refusal accuracy"),
    ("overall_accuracy", "overall"),
    ("recall@1", "recall@1"),
    ("recall@5", "recall@5"),
    ("citation_precision", "citation precision"),
    ("badge_precision", "badge precision"),
    ("unanswerable_withheld", "unanswerable withheld"),
    ("critique_catch_rate", "critique catch"),
    ("critique_false_alarm_rate", "critique false alarm"),
    ("reworded_false_alarm_rate", "false alarm on reworded"),
    ("first_token_p50", "first token p50 s"),
    ("first_token_p95", "first token p95 s"),
    ("total_p50", "total p50 s"),
    ("total_p95", "total p95 s"),
    ("tokens_per_second", "tokens/s"),
)


def _fmt(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.3f}" if value < 10 else f"{value:.1f}"
    return str(value)


def table_rows(summary: dict, names: Sequence[str]) -> list[list[str]]:
    """Header plus one row per pipeline."""
    rows = [["pipeline", *[label for _, label in COLUMNS]]]
    for name in names:
        overall = summary["pipelines"][name]["overall"]
        rows.append([name, *[_fmt(overall.get(key)) for key, _ in COLUMNS]])
    return rows


DEFINITIONS = (
    "Badge precision: of the answers shown with a supported or partially-supported badge (refusals "
    "excluded), the share that are right (an answerable row with every keyword, or a false-premise row "
    "answered with the true fact). Unanswerable withheld: share of unanswerable rows refused, withheld "
    "(paperchat's \"not supported\"), or for a false premise corrected. Correct: share of a shape's rows "
    "scored right, answerable or not."
)


def shape_table(summary: dict, names: Sequence[str]) -> list[str]:
    """Markdown lines: share of rows scored right, by question type (rows) and pipeline (columns)."""
    types = sorted({t for n in names for t in summary["pipelines"][n]["by_type"]})
    if not types:
        return []
    lines = ["", "## Correct by question type", "", "| type | questions | " + " | ".join(names) + " |",
             "|---|---|" + "---|" * len(names)]
    for t in types:
        cells = [summary["pipelines"][n]["by_type"].get(t, {}) for n in names]
        count = next((c["questions"] for c in cells if c), 0)
        lines.append(f"| {t} | {count} | " + " | ".join(_fmt(c.get("overall_accuracy")) for c in cells) + " |")
    return lines


def markdown(summary: dict, names: Sequence[str]) -> str:
    rows = table_rows(summary, names)
    lines = [
        f"# paperchat evaluation: {summary['questions_file']}",
        "",
        f"{summary['questions']} questions; model **{summary['model']}** ({summary['backend']}); "
        f"finished {summary['finished']}; this run took {summary['wall_seconds_this_run']} s.",
        "",
        "| " + " | ".join(rows[0]) + " |",
        "|" + "---|" * len(rows[0]),
    ]
    lines += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    lines += shape_table(summary, names)
    for name in names:
        by_type = summary["pipelines"][name]["by_type"]
        if not by_type:
            continue
        lines += ["", f"## {name} by question type", "",
                  "| type | questions | correct | answer accuracy | unanswerable withheld | badge precision | recall@5 |",
                  "|---|---|---|---|---|---|---|"]
        for t, m in by_type.items():
            lines.append(
                f"| {t} | {m['questions']} | {_fmt(m['overall_accuracy'])} | {_fmt(m['accuracy'])} | "
                f"{_fmt(m.get('unanswerable_withheld'))} | {_fmt(m.get('badge_precision'))} | {_fmt(m['recall@5'])} |"
            )
    overall = summary["pipelines"].get("paperchat", {}).get("overall", {})
    kinds = overall.get("catch_rate_by_kind")
    if kinds:
        lines += ["", "## Critique on planted errors", "", "| error kind | catch rate |", "|---|---|"]
        lines += [f"| {k} | {_fmt(v)} |" for k, v in kinds.items()]
    alarms = overall.get("false_alarm_rate_by_kind")
    if alarms:
        lines += ["", "## False alarms on reworded correct answers", "",
                  f"{overall.get('reworded_checked')} hand-written correct answers (other words than the abstract, "
                  "and terse ones) were checked against their own papers; a removed claim is a false alarm.", "",
                  "| answer kind | false-alarm rate |", "|---|---|"]
        lines += [f"| {k} | {_fmt(v)} |" for k, v in alarms.items()]
    lines += ["", DEFINITIONS]
    for name, src in (summary.get("derived") or {}).items():
        lines += ["", f"Note: **{name}** was scored from {src}'s own drafts (the same retrieval, prompt and "
                      f"temperature; not drafted again), so its timings are {src}'s without the critique."]
    if summary.get("skipped_rows"):
        lines += ["", "## Skipped rows", ""] + [f"- {p}" for p in summary["skipped_rows"]]
    return "\n".join(lines) + "\n"


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode()


def plots(summary: dict, records: Sequence[dict], names: Sequence[str]) -> dict[str, str]:
    """Base64 PNGs: accuracy by pipeline, latency distribution, per-question heat-map."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    out = {}
    keys = [("accuracy", "answer"), ("refusal_accuracy", "refusal"), ("recall@5", "recall@5"), ("citation_precision", "citation prec.")]
    fig, ax = plt.subplots(figsize=(7, 3.2))
    width = 0.8 / max(1, len(names))
    for i, name in enumerate(names):
        overall = summary["pipelines"][name]["overall"]
        values = [overall.get(k) or 0 for k, _ in keys]
        ax.bar(np.arange(len(keys)) + i * width, values, width, label=name)
    ax.set_xticks(np.arange(len(keys)) + width * (len(names) - 1) / 2, [label for _, label in keys])
    ax.set_ylim(0, 1.05)
    ax.set_title("Accuracy by pipeline")
    ax.legend(loc="lower right", fontsize=8)
    out["accuracy"] = _png(fig)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 3.2))
    data = [[r["timings"].get("total") or 0 for r in records if r["pipeline"] == n and not r.get("error")] or [0] for n in names]
    ax.boxplot(data, showfliers=True)
    ax.set_xticks(range(1, len(names) + 1), names)
    ax.set_ylabel("seconds per answer")
    ax.set_title("Latency distribution (total)")
    out["latency"] = _png(fig)
    plt.close(fig)

    ids = list(dict.fromkeys(r["id"] for r in records))
    grid = np.full((len(ids), len(names)), np.nan)
    for r in records:
        if r["pipeline"] in names:
            grid[ids.index(r["id"]), names.index(r["pipeline"])] = r["scores"]["correct"]
    fig, ax = plt.subplots(figsize=(2 + 1.2 * len(names), max(3, 0.18 * len(ids))))
    ax.imshow(grid, aspect="auto", cmap="RdYlGn", vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks(range(len(names)), names)
    ax.set_yticks(range(len(ids)), ids, fontsize=6)
    ax.set_title("Per-question result (green: correct)")
    out["heatmap"] = _png(fig)
    plt.close(fig)
    return out


def html_report(summary: dict, records: Sequence[dict], names: Sequence[str]) -> str:
    rows = table_rows(summary, names)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows[1:])
    images = plots(summary, records, names)
    figs = "".join(
        f'<figure><img id="plot-{k}" alt="{k} plot" src="data:image/png;base64,{v}"><figcaption>{k}</figcaption></figure>'
        for k, v in images.items()
    )
    shape_lines = shape_table(summary, names)
    shapes = ""
    if shape_lines:
        cells = [[c.strip() for c in line.strip("|").split("|")] for line in shape_lines[3:] if line.startswith("|")]
        head_s = "".join(f"<th>{html.escape(c)}</th>" for c in cells[0])
        body_s = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in cells[2:])
        shapes = f'<h2>Correct by question type</h2><table id="by-type"><thead><tr>{head_s}</tr></thead><tbody>{body_s}</tbody></table>'
    overall = summary["pipelines"].get("paperchat", {}).get("overall", {})
    alarms = overall.get("false_alarm_rate_by_kind") or {}
    if alarms:
        rows_a = "".join(f"<tr><td>{html.escape(k)}</td><td>{_fmt(v)}</td></tr>" for k, v in alarms.items())
        shapes += ('<h2>False alarms on reworded correct answers</h2><table id="reworded"><thead><tr><th>answer kind</th>'
                   f"<th>false-alarm rate</th></tr></thead><tbody>{rows_a}</tbody></table>")
    notes = f"<p>{html.escape(DEFINITIONS)}</p>" + "".join(
        f'<p class="derived">Note: <b>{html.escape(n)}</b> was scored from {html.escape(src)}\'s own drafts '
        f"(not drafted again), so its timings are {html.escape(src)}'s without the critique.</p>"
        for n, src in (summary.get("derived") or {}).items()
    )
    details = "".join(
        "<tr>" + "".join(
            f"<td>{html.escape(str(x))}</td>"
            for x in (r["id"], r["pipeline"], r["question"], r.get("answer", r.get("error", "")), r.get("verdict", ""), r["scores"]["correct"])
        ) + "</tr>"
        for r in records
    )
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>paperchat evaluation</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}}table{{border-collapse:collapse;font-size:13px}}
td,th{{border:1px solid #ccc;padding:4px 6px;vertical-align:top}}th{{background:#f3f3f3}}figure{{display:inline-block;margin:1em}}</style>
</head><body><h1>paperchat evaluation</h1>
<p>{summary['questions']} questions from {html.escape(summary['questions_file'])}; model <b>{html.escape(summary['model'])}</b>
({html.escape(summary['backend'])}); finished {summary['finished']}.</p>
<table id="summary"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>
{notes}{shapes}
{figs}
<h2>Answers</h2><table id="answers"><thead><tr><th>id</th><th>pipeline</th><th>question</th><th>answer</th><th>verdict</th><th>correct</th></tr></thead>
<tbody>{details}</tbody></table></body></html>"""


def write_reports(out: Path, summary: dict, records: Sequence[dict], names: Sequence[str]) -> None:
    out = Path(out)
    (out / "report.md").write_text(markdown(summary, names), encoding="utf-8")
    (out / "report.html").write_text(html_report(summary, records, names), encoding="utf-8")
