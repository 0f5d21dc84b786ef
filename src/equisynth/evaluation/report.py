"""Tables and files of an experiment report: ``results.csv``, ``summary.md``, ``report.html``.

The tables are built once (:func:`report_tables`) and rendered twice: as Markdown for
``summary.md`` (paste into a paper or an issue) and as a self-contained HTML page with
the figures embedded as ``data:`` URIs (no external file, script or network access).
"""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from equisynth.evaluation import stats
from equisynth.fairness.metrics import FAIRNESS_METRICS, GROUP_RATE_METRICS, OVERALL_METRICS

__all__ = [
    "ReportTables",
    "report_tables",
    "to_markdown",
    "write_report_html",
    "write_results_csv",
    "write_summary_md",
]

PERFORMANCE = ("accuracy", "f1", "auroc", "auprc", "balanced_accuracy")
FAIRNESS = FAIRNESS_METRICS
GROUP_COLUMNS = ("n", *GROUP_RATE_METRICS)
#: Metrics with a plain-language sentence in the findings.
HEADLINE = (
    "accuracy",
    "f1",
    "auroc",
    "worst_group_tpr",
    "disparate_impact",
    "equalized_odds_difference",
)
QUALITY_FIDELITY = (
    "n_real",
    "n_synth",
    "mean_column_distance",
    "mean_assoc_diff",
    "c2st_auc",
    "knn_precision",
    "knn_recall",
)
QUALITY_PRIVACY = (
    "dcr_ratio",
    "share_synth_closer_than_holdout_p05",
    "exact_copy_rate",
    "nndr_synth_median",
    "nndr_holdout_median",
    "mia_auc",
)


@dataclass
class ReportTables:
    """The report's tables (cells already formatted as text) and plain-language findings."""

    performance: pd.DataFrame
    fairness: pd.DataFrame
    groups: pd.DataFrame
    differences: pd.DataFrame
    findings: list[str] = field(default_factory=list)
    quality: list[tuple[str, pd.DataFrame]] = field(default_factory=list)
    reference: str = ""
    n_seeds: int = 0


def write_results_csv(results: pd.DataFrame, path: str | Path) -> Path:
    """The tidy table ``seed, arm, metric, group, value`` with full float precision."""
    path = Path(path)
    results[["seed", "arm", "metric", "group", "value"]].to_csv(path, index=False)
    return path


# ---------------------------------------------------------------------------- cells
def _cell(row: pd.Series | None, *, ci: bool, digits: int = 3) -> str:
    if row is None or row["n"] == 0:
        return "n/a"
    text = f"{row['mean']:.{digits}f}"
    if row["n"] > 1:
        text += f" ± {row['sd']:.{digits}f}"
        if ci:
            text += f" [{row['ci_low']:.{digits}f}, {row['ci_high']:.{digits}f}]"
    if row["n_missing"]:
        text += f" (n/a in {int(row['n_missing'])} seed(s))"
    return text


def _wide(summary: pd.DataFrame, metrics: Sequence[str], *, ci: bool) -> pd.DataFrame:
    overall = summary[summary["group"] == "all"].set_index(["arm", "metric"])
    arms = list(dict.fromkeys(summary["arm"]))
    present = [m for m in metrics if m in set(overall.index.get_level_values("metric"))]
    rows = []
    for arm in arms:
        rec = {"arm": arm}
        for m in present:
            rec[m] = _cell(overall.loc[(arm, m)] if (arm, m) in overall.index else None, ci=ci)
        rows.append(rec)
    return pd.DataFrame(rows, columns=["arm", *present])


def _group_table(summary: pd.DataFrame) -> pd.DataFrame:
    part = summary[summary["group"] != "all"]
    part = part[part["metric"].isin(GROUP_COLUMNS)].set_index(["arm", "group", "metric"])
    arms = list(dict.fromkeys(summary["arm"]))
    groups = sorted(set(part.index.get_level_values("group")))
    rows = []
    for arm in arms:
        for group in groups:
            rec = {"arm": arm, "group": group}
            for m in GROUP_COLUMNS:
                key = (arm, group, m)
                if key not in part.index:
                    continue
                row = part.loc[key]
                if m == "n":
                    rec[m] = f"{row['mean']:.0f}"
                elif row["n"] == 0:
                    rec[m] = "too small"
                else:
                    rec[m] = _cell(row, ci=False)
            rows.append(rec)
    return pd.DataFrame(rows)


