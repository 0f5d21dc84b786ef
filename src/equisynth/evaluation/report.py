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
#: Quality metrics of longitudinal EHR (``evaluation.quality.longitudinal``; FairSynth).
LONGITUDINAL_FIDELITY = (
    "n_patients_real",
    "n_patients_synth",
    "positive_share_real",
    "positive_share_synth",
    "code_freq_pearson",
    "code_freq_max_abs_diff",
    "pair_freq_pearson",
    "visits_per_patient_ks",
    "codes_per_visit_ks",
    "synth_unknown_code_share",
)
LONGITUDINAL_PRIVACY = (
    "patient_dcr_ratio",
    "patient_share_synth_closer_than_holdout_p05",
    "patient_exact_copy_rate",
    "patient_exact_copy_rate_holdout",
    "patient_mia_auc",
)
#: Separator of a grid setting in an arm name (``real_fairsynth@n_real=200``).
SETTING_SEP = "@"
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
    quality_note: str = ""


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
    by_setting = out["reference"].nunique() > 1 if "reference" in out else False
    out["difference"] = [
        f"{r.mean_diff:+.3f} [{r.ci_low:+.3f}, {r.ci_high:+.3f}]" if r.n > 1 else "n/a"
        for r in out.itertuples()
    ]
    for col in ("p_value", "p_wilcoxon", "p_holm"):
        out[col] = [f"{v:.3g}" if np.isfinite(v) else "n/a" for v in out[col]]
    columns = ["arm", "metric", "n", "difference", "p_value", "p_wilcoxon", "p_holm", "verdict"]
    if by_setting:
        columns.insert(1, "reference")
    return out[columns]


def _quality_tables(quality: pd.DataFrame | None) -> list[tuple[str, pd.DataFrame]]:
    if quality is None or quality.empty:
        return []
    level = quality[quality["column"].fillna("") == ""]
    out = []
    for section, wanted, index in (
        ("fidelity", (*QUALITY_FIDELITY, *LONGITUDINAL_FIDELITY), ["arm", "stratum"]),
        ("privacy", (*QUALITY_PRIVACY, *LONGITUDINAL_PRIVACY), ["arm"]),
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


def _setting(arm: str) -> str | None:
    return arm.split(SETTING_SEP, 1)[1] if SETTING_SEP in arm else None


def _differences(
    results: pd.DataFrame, reference: str, metrics: Sequence[str], confidence: float
) -> pd.DataFrame:
    """Paired differences against ``reference``; with grid settings (``arm@setting``), each
    setting's arms against ``reference@setting`` where it exists (else ``reference``)."""
    arms = list(dict.fromkeys(results["arm"]))
    settings = list(dict.fromkeys(_setting(a) for a in arms))
    if settings == [None]:
        out = stats.paired_differences(
            results, reference=reference, metrics=metrics, confidence=confidence
        )
        out.insert(1, "reference", reference)
        return out
    base = reference.split(SETTING_SEP, 1)[0]
    frames = []
    for setting in settings:
        own = [a for a in arms if _setting(a) == setting]
        ref = base if setting is None else f"{base}{SETTING_SEP}{setting}"
        if ref not in arms:
            ref = base if base in arms else arms[0]
        part = results[results["arm"].isin([*own, ref])]
        if part["arm"].nunique() < 2:
            continue
        diff = stats.paired_differences(part, reference=ref, metrics=metrics, confidence=confidence)
        diff.insert(1, "reference", ref)
        frames.append(diff)
    return pd.concat(frames, ignore_index=True)


def report_tables(
    results: pd.DataFrame,
    *,
    reference: str | None = None,
    quality: pd.DataFrame | None = None,
    confidence: float = 0.95,
    quality_note: str | None = None,
) -> ReportTables:
    """Summaries over seeds, paired differences against ``reference`` and the findings.

    Parameters
    ----------
    results : DataFrame
        Tidy ``seed, arm, metric, group, value``. Arms of a grid carry their setting after
        ``@`` (``real_fairsynth@n_real=200``): they are compared with ``reference@<setting>``
        when that arm exists.
    reference : str, optional
        The arm the others are compared with; default the first arm.
    quality : DataFrame, optional
        Tidy quality table with columns ``arm, section, metric, stratum, column, value``.
    quality_note : str, optional
        How to read the quality section (default: the tabular note).
    """
    summary = stats.summarize(results, confidence=confidence)
    arms = list(dict.fromkeys(results["arm"]))
    if reference not in arms:
        base = [a for a in arms if reference and a.split(SETTING_SEP, 1)[0] == reference]
        reference = reference if base else arms[0]
    headline = [m for m in (*PERFORMANCE, *FAIRNESS) if m in set(results["metric"])]
    diffs = _differences(results, reference, headline, confidence)
    findings = [
        stats.describe_difference(r, reference=r["reference"])
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
        quality_note=quality_note or _QUALITY_NOTE,
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
        parts += ["## Synthetic data quality (first seed)", t.quality_note or _QUALITY_NOTE]
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


LONGITUDINAL_QUALITY_NOTE = (
    "Added patients of each arm (generated, or replicated by oversampling) compared with the "
    "arm's real training patients; privacy metrics use multi-hot patient vectors (codes ever "
    "recorded) with the real test patients as the held-out reference. Code / pair frequency "
    "Pearson 1 and KS 0 = the same visit structure as real patients; positive share = share of "
    "label 1 (what the fairness term moves, per group). DCR ratio about 1 = added patients are "
    "no closer to training patients than fresh real patients; exact-copy rate 1 for "
    "oversampling is expected (replicas), and compare it with the held-out rate (real patients "
    "with the same code set); MIA AUC 0.5 = no membership leak."
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
            f'<p class="note">{e(t.quality_note or _QUALITY_NOTE)}</p>',
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
