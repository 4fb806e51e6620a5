"""Report of one eval run (report.json, report.md, PNG plots) and the side-by-side table of several runs.

report.json holds every figure; report.md the tables a paper needs; the plots are the
confusion matrix, per-class recall, per-AU F1 and the reliability diagram.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ..facs import DETECTED_AUS
from .metrics import au_metrics, bootstrap_ci, calibration, emotion_metrics, reasoning_metrics

# The figures `eval compare` lines up, in order: (label, path into report.json).
SUMMARY = [
    ("samples", ("n",)),
    ("errors", ("errors",)),
    ("rows left out", ("dropped", "count")),
    ("accuracy", ("emotion", "accuracy")),
    ("macro-F1", ("emotion", "macro_f1")),
    ("UAR", ("emotion", "uar")),
    ("WAR", ("emotion", "war")),
    ("AU F1 (cited)", ("au_cited", "mean_f1")),
    ("AU F1 (detector)", ("au_detector", "mean_f1")),
    ("format valid", ("reasoning", "format_valid")),
    ("consistency", ("reasoning", "consistency")),
    ("faithful", ("reasoning", "faithful")),
    ("ROUGE-L", ("reasoning", "rouge_l")),
    ("ECE", ("calibration", "ece")),
    ("judge", ("judge", "mean")),
    ("ms / sample", ("ms_per_sample",)),
]


GENERIC_READERS = ("csv", "folder", "fea20k")  # benchmarks that read any data: their name alone says too little


def dataset_label(benchmark: str | None, data: str | None) -> str:
    """What a report's data is called in titles and tables: the benchmark, and for a generic reader also the
    data folder it read ('csv: fer2013-dev')."""
    name = benchmark or "evaluation"
    return f"{name}: {Path(str(data)).name}" if name in GENERIC_READERS and data else name


def _title(bench, data: str | None) -> str | None:
    """The benchmark's own title; a generic reader's with the data folder it read ('CSV (fer2013-dev)')."""
    if bench is None:
        return None
    return f"{bench.title} ({Path(str(data)).name})" if bench.name in GENERIC_READERS and data else bench.title


def build_report(rows: Sequence[dict[str, Any]], labels, protocol, bench=None, config=None,
                 dropped: Sequence[str] = ()) -> dict[str, Any]:  # fmt: skip
    report: dict[str, Any] = {
        "benchmark": bench.name if bench else None,
        "title": _title(bench, getattr(config, "data", None)),
        "dataset": dataset_label(bench.name if bench else None, getattr(config, "data", None)),
        "run": asdict(config) if config is not None else None,
        "provenance": _provenance(config),
        "n": len(rows),
        "errors": sum(1 for r in rows if r.get("error")),
        "error_examples": [f"{r['id']}: {r['error']}" for r in rows if r.get("error")][:5],
        "dropped": {"count": len(dropped), "reasons": _reason_counts(dropped), "examples": list(dropped[:5])},
        "labels": labels,
        "au_protocol": protocol,
    }
    timed = [r["ms"] for r in rows if r.get("ms") is not None]
    report["ms_per_sample"] = sum(timed) / len(timed) if timed else None
    with_label = [r for r in rows if r.get("gold_emotion") and labels and r["gold_emotion"] in labels]
    if with_label:
        report["emotion"] = emotion_metrics(
            [r["gold_emotion"] for r in with_label], [r.get("emotion") for r in with_label], labels
        )
        report["calibration"] = calibration(
            [r.get("confidence") for r in with_label], [r.get("emotion") == r["gold_emotion"] for r in with_label]
        )
    with_aus = [r for r in rows if r.get("gold_aus") is not None]
    if protocol:  # AU F1 only over AUs this system can output; the others are listed, not scored as 0
        report["au_not_detected"] = [c for c in protocol if c not in DETECTED_AUS]
        protocol = [c for c in protocol if c in DETECTED_AUS]
        report["au_protocol_scored"] = protocol
    if with_aus and protocol:
        gold = [r["gold_aus"] for r in with_aus]
        report["au_cited"] = au_metrics(gold, [r.get("cited_aus") or [] for r in with_aus], protocol)
        report["au_detector"] = au_metrics(gold, [r.get("detector_aus") or [] for r in with_aus], protocol)
    report["ci95"] = bootstrap_ci(
        [r["gold_emotion"] for r in with_label], [r.get("emotion") for r in with_label], labels or [],
        [r["gold_aus"] for r in with_aus] if with_aus and protocol else None,
        [r.get("cited_aus") or [] for r in with_aus] if with_aus and protocol else None, protocol or (),
    )  # fmt: skip
    answered = [r for r in rows if not r.get("error")]
    if answered:
        report["reasoning"] = reasoning_metrics(
            [r["text"] for r in answered],
            [r.get("reference") for r in answered],
            [_measured(r) if r.get("aus_measured") else None for r in answered],
            [r.get("expression_prior") for r in answered],
        )
    judged = [r["judge"] for r in rows if r.get("judge") is not None]
    if judged:
        report["judge"] = {"mean": sum(judged) / len(judged), "n": len(judged)}
    return report


def _measured(row: dict[str, Any]) -> list[int] | dict[str, float]:
    """The AUs the detector measured present on a row's face: {code: intensity} (faithfulness checks the text's
    intensities too), or their codes alone in rows written before the intensities were kept."""
    return row["detector_intensities"] if "detector_intensities" in row else row.get("detector_aus") or []


def _provenance(config) -> dict[str, Any] | None:
    if config is None:
        return None
    from .runner import provenance

    return provenance(config)


def _reason_counts(dropped: Sequence[str]) -> dict[str, int]:
    """'where: reason' lines -> {reason: count}."""
    counts: dict[str, int] = {}
    for line in dropped:
        reason = line.split(": ", 1)[-1].split(": ")[0]  # "image not found: PATH" counts as "image not found"
        counts[reason] = counts.get(reason, 0) + 1
    return counts


def write_report(rows, out: Path, labels, protocol, bench=None, config=None, dropped: Sequence[str] = ()) -> dict:
    report = build_report(rows, labels, protocol, bench, config, dropped)
    out = Path(out)
    report["plots"] = plot(report, out)
    (out / "report.json").write_text(json.dumps(report, indent=2))
    (out / "report.md").write_text(markdown(report))
    (out / "report.html").write_text(html_report(report, out), encoding="utf-8")
    return report


def html_report(report: dict[str, Any], out: Path) -> str:
    """report.md's content as one self-contained HTML page, the plots embedded (send one file to a reviewer)."""
    import base64
    import html

    title = html.escape(str(report.get("title") or report.get("benchmark") or "evaluation"))
    figures = []
    for name in report.get("plots") or []:
        data = base64.b64encode((Path(out) / name).read_bytes()).decode("ascii")
        figures.append(f'<figure><img alt="{name}" src="data:image/png;base64,{data}">'
                       f"<figcaption>{html.escape(name)}</figcaption></figure>")  # fmt: skip
    style = ("body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
             "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;"
             "text-align:right}th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}"
             "figure{display:inline-block;margin:1em}img{max-width:100%}")  # fmt: skip
    return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
            f"<style>{style}</style></head>\n<body>\n{_markdown_to_html(markdown(report))}\n"
            f"<h2>Figures</h2>\n{''.join(figures)}\n</body></html>\n")  # fmt: skip