def _diff_table(diffs: pd.DataFrame) -> pd.DataFrame:
    out = diffs.copy()
    out["difference"] = [
        f"{r.mean_diff:+.3f} [{r.ci_low:+.3f}, {r.ci_high:+.3f}]" if r.n > 1 else "n/a"
        for r in out.itertuples()
    ]
    for col in ("p_value", "p_wilcoxon", "p_holm"):
        out[col] = [f"{v:.3g}" if np.isfinite(v) else "n/a" for v in out[col]]
    return out[["arm", "metric", "n", "difference", "p_value", "p_wilcoxon", "p_holm", "verdict"]]


def _quality_tables(quality: pd.DataFrame | None) -> list[tuple[str, pd.DataFrame]]:
    if quality is None or quality.empty:
        return []
    level = quality[quality["column"].fillna("") == ""]
    out = []
    for section, wanted, index in (
        ("fidelity", QUALITY_FIDELITY, ["arm", "stratum"]),
        ("privacy", QUALITY_PRIVACY, ["arm"]),
    ):
        sec = level[level["section"] == section]
        if sec.empty:
            continue
        wide = sec.pivot_table(
            index=index, columns="metric", values="value", aggfunc="first", sort=False
        )
        cols = [m for m in wanted if m in wide.columns]
        wide = wide[cols].reset_index()
        for c in cols:
            wide[c] = [
                "n/a" if not np.isfinite(v) else (f"{v:.0f}" if c.startswith("n_") else f"{v:.3f}")
                for v in wide[c].astype(float)
            ]
        out.append((section, wide.fillna("n/a")))
    return out


def report_tables(
    results: pd.DataFrame,
    *,
    reference: str | None = None,
    quality: pd.DataFrame | None = None,
    confidence: float = 0.95,
) -> ReportTables:
    """Summaries over seeds, paired differences against ``reference`` and the findings.

    Parameters
    ----------
    results : DataFrame
        Tidy ``seed, arm, metric, group, value``.
    reference : str, optional
        The arm the others are compared with; default the first arm.
    quality : DataFrame, optional
        Tidy quality table with columns ``arm, section, metric, stratum, column, value``.
    """
    summary = stats.summarize(results, confidence=confidence)
    arms = list(dict.fromkeys(results["arm"]))
    reference = reference if reference in arms else arms[0]
    headline = [m for m in (*PERFORMANCE, *FAIRNESS) if m in set(results["metric"])]
    diffs = stats.paired_differences(
        results, reference=reference, metrics=headline, confidence=confidence
    )
    findings = [
        stats.describe_difference(r, reference=reference)
        for _, r in diffs.iterrows()
        if r["metric"] in HEADLINE
    ]
    return ReportTables(
        performance=_wide(summary, [m for m in PERFORMANCE if m in OVERALL_METRICS], ci=True),
        fairness=_wide(summary, FAIRNESS, ci=True),
        groups=_group_table(summary),
        differences=_diff_table(diffs),
        findings=findings,
        quality=_quality_tables(quality),
        reference=reference,
        n_seeds=int(results["seed"].nunique()),
    )


