"""Write quality reports: a CSV table, PNG plots and a Markdown fragment for experiment reports."""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from equisynth.exceptions import DataError, OutputExistsError
from equisynth.io import temp_dir

__all__ = ["quality_markdown", "write_quality_outputs"]

_KEY_METRICS = (
    "n_real",
    "n_synth",
    "mean_column_distance",
    "mean_assoc_diff",
    "c2st_auc",
    "knn_precision",
    "knn_recall",
    "tstr_auc",
    "trtr_auc",
)


def _combine(report_frames: Mapping[str, pd.DataFrame] | pd.DataFrame) -> pd.DataFrame:
    if isinstance(report_frames, pd.DataFrame):
        report_frames = {"quality": report_frames}
    parts = []
    for section, frame in report_frames.items():
        missing = {"metric", "stratum", "value"} - set(frame.columns)
        if missing:
            raise DataError(
                f"report frame {section!r} lacks column(s) {sorted(missing)}; expected the tidy "
                "output of fidelity_report / privacy_report / longitudinal_report"
            )
        parts.append(frame.assign(section=section))
    if not parts:
        raise DataError("no report frame given")
    out = pd.concat(parts, ignore_index=True)
    if "column" not in out:
        out["column"] = ""
    out["column"] = out["column"].fillna("")
    return out[["section", *[c for c in out.columns if c != "section"]]]


def quality_markdown(table: pd.DataFrame, *, digits: int = 3) -> str:
    """A Markdown fragment: table-level metrics per stratum (and per arm when present)."""
    level = table[table["column"] == ""]
    blocks = []
    keys = ["arm"] if "arm" in level.columns else []
    for section, sec in level.groupby("section", sort=False):
        wide = sec.pivot_table(
            index=[*keys, "stratum"], columns="metric", values="value", aggfunc="mean", sort=False
        )
        order = [m for m in _KEY_METRICS if m in wide.columns]
        wide = wide[order + [m for m in wide.columns if m not in order]]
        wide = wide.round(digits).reset_index()
        header = "| " + " | ".join(map(str, wide.columns)) + " |"
        sep = "|" + "---|" * wide.shape[1]
        lines = ["| " + " | ".join(map(str, r)) + " |" for r in wide.itertuples(index=False)]
        blocks.append(
            f"### Synthetic data quality: {section}\n\n" + "\n".join([header, sep, *lines])
        )
    note = (
        "C2ST AUC 0.5 = a classifier cannot tell synthetic from real rows; KS/TV 0 = identical "
        "marginals; DCR ratio about 1 = synthetic rows are no closer to training patients than "
        "fresh real patients; MIA AUC 0.5 = no membership leak."
    )
    return "\n\n".join([*blocks, note]) + "\n"


def _plots(table: pd.DataFrame, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    cols = table[table["metric"].isin(["ks", "tv"]) & (table["stratum"] == "all")]
    if not cols.empty:
        cols = cols.groupby("column", sort=False)["value"].mean().sort_values()
        fig, ax = plt.subplots(figsize=(6, 0.3 * len(cols) + 1.2))
        ax.barh(cols.index.astype(str), cols.to_numpy())
        ax.set_xlabel("KS (numeric) / total variation (categorical); 0 = identical")
        ax.set_title("Per-column distance, real vs synthetic")
        fig.tight_layout()
        fig.savefig(out / "column_distances.png", dpi=100)
        plt.close(fig)
        paths.append(out / "column_distances.png")
    per = table[table["metric"].isin(["c2st_auc", "knn_precision", "knn_recall"])]
    if not per.empty:
        wide = per.pivot_table(index="stratum", columns="metric", values="value", aggfunc="mean")
        fig, ax = plt.subplots(figsize=(7, 0.4 * len(wide) + 1.5))
        wide.plot.barh(ax=ax)
        ax.axvline(0.5, color="grey", linestyle=":", linewidth=1)
        ax.set_xlim(0, 1)
        ax.set_title("Fidelity per stratum (C2ST: 0.5 best; precision/recall: 1 best)")
        fig.tight_layout()
        fig.savefig(out / "fidelity_by_stratum.png", dpi=100)
        plt.close(fig)
        paths.append(out / "fidelity_by_stratum.png")
    return paths


def write_quality_outputs(
    report_frames: Mapping[str, pd.DataFrame] | pd.DataFrame,
    out_dir: str | Path,
    *,
    overwrite: bool = False,
    plots: bool = True,
) -> dict[str, Path]:
    """Write ``quality.csv``, ``quality.md`` and PNG plots into ``out_dir`` (atomically).

    Parameters
    ----------
    report_frames : mapping of section name -> tidy frame, or one frame
        E.g. ``{"fidelity": fidelity_report(...), "privacy": privacy_report(...)}``. An ``arm``
        column, if present, is kept and splits the Markdown table.
    out_dir : path
        Created; an existing directory is replaced only with ``overwrite=True``.

    Returns
    -------
    dict
        ``{"table": ..., "markdown": ..., <plot name>: ...}`` final paths.
    """
    table = _combine(report_frames)
    out = Path(out_dir)
    if out.exists() and not overwrite:
        raise OutputExistsError(f"output {str(out)!r} exists; pass overwrite=True (--overwrite)")
    if out.exists() and not (
        out.is_dir() and (not any(out.iterdir()) or (out / "quality.csv").is_file())
    ):  # never delete a directory (or file) that is not an earlier quality report
        raise OutputExistsError(
            f"output {str(out)!r} exists and is not an earlier quality report; choose another --out"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_dir(out.parent, f".{out.name}.", "")
    try:
        table.to_csv(tmp / "quality.csv", index=False)
        (tmp / "quality.md").write_text(quality_markdown(table), encoding="utf-8")
        plot_paths = _plots(table, tmp) if plots else []
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    paths = {"table": out / "quality.csv", "markdown": out / "quality.md"}
    paths.update({p.stem: out / p.name for p in plot_paths})
    return paths