def _markdown_to_html(text: str) -> str:
    """The small Markdown report.md is written in (headings, pipe tables, lists, paragraphs) as HTML."""
    import html
    import re

    def inline(s: str) -> str:
        return re.sub(r"`([^`]*)`", r"<code>\1</code>", html.escape(s))

    out: list[str] = []
    table: list[list[str]] = []
    items: list[str] = []

    def flush() -> None:
        if table:
            head, *body = table
            out.append("<table><tr>" + "".join(f"<th>{inline(c)}</th>" for c in head) + "</tr>"
                       + "".join("<tr>" + "".join(f"<td>{inline(c)}</td>" for c in row) + "</tr>" for row in body)
                       + "</table>")  # fmt: skip
            table.clear()
        if items:
            out.append("<ul>" + "".join(f"<li>{inline(i)}</li>" for i in items) + "</ul>")
            items.clear()

    for line in text.splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if not all(set(c) <= {"-", ":"} for c in cells):  # the header separator row
                table.append(cells)
            continue
        if line.startswith("- "):
            items.append(line[2:])
            continue
        flush()
        if line.startswith("## "):
            out.append(f"<h2>{inline(line[3:])}</h2>")
        elif line.startswith("# "):
            out.append(f"<h1>{inline(line[2:])}</h1>")
        elif line.strip():
            out.append(f"<p>{inline(line)}</p>")
    flush()
    return "\n".join(out)