# ---------------------------------------------------------------------------- markdown
def to_markdown(df: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table (no dependency on ``tabulate``)."""

    def esc(v) -> str:
        return str(v).replace("|", "\\|")

    lines = ["| " + " | ".join(esc(c) for c in df.columns) + " |", "|" + "---|" * df.shape[1]]
    lines += ["| " + " | ".join(esc(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


_LEGEND = (
    "Cells: mean ± SD over seeds [95% t-interval of the mean]. AUROC and AUPRC come from "
    "predicted probabilities (the MCRAGE paper's AUROC came from hard labels, which equals "
    "balanced accuracy). Disparate impact = min/max group selection rate (1 = parity); "
    "worst-group TPR = minimum TPR over groups; equalized-odds and demographic-parity "
    "differences = largest gap across groups (0 = parity)."
)


def _markdown(tables: ReportTables, *, title: str, notes: str) -> str:
    t = tables
    parts = [f"# {title}", notes.strip(), _LEGEND, "## Performance", to_markdown(t.performance)]
    parts += ["## Fairness", to_markdown(t.fairness)]
    parts += [
        f"## Paired differences against `{t.reference}`",
        "Seed-by-seed difference arm minus reference, mean [95% CI]; p: paired t-test, "
        "Wilcoxon signed-rank, and Holm-adjusted t-test over arms. A difference is called "
        "*within noise* unless its interval excludes 0 and p < 0.05.",
        to_markdown(t.differences),
        "\n".join(f"- {f}" for f in t.findings),
    ]
    parts += [
        "## Per group",
        "Mean ± SD over seeds on the test set; *too small* = fewer rows in the rate's "
        "denominator than `min_group_size` in every seed.",
        to_markdown(t.groups),
    ]
    if t.quality:
        parts += ["## Synthetic data quality (first seed)", _QUALITY_NOTE]
        for name, frame in t.quality:
            parts += [f"### {name.capitalize()}", to_markdown(frame)]
    return "\n\n".join(p for p in parts if p) + "\n"


_QUALITY_NOTE = (
    "Synthetic rows of each arm compared with real rows that no arm trained on (the test "
    "set; in the MCRAGE protocol also the female training rows left out of the imbalanced "
    "set). Read the per-stratum rows: the `all` row compares mixtures whose stratum shares "
    "differ. C2ST AUC 0.5 = a classifier cannot tell synthetic from real rows; column "
    "distance 0 = identical marginals; k-NN precision/recall 1 = full coverage. Privacy: "
    "distances to the closest *training* row; DCR ratio about 1 = synthetic rows are no "
    "closer to training patients than fresh patients are; exact-copy rate 0 and MIA AUC 0.5 "
    "= no copies, no membership leak."
)


def write_summary_md(
    results: pd.DataFrame,
    path: str | Path,
    *,
    title: str = "equisynth experiment",
    notes: str = "",
    reference: str | None = None,
    quality: pd.DataFrame | None = None,
    tables: ReportTables | None = None,
) -> Path:
    """Write ``summary.md``: paper-style tables, paired differences, per-group table, quality."""
    tables = tables or report_tables(results, reference=reference, quality=quality)
    path = Path(path)
    path.write_text(_markdown(tables, title=title, notes=notes), encoding="utf-8")
    return path


# ---------------------------------------------------------------------------- html
_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1200px;
color:#222;padding:0 1em}
table{border-collapse:collapse;margin:1em 0;font-size:0.85em}
th,td{border:1px solid #ccc;padding:0.3em 0.6em;text-align:left;vertical-align:top}
th{background:#f2f2f2}
figure{margin:1.5em 0}
img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:0.9em;color:#555}
.note{font-size:0.9em;color:#444}
"""


def _html_table(df: pd.DataFrame) -> str:
    return df.to_html(index=False, escape=True, border=0, na_rep="n/a")


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def write_report_html(
    results: pd.DataFrame,
    figures: Mapping[str, str | Path],
    path: str | Path,
    *,
    title: str = "equisynth experiment",
    notes: str = "",
    reference: str | None = None,
    quality: pd.DataFrame | None = None,
    tables: ReportTables | None = None,
) -> Path:
    """Write a self-contained ``report.html``: the tables and every figure as a data URI.

    Parameters
    ----------
    figures : mapping caption -> PNG path
        Embedded in order; the PNG files are read, not linked.
    """
    t = tables or report_tables(results, reference=reference, quality=quality)
    e = html.escape
    body = [f"<h1>{e(title)}</h1>"]
    body += [f"<p>{e(line)}</p>" for line in notes.strip().splitlines() if line.strip()]
    body += [f'<p class="note">{e(_LEGEND)}</p>']
    body += ["<h2>Performance</h2>", _html_table(t.performance)]
    body += ["<h2>Fairness</h2>", _html_table(t.fairness)]
    body += [
        f"<h2>Paired differences against {e(t.reference)}</h2>",
        '<p class="note">Seed-by-seed difference arm minus reference, mean [95% CI]; p: paired '
        "t-test, Wilcoxon signed-rank, Holm-adjusted t-test over arms. <em>Within noise</em> "
        "unless the interval excludes 0 and p &lt; 0.05.</p>",
        _html_table(t.differences),
        "<ul>" + "".join(f"<li>{e(f)}</li>" for f in t.findings) + "</ul>",
    ]
    body += [
        "<h2>Per group</h2>",
        '<p class="note">Mean ± SD over seeds on the test set; <em>too small</em> = fewer rows '
        "in the rate's denominator than the minimum group size in every seed.</p>",
        _html_table(t.groups),
    ]
    if t.quality:
        body += [
            "<h2>Synthetic data quality (first seed)</h2>",
            f'<p class="note">{e(_QUALITY_NOTE)}</p>',
        ]
        for name, frame in t.quality:
            body += [f"<h3>{e(name.capitalize())}</h3>", _html_table(frame)]
    if figures:
        body.append("<h2>Figures</h2>")
        for caption, fig_path in figures.items():
            body.append(
                f'<figure><img src="{_data_uri(Path(fig_path))}" alt="{e(caption)}">'
                f"<figcaption>{e(caption)}</figcaption></figure>"
            )
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{e(title)}</title><style>{_CSS}</style></head>\n<body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )
    path = Path(path)
    path.write_text(page, encoding="utf-8")
    return path
