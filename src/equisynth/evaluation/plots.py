"""PNG figures of an experiment (matplotlib, Agg backend).

- :func:`plot_metric_bars`: accuracy and fairness metrics per arm, mean with 95% CI.
- :func:`plot_group_tpr`: true-positive rate per group and arm.
- :func:`plot_umap`: 2-d UMAP projection of each arm's training set (MCRAGE paper, Fig. 2);
  PCA when ``umap-learn`` (the ``plots`` extra) is not installed.
- :func:`plot_strata_densities`: per-feature densities of generated vs real rows, one row
  of panels per stratum (MCRAGE paper, Fig. 3).
- :func:`plot_patient_projection`: longitudinal EHR: PCA of multi-hot patient vectors (codes
  ever recorded), real vs synthetic, one panel per arm.
- :func:`plot_visit_histograms`: longitudinal EHR: visits per patient and codes per visit of
  real training, real held-out and synthetic patients, one row per arm.

Every function writes one PNG and returns its path.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from equisynth._utils import as_numpy_rng

logger = logging.getLogger(__name__)

__all__ = [
    "embed_2d",
    "plot_group_tpr",
    "plot_metric_bars",
    "plot_patient_projection",
    "plot_strata_densities",
    "plot_umap",
    "plot_visit_histograms",
]

DPI = 90


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    fig.savefig(path, dpi=DPI)
    _pyplot().close(fig)
    return path


def _errors(part: pd.DataFrame) -> np.ndarray:
    """Asymmetric error bars (mean - ci_low, ci_high - mean); 0 where undefined."""
    low = (part["mean"] - part["ci_low"]).to_numpy(dtype=float)
    high = (part["ci_high"] - part["mean"]).to_numpy(dtype=float)
    return np.nan_to_num(np.vstack([low, high]))


def plot_metric_bars(summary: pd.DataFrame, metrics: Sequence[str], path: str | Path) -> Path:
    """One panel per metric: a bar per arm (mean over seeds) with its 95% CI.

    Parameters
    ----------
    summary : DataFrame
        Output of :func:`equisynth.evaluation.stats.summarize`.
    metrics : sequence of str
        Overall metrics (group ``all``) to show.
    path : path of the PNG
    """
    plt = _pyplot()
    overall = summary[summary["group"] == "all"]
    metrics = [m for m in metrics if m in set(overall["metric"])] or sorted(set(overall["metric"]))[
        :4
    ]
    arms = list(dict.fromkeys(summary["arm"]))
    ncols = min(len(metrics), 3)
    nrows = int(np.ceil(len(metrics) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.2 * nrows), squeeze=False)
    colors = plt.get_cmap("tab10")(np.arange(len(arms)) % 10)
    for ax, metric in zip(axes.ravel(), metrics, strict=False):
        part = overall[overall["metric"] == metric].set_index("arm").reindex(arms)
        ax.bar(range(len(arms)), part["mean"].to_numpy(dtype=float), color=colors)
        ax.errorbar(
            range(len(arms)),
            part["mean"].to_numpy(dtype=float),
            yerr=_errors(part),
            fmt="none",
            ecolor="black",
            capsize=3,
        )
        ax.set_xticks(range(len(arms)), arms, rotation=35, ha="right", fontsize=8)
        ax.set_title(metric)
        finite = part[["ci_low", "mean", "ci_high"]].to_numpy(dtype=float)
        finite = finite[np.isfinite(finite)]
        if finite.size:
            lo, hi = finite.min(), finite.max()
            pad = max(0.02, 0.15 * (hi - lo))
            ax.set_ylim(max(0.0, lo - pad), hi + pad)
    for ax in axes.ravel()[len(metrics) :]:
        ax.set_visible(False)
    fig.suptitle("Mean over seeds, bars = 95% confidence interval", fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def plot_group_tpr(summary: pd.DataFrame, path: str | Path, *, metric: str = "tpr") -> Path:
    """Grouped bars: ``metric`` (default TPR) per group, one bar per arm, 95% CI."""
    plt = _pyplot()
    part = summary[(summary["metric"] == metric) & (summary["group"] != "all")]
    arms = list(dict.fromkeys(summary["arm"]))
    groups = sorted(set(part["group"]))
    fig, ax = plt.subplots(figsize=(max(5.0, 1.3 * len(groups) * max(1, len(arms)) / 3), 3.6))
    if not groups:
        ax.text(0.5, 0.5, f"no per-group {metric}", ha="center", va="center")
        return _save(fig, path)
    width = 0.8 / max(1, len(arms))
    colors = plt.get_cmap("tab10")(np.arange(len(arms)) % 10)
    x = np.arange(len(groups))
    for i, arm in enumerate(arms):
        a = part[part["arm"] == arm].set_index("group").reindex(groups)
        means = a["mean"].to_numpy(dtype=float)
        ax.bar(x + i * width, np.nan_to_num(means), width, label=arm, color=colors[i])
        ax.errorbar(
            x + i * width,
            np.nan_to_num(means),
            yerr=_errors(a),
            fmt="none",
            ecolor="black",
            capsize=2,
            linewidth=0.8,
        )
        for j in np.flatnonzero(np.isnan(means)):
            ax.text(x[j] + i * width, 0.02, "n/a", rotation=90, ha="center", fontsize=7)
    ax.set_xticks(x + width * (len(arms) - 1) / 2, groups, rotation=20, ha="right", fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel(f"{metric} (mean, 95% CI)")
    # outside the axes: inside, the legend hid the bars of the last groups
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    ax.set_title(f"{metric.upper()} per group and arm (n/a: group too small to score)")
    fig.tight_layout()
    return _save(fig, path)


def embed_2d(X: pd.DataFrame, *, random_state=0) -> tuple[np.ndarray, str]:
    """2-d embedding of ``X`` (UMAP, else PCA) in a robust-scaled, one-hot feature space.

    Returns
    -------
    (ndarray of shape (n, 2), method name)
        ``"UMAP"``, or ``"PCA"`` when umap-learn (the ``plots`` extra) is not installed.
    """
    from equisynth.evaluation.quality._features import FeatureSpace

    Z = FeatureSpace().fit(X).transform(X)
    seed = int(as_numpy_rng(random_state).integers(2**31 - 1))
    try:
        import umap
    except ImportError:
        logger.info("umap-learn not installed (pip install 'equisynth[plots]'): using PCA")
        from sklearn.decomposition import PCA

        return PCA(n_components=2, random_state=seed).fit_transform(Z), "PCA"
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # umap warns about n_jobs with a fixed seed
        reducer = umap.UMAP(
            n_components=2, random_state=seed, n_neighbors=15, min_dist=0.1, n_epochs=200
        )
        return reducer.fit_transform(Z), "UMAP"


def plot_umap(
    arms: Mapping[str, tuple[pd.DataFrame, np.ndarray, np.ndarray]],
    path: str | Path,
    *,
    random_state=0,
    max_rows_per_arm: int = 1000,
) -> Path:
    """One panel per arm: its training set in a shared 2-d UMAP (PCA fallback) embedding.

    Parameters
    ----------
    arms : mapping arm -> (features, is_synthetic, stratum labels)
        Each arm's training rows (same feature columns for all arms).
    path : path of the PNG
    random_state : int
        Seeds the row subsampling and the projection.
    max_rows_per_arm : int
        Rows drawn per arm (at random) for the figure.

    Notes
    -----
    One projection is fitted on the rows of all arms together, so panels share their
    axes: synthetic rows that fall where no real row lies are visible as such.
    Colour = stratum; filled dots = real rows, crosses = synthetic rows.
    """
    plt = _pyplot()
    rng = as_numpy_rng(random_state)
    names = list(arms)
    frames, owner, synth, labels = [], [], [], []
    for i, name in enumerate(names):
        X, is_syn, lab = arms[name]
        take = np.sort(rng.permutation(len(X))[:max_rows_per_arm])
        frames.append(X.iloc[take].reset_index(drop=True))
        owner.append(np.full(len(take), i))
        synth.append(np.asarray(is_syn, dtype=bool)[take])
        labels.append(np.asarray(lab)[take])
    allX = pd.concat(frames, ignore_index=True)
    owner_a, synth_a, labels_a = map(np.concatenate, (owner, synth, labels))
    emb, method = embed_2d(allX, random_state=rng)
    strata = sorted(set(labels_a))
    cmap = plt.get_cmap("tab10")
    color = {s: cmap(k % 10) for k, s in enumerate(strata)}
    ncols = min(3, len(names))
    nrows = int(np.ceil(len(names) / ncols))
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(4 * ncols, 3.6 * nrows), squeeze=False, sharex=True, sharey=True
    )
    for i, (ax, name) in enumerate(zip(axes.ravel(), names, strict=False)):
        m = owner_a == i
        for s in strata:
            for is_syn, marker in ((False, "o"), (True, "x")):
                sel = m & (labels_a == s) & (synth_a == is_syn)
                if sel.any():
                    ax.scatter(
                        emb[sel, 0],
                        emb[sel, 1],
                        s=4 if not is_syn else 6,
                        marker=marker,
                        color=color[s],
                        alpha=0.5,
                        linewidths=0.6,
                        label=f"{s}{' (synthetic)' if is_syn else ''}",
                    )
        ax.set_title(
            f"{name}: {int(synth_a[m].sum())} synthetic / {int(m.sum())} rows shown", fontsize=8
        )
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes.ravel()[len(names) :]:
        ax.set_visible(False)
    handles = [
        plt.Line2D([], [], marker="o", linestyle="", color=color[s], label=s) for s in strata
    ] + [plt.Line2D([], [], marker="x", linestyle="", color="black", label="synthetic")]
    fig.legend(handles=handles, loc="lower center", ncols=min(5, len(handles)), fontsize=7)
    fig.suptitle(f"{method} of each arm's training set (shared projection)", fontsize=10)
    fig.tight_layout(rect=(0, 0.06, 1, 0.97))
    return _save(fig, path)


def _step_densities(ax, edges: np.ndarray, layers) -> None:
    """One density step histogram per ``(values, label, color)``; empty or None layers skipped."""
    for values, label, color in layers:
        if values is not None and len(values):
            ax.hist(values, bins=edges, density=True, histtype="step", color=color, label=label,
                    linewidth=1.1)  # fmt: skip


def _density_columns(real: pd.DataFrame, columns: Sequence[str], max_columns: int) -> list[str]:
    """Numeric columns with more than 5 distinct values (density plots of 0/1 codes say little)."""
    out = [c for c in columns if real[c].dropna().nunique() > 5]
    return out[:max_columns]


def plot_strata_densities(
    real: pd.DataFrame,
    synth: pd.DataFrame,
    strata_columns: Sequence[str],
    columns: Sequence[str],
    path: str | Path,
    *,
    holdout: pd.DataFrame | None = None,
    max_columns: int = 8,
    bins: int = 30,
) -> Path:
    """Densities (step histograms) of generated vs real rows, one row of panels per stratum.

    Parameters
    ----------
    real : DataFrame
        Real training rows (what the generator learned from).
    synth : DataFrame
        Synthetic rows.
    strata_columns : sequence of str
        Columns defining the strata (target x sensitive attributes).
    columns : sequence of str
        Numeric columns to draw (those with more than 5 distinct values, at most
        ``max_columns``).
    holdout : DataFrame, optional
        Real rows the generator never saw, drawn as a third line: the distribution the
        synthetic rows should recover.
    """
    plt = _pyplot()
    cols = _density_columns(real, columns, max_columns)
    key = list(strata_columns)
    lab_s = synth[key].astype(str).agg(" & ".join, axis=1)
    strata = sorted(set(lab_s))
    if not cols or not strata:
        fig, ax = plt.subplots(figsize=(4, 2))
        ax.text(0.5, 0.5, "no numeric column or no synthetic row", ha="center", va="center")
        return _save(fig, path)
    lab_r = real[key].astype(str).agg(" & ".join, axis=1)
    lab_h = holdout[key].astype(str).agg(" & ".join, axis=1) if holdout is not None else None
    fig, axes = plt.subplots(
        len(strata), len(cols), figsize=(2.2 * len(cols), 1.8 * len(strata) + 0.6), squeeze=False
    )
    for i, s in enumerate(strata):
        for j, col in enumerate(cols):
            ax = axes[i, j]
            r = pd.to_numeric(real.loc[(lab_r == s).to_numpy(), col], errors="coerce").dropna()
            g = pd.to_numeric(synth.loc[(lab_s == s).to_numpy(), col], errors="coerce").dropna()
            h = None
            if lab_h is not None:
                h = pd.to_numeric(
                    holdout.loc[(lab_h == s).to_numpy(), col], errors="coerce"
                ).dropna()
            pooled = pd.concat([x for x in (r, g, h) if x is not None and len(x)])
            lo, hi = np.nanpercentile(pooled, [0.5, 99.5]) if len(pooled) else (0, 1)
            edges = np.linspace(lo, hi if hi > lo else lo + 1, bins + 1)
            _step_densities(
                ax,
                edges,
                [
                    (r, f"real train ({len(r)})", "tab:blue"),
                    (h, f"real held out ({0 if h is None else len(h)})", "tab:green"),
                    (g, f"synthetic ({len(g)})", "tab:orange"),
                ],
            )
            ax.tick_params(labelsize=6)
            ax.set_yticks([])
            if i == 0:
                ax.set_title(col, fontsize=8)
            if j == 0:
                ax.set_ylabel(s, fontsize=7)
            if j == len(cols) - 1:
                ax.legend(fontsize=5, loc="upper right")
    fig.suptitle("Generated vs real rows per stratum (density)", fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


# ---------------------------------------------------------------------------- longitudinal EHR
def _multi_hot(visits, n_codes: int) -> np.ndarray:
    """Patients x codes: 1 where the patient has the code in any visit."""
    x = np.zeros((len(visits), n_codes), dtype=np.float32)
    for i, patient in enumerate(visits):
        for v in patient:
            x[i, np.asarray(v, dtype=np.int64)] = 1.0
    return x


def plot_patient_projection(
    arms: Mapping[str, tuple[Sequence, np.ndarray]],
    n_codes: int,
    path: str | Path,
    *,
    random_state=0,
    max_patients_per_arm: int = 1500,
) -> Path:
    """One panel per arm: its patients in a shared 2-d PCA of multi-hot code vectors.

    Parameters
    ----------
    arms : mapping arm -> (visits, is_synthetic)
        ``visits`` per patient, per visit an array of code ids (``SequenceTask.visits``).
    n_codes : int
        Vocabulary size.
    path : path of the PNG

    Notes
    -----
    The projection is fitted on the real patients of all panels, so synthetic patients far
    from every real one show as such. Dots = real, crosses = synthetic.
    """
    from sklearn.decomposition import PCA

    plt = _pyplot()
    rng = as_numpy_rng(random_state)
    names = list(arms)
    mats, synth = [], []
    for name in names:
        visits, is_syn = arms[name]
        take = np.sort(rng.permutation(len(visits))[:max_patients_per_arm])
        mats.append(_multi_hot([visits[i] for i in take], n_codes))
        synth.append(np.asarray(is_syn, dtype=bool)[take])
    real_rows = np.vstack([m[~s] for m, s in zip(mats, synth, strict=True)])
    pca = PCA(n_components=2, random_state=int(rng.integers(2**31 - 1)))
    pca.fit(real_rows if len(real_rows) > 2 else np.vstack(mats))
    ncols = min(3, len(names))
    nrows = int(np.ceil(len(names) / ncols))
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(4 * ncols, 3.6 * nrows), squeeze=False, sharex=True, sharey=True
    )
    for ax, name, m, s in zip(axes.ravel(), names, mats, synth, strict=False):
        emb = pca.transform(m)
        ax.scatter(emb[~s, 0], emb[~s, 1], s=4, color="tab:blue", alpha=0.4, label="real")
        if s.any():
            ax.scatter(
                emb[s, 0],
                emb[s, 1],
                s=6,
                marker="x",
                color="tab:orange",
                alpha=0.4,
                linewidths=0.6,
                label="synthetic",
            )
        ax.set_title(f"{name}: {int(s.sum())} synthetic / {len(s)} patients shown", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.legend(fontsize=7, loc="upper right")
    for ax in axes.ravel()[len(names) :]:
        ax.set_visible(False)
    fig.suptitle("PCA of multi-hot patient vectors (fitted on real patients)", fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def plot_visit_histograms(
    arms: Mapping[str, tuple[Sequence, Sequence]],
    path: str | Path,
    *,
    holdout: Sequence | None = None,
    bins: int = 30,
) -> Path:
    """Visits per patient and codes per visit: real training vs synthetic (vs held out).

    Parameters
    ----------
    arms : mapping arm -> (real visits, synthetic visits)
        Per patient, per visit an array of code ids.
    holdout : visits of real patients no arm trained on, optional
    """
    plt = _pyplot()
    names = list(arms)
    fig, axes = plt.subplots(len(names), 2, figsize=(8.5, 2.4 * len(names) + 0.6), squeeze=False)

    def stats_of(visits):
        return (
            np.array([len(p) for p in visits], dtype=float),
            np.array([len(v) for p in visits for v in p], dtype=float),
        )

    ref = stats_of(holdout) if holdout is not None else None
    for i, name in enumerate(names):
        real, synth = (stats_of(v) for v in arms[name])
        for j, title in enumerate(("visits per patient", "codes per visit")):
            ax = axes[i, j]
            pooled = np.concatenate([real[j], synth[j]] + ([ref[j]] if ref else []))
            hi = np.percentile(pooled, 99) if pooled.size else 1.0
            edges = np.linspace(0.5, max(hi, 1.0) + 0.5, min(bins, int(max(hi, 1))) + 1)
            top = edges[-1] - 0.5  # counts above the last bin are drawn in it
            held = None if ref is None else np.clip(ref[j], None, top)
            _step_densities(
                ax,
                edges,
                [
                    (np.clip(real[j], None, top), f"real train ({len(real[j])})", "tab:blue"),
                    (held, "real held out", "tab:green"),
                    (np.clip(synth[j], None, top), f"synthetic ({len(synth[j])})", "tab:orange"),
                ],
            )
            ax.tick_params(labelsize=7)
            ax.set_yticks([])
            if i == 0:
                ax.set_title(title, fontsize=9)
            if j == 0:
                ax.set_ylabel(name, fontsize=8)
            ax.legend(fontsize=6, loc="upper right")
    fig.suptitle("Visit structure of real and synthetic patients (density)", fontsize=9)
    fig.tight_layout()
    return _save(fig, path)
