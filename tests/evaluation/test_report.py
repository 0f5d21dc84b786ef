"""Experiment outputs: results.csv, summary.md, a self-contained report.html rendered by Chromium."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from equisynth.evaluation.arm_quality import QualityOptions
from equisynth.evaluation.outputs import write_experiment
from equisynth.evaluation.protocols import GenericProtocol
from equisynth.evaluation.report import report_tables, to_markdown
from equisynth.evaluation.runner import run_experiment
from equisynth.exceptions import OutputExistsError


def _table(n: int = 700, seed: int = 0) -> pd.DataFrame:
    """Outcome depends on x; women and group 'b' are rare (imbalanced strata)."""
    rng = np.random.default_rng(seed)
    sex = rng.choice(["F", "M"], n, p=[0.25, 0.75])
    grp = rng.choice(["a", "b"], n, p=[0.7, 0.3])
    x = rng.normal(size=n) + 0.5 * (sex == "F")
    z = rng.normal(size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(-(1.5 * x - 0.5)))).astype(int)
    return pd.DataFrame(
        {"x": x, "z": z, "age": rng.integers(20, 80, n), "sex": sex, "grp": grp, "y": y}
    )


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    protocol = GenericProtocol(
        data=_table(),
        target="y",
        positive=1,
        sensitive=["sex", "grp"],
        arms=["real", "random_oversample", "mcrage"],
        classifier="lr",
        generator="empirical",
        min_group_size=5,
    )
    result = run_experiment(protocol, seeds=3)
    out = tmp_path_factory.mktemp("exp") / "out"
    mp = pytest.MonkeyPatch()
    mp.setitem(sys.modules, "umap", None)  # PCA fallback: keeps the test fast
    try:
        paths = write_experiment(
            result,
            out,
            protocol=protocol,
            quality=QualityOptions(classifier="lr", cv=3, associations=False),
            title="test <report>",
        )
    finally:
        mp.undo()
    return protocol, result, out, paths


def test_output_files_and_tidy_results(experiment):
    _, result, out, paths = experiment
    names = set(paths)
    assert {"results.csv", "summary.md", "report.html", "config.json", "quality.csv"} <= names
    assert {"metrics.png", "group_tpr.png", "umap.png", "densities_mcrage.png"} <= names
    res = pd.read_csv(out / "results.csv")
    assert list(res.columns) == ["seed", "arm", "metric", "group", "value"]
    assert set(res["seed"]) == {0, 1, 2}
    assert set(res["group"]) == {
        "all",
        "sex=F & grp=a",
        "sex=F & grp=b",
        "sex=M & grp=a",
        "sex=M & grp=b",
    }
    pd.testing.assert_frame_equal(res, result.results, check_dtype=False)
    quality = pd.read_csv(out / "quality.csv")
    # every arm with synthetic rows gets fidelity and privacy; the real arm has none
    assert set(quality["arm"]) == {"random_oversample", "mcrage"}
    priv = quality[quality["section"] == "privacy"].set_index(["arm", "metric"])["value"]
    # random oversampling and the empirical generator copy real rows: the privacy check sees it
    assert priv[("random_oversample", "exact_copy_rate")] > 0.9
    assert priv[("random_oversample", "dcr_ratio")] < 0.1


def test_summary_has_paper_table_paired_tests_groups_and_quality(experiment):
    _, result, out, _ = experiment
    text = (out / "summary.md").read_text()
    assert "| arm | accuracy | f1 | auroc | auprc | balanced_accuracy |" in text
    assert "## Paired differences against `real`" in text
    assert "## Per group" in text and "sex=F & grp=b" in text
    assert "## Synthetic data quality" in text and "c2st_auc" in text
    # every comparison carries a verdict in plain words
    assert re.search(
        r"mcrage vs real, f1: [+-]\d\.\d{3} \(95% CI .*\): (within noise|higher|lower)", text
    )
    # the table's cells agree with the numbers in results.csv
    f1 = result.results.query("arm == 'mcrage' and metric == 'f1' and group == 'all'")["value"]
    assert f"{f1.mean():.3f} ± {f1.std(ddof=1):.3f}" in text


def test_report_html_is_self_contained(experiment):
    _, _, out, paths = experiment
    page = (out / "report.html").read_text()
    srcs = re.findall(r'<img src="([^"]+)"', page)
    pngs = [p for p in paths if p.endswith(".png")]
    assert len(srcs) == len(pngs) >= 4
    assert all(s.startswith("data:image/png;base64,") for s in srcs)
    assert not re.search(r'(src|href)="(https?:|file:|/)', page)
    assert "test &lt;report&gt;" in page  # the title is escaped


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


_CHECK = """<script>
window.__errors = [];
window.addEventListener('error', e => window.__errors.push(String(e.message || e.type)), true);
window.addEventListener('load', () => {
  const imgs = [...document.images];
  const p = document.createElement('pre'); p.id = 'render-check';
  p.textContent = JSON.stringify({images: imgs.length, errors: window.__errors,
    widths: imgs.map(i => (i.complete ? i.naturalWidth : 0)),
    tables: document.querySelectorAll('table').length});
  document.body.appendChild(p);
});
</script>"""


@pytest.mark.slow
def test_report_renders_in_headless_chromium(experiment, tmp_path):
    browser = _chromium()
    if browser is None:
        pytest.skip("chromium not installed (make test installs the Debian package 'chromium')")
    _, _, out, paths = experiment
    # A copy of the report with a probe script: the report itself stays script-free.
    page = (out / "report.html").read_text().replace("<head>", "<head>" + _CHECK, 1)
    probe = tmp_path / "probe.html"
    probe.write_text(page, encoding="utf-8")
    cmd = [
        browser, "--headless", "--no-sandbox", "--disable-gpu",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
        "--virtual-time-budget=5000", "--dump-dom", probe.as_uri(),
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    found = re.search(r'<pre id="render-check">(.*?)</pre>', done.stdout, re.S)
    assert found, done.stdout[-2000:]
    check = json.loads(found.group(1).replace("&quot;", '"'))
    assert check["errors"] == []
    n_png = sum(p.endswith(".png") for p in paths)
    assert check["images"] == n_png and all(w > 100 for w in check["widths"]), check
    assert check["tables"] >= 5


def test_existing_output_is_not_overwritten(experiment, tmp_path):
    _, result, out, _ = experiment
    before = (out / "results.csv").read_bytes()
    with pytest.raises(OutputExistsError, match="--overwrite"):
        write_experiment(result, out, plots=False, quality=None)
    assert (out / "results.csv").read_bytes() == before
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    with pytest.raises(OutputExistsError, match="not an equisynth output"):
        write_experiment(result, other, plots=False, quality=None, overwrite=True)
    assert (other / "notes.txt").read_text() == "keep me"


def test_report_tables_reference_and_markdown_escaping():
    res = pd.DataFrame(
        {
            "seed": [0, 1, 0, 1],
            "arm": ["imbalanced", "imbalanced", "smote", "smote"],
            "metric": "f1",
            "group": "all",
            "value": [0.5, 0.6, 0.55, 0.65],
        }
    )
    tables = report_tables(res, reference="imbalanced")
    assert tables.reference == "imbalanced" and tables.n_seeds == 2
    assert tables.differences.iloc[0]["verdict"] == "higher"  # +0.05 in both seeds
    assert to_markdown(pd.DataFrame({"a|b": ["x|y"]})) == "| a\\|b |\n|---|\n| x\\|y |"