# Summary rows that carry a bootstrap 95% interval (report["ci95"]), by row name.
SUMMARY_CI = {"accuracy": "accuracy", "macro-F1": "macro_f1", "UAR": "uar", "AU F1 (cited)": "au_cited_f1"}


def summary_cell(report: dict[str, Any], name: str, path: tuple[str, ...]) -> Any:
    """A summary value as a table shows it: with its 95% interval where the report has one."""
    value = summary_value(report, path)
    interval = (report.get("ci95") or {}).get(SUMMARY_CI.get(name, ""))
    if isinstance(value, float) and interval:
        return f"{value:.3f} [{interval[0]:.3f}, {interval[1]:.3f}]"
    return value


def summary_value(report: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = report
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 100 else f"{value:.0f}"
    return str(value)


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def markdown(report: dict[str, Any]) -> str:
    run = report.get("run") or {}
    model = (run.get("backend_options") or {}).get("model")
    parts = [
        f"# {report.get('title') or 'evaluation'}: {run.get('backend', '?')}{f' ({model})' if model else ''}",
        "",
        *_provenance_lines(report.get("provenance")),
        _table(
            ["metric", "value"],
            [
                (name, summary_cell(report, name, path))
                for name, path in SUMMARY
                if summary_value(report, path) is not None
            ],
        ),  # fmt: skip
    ]
    emotion = report.get("emotion")
    if emotion:
        labels = report["labels"]
        parts += ["", "## Per class", ""]
        parts.append(_table(["class", "support", "precision", "recall", "F1"],
                            [(c, v["support"], v["precision"], v["recall"], v["f1"])
                             for c, v in emotion["per_class"].items()]))  # fmt: skip
        parts += ["", "## Confusion matrix (rows: gold, columns: predicted)", ""]
        columns = [*labels, "none"]
        parts.append(_table(["gold \\ predicted", *columns],
                            [(g, *[emotion["confusion"][g][c] for c in columns]) for g in labels]))  # fmt: skip
    for key, title in (("au_cited", "AUs cited in the reasoning"), ("au_detector", "AUs from the detector")):
        if report.get(key):
            per_au = report[key]["per_au"]
            parts += ["", f"## Per-AU F1: {title}", ""]
            parts.append(_table(["AU", *per_au], [("F1", *[v["f1"] for v in per_au.values()]),
                                                  ("support", *[v["support"] for v in per_au.values()])]))  # fmt: skip
    if report.get("au_not_detected"):
        codes = ", ".join(f"AU{c}" for c in report["au_not_detected"])
        parts += ["", f"Not detected by this system, so not scored: {codes}."]
    if report.get("error_examples"):
        parts += ["", "## Errors (first 5)", ""] + [f"- {e}" for e in report["error_examples"]]
    return "\n".join(parts) + "\n"


def _provenance_lines(p: dict[str, Any] | None) -> list[str]:
    if not p:
        return []
    commit = f", commit {p['git_commit'][:10]}" if p.get("git_commit") else ""
    adapter = f", adapter {p['adapter']} (sha256 {p['adapter_sha256']})" if p.get("adapter") else ""
    return [f"emoreason {p['emoreason']}{commit}; run {p['date']}; face model {p['face_model']}, AU detector "
            f"{p['au_detector']}{adapter}; seed {p['seed']}.", ""]  # fmt: skip


def plot(report: dict[str, Any], out: Path) -> list[str]:
    """The PNGs the report has data for; returns their file names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    for name, draw in (("confusion.png", _plot_confusion), ("recall.png", _plot_recall),
                       ("au_f1.png", _plot_au_f1), ("reliability.png", _plot_reliability)):  # fmt: skip
        fig = draw(report, plt)
        if fig is None:  # no data for this figure in the report
            continue
        fig.tight_layout()
        fig.savefig(out / name, dpi=110)
        plt.close(fig)
        written.append(name)
    return written


def _plot_title(report: dict[str, Any]) -> str:
    """Which data and which system a figure shows: the benchmark and the backend (and model)."""
    run = report.get("run") or {}
    name = report.get("dataset") or dataset_label(report.get("benchmark"), run.get("data"))
    if not run:
        return name
    model = (run.get("backend_options") or {}).get("model")
    return f"{name}, {run.get('backend', '?')}" + (f" ({Path(str(model)).name})" if model else "")


def _plot_confusion(report: dict[str, Any], plt) -> Any:
    import numpy as np

    emotion = report.get("emotion")
    if not emotion:
        return None
    labels = report["labels"]
    columns = [*labels, "none"]
    counts = np.array([[emotion["confusion"][g][c] for c in columns] for g in labels], dtype=float)
    share = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    fig, axes = plt.subplots(1, 2, figsize=(2 + 1.4 * len(columns), 1 + 0.6 * len(labels)))
    for ax, cells, title in ((axes[0], counts, "counts"), (axes[1], share, "share of each gold row")):
        ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
        ax.set_xticks(range(len(columns)), columns, rotation=45, ha="right")
        ax.set_yticks(range(len(labels)), labels)
        ax.set_xlabel("predicted")
        ax.set_ylabel("gold")
        for i in range(len(labels)):
            for j in range(len(columns)):
                color = "white" if share[i, j] > 0.5 else "black"
                text = f"{int(cells[i, j])}" if cells is counts else f"{cells[i, j]:.0%}"
                ax.text(j, i, text, ha="center", va="center", color=color, fontsize=8)
        ax.set_title(title)
    fig.suptitle(f"{_plot_title(report)}: confusion (accuracy {emotion['accuracy']:.3f})")
    return fig


def _plot_recall(report: dict[str, Any], plt) -> Any:
    emotion = report.get("emotion")
    if not emotion:
        return None
    labels = report["labels"]
    fig, ax = plt.subplots(figsize=(1 + 0.7 * len(labels), 3))
    bars = ax.bar(labels, [emotion["per_class"][c]["recall"] for c in labels], color="tab:blue")
    ax.bar_label(bars, fmt="%.2f", fontsize=8)
    ax.set_ylim(0, 1.1)
    ax.set_ylabel("recall")
    ax.set_title(f"{_plot_title(report)}: per-class recall (UAR {emotion['uar']:.3f})")
    ax.tick_params(axis="x", rotation=45)
    return fig


def _plot_au_f1(report: dict[str, Any], plt) -> Any:
    import numpy as np

    if not report.get("au_cited"):
        return None
    per_cited, per_det = report["au_cited"]["per_au"], report["au_detector"]["per_au"]
    names = list(per_cited)
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(1 + 0.6 * len(names), 3))
    cited = ax.bar(x - 0.2, [per_cited[n]["f1"] for n in names], 0.4, label="cited in reasoning")
    detected = ax.bar(x + 0.2, [per_det[n]["f1"] for n in names], 0.4, label="detector")
    for bars in (cited, detected):
        ax.bar_label(bars, fmt="%.2f", fontsize=6)
    ax.set_xticks(x, names, rotation=45)
    ax.set_ylim(0, 1.1)
    ax.set_ylabel("F1")
    ax.legend()
    ax.set_title(f"{_plot_title(report)}: per-AU F1")
    return fig


def _plot_reliability(report: dict[str, Any], plt) -> Any:
    filled = [b for b in (report.get("calibration") or {}).get("bins") or [] if b["n"]]
    if not filled:
        return None
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    bars = ax.bar([(b["lo"] + b["hi"]) / 2 for b in filled], [b["accuracy"] for b in filled], width=0.1,
                  edgecolor="black", label="accuracy")  # fmt: skip
    ax.bar_label(bars, labels=[f"n={b['n']}" for b in filled], fontsize=7)  # how much each bin rests on
    ax.plot([0, 1], [0, 1], "--", color="gray", label="perfect calibration")
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.1)
    ax.legend(loc="upper left")
    ax.set_title(f"{_plot_title(report)}\nreliability (ECE {report['calibration']['ece']:.3f})", fontsize=9)
    return fig


def compare(run_dirs: Sequence[str | Path]) -> str:
    """One Markdown table: the summary figures of several runs side by side."""
    reports, names = [], []
    for run in run_dirs:
        path = Path(run) / "report.json"
        if not path.exists():
            raise FileNotFoundError(f"{run}: no report.json (run `emoreason eval` there first)")
        report = json.loads(path.read_text())
        reports.append(report)
        options = (report.get("run") or {}).get("backend_options") or {}
        detail = options.get("adapter") or options.get("model")
        names.append(f"{Path(run).name} ({report['run']['backend']}{', ' + str(detail) if detail else ''})")
    benchmarks = {r.get("benchmark") for r in reports}
    rows = []
    for name, path in SUMMARY:
        if any(summary_value(r, path) is not None for r in reports):
            rows.append((name, *[summary_cell(r, name, path) for r in reports]))
    title = f"benchmark: {', '.join(sorted(b or '?' for b in benchmarks))}"
    return title + "\n\n" + _table(["metric", *names], rows) + "\n"


# The columns of the leaderboard (eval/RESULTS.md), taken from SUMMARY: one row per run.
BOARD_COLUMNS = ("accuracy", "macro-F1", "UAR", "AU F1 (cited)", "consistency", "faithful", "ECE", "ms / sample")
LEADERBOARD = [(name, path) for name, path in SUMMARY if name in BOARD_COLUMNS]


def leaderboard(run_dirs: Sequence[str | Path], title: str = "Results", machine: str | None = None) -> str:
    """eval/RESULTS.md: one row per finished run (report.json), grouped by benchmark, best UAR first."""
    rows = []
    for run in run_dirs:
        path = Path(run) / "report.json"
        if not path.exists():
            raise FileNotFoundError(f"{run}: no report.json (run `emoreason eval` there first)")
        report = json.loads(path.read_text(encoding="utf-8"))
        config = report.get("run") or {}
        options = config.get("backend_options") or {}
        system = config.get("backend", "?")
        for key in ("model", "adapter"):
            if options.get(key):
                system += f" {key}={Path(str(options[key])).name}"
        prior = Path(str(config.get("expression_model") or "emoreason")).name
        if options.get("use_prior") is False:
            system, prior = system + " (no prior)", "-"
        split = config.get("split") or "default"
        benchmark = dataset_label(report.get("benchmark") or "?", config.get("data"))
        figures = [summary_value(report, p) for _, p in LEADERBOARD]
        rows.append((benchmark, split, Path(run).name, system, prior, report.get("n"), *figures))
    rows.sort(key=lambda r: (r[0], r[1], -(r[8] if isinstance(r[8], (int, float)) else -1)))
    header = ["benchmark", "split", "run", "backend", "expression prior", "samples", *[n for n, _ in LEADERBOARD]]
    note = "Regenerated by `make results` (`emoreason eval leaderboard RUN...`) from each run's report.json."
    if machine:
        note += f" ms / sample: wall time per sample on {machine}."
    return f"# {title}\n\n{note}\n\n" + _table(header, rows) + "\n"
