"""HALOGenerator: recovers a known conditional structure, conditions, fairness term, save/load."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from equisynth.data.tasks import SequenceTask
from equisynth.exceptions import ConfigError, DataError, NotFittedError
from equisynth.fairness.losses import disparate_impact_loss
from equisynth.generators._halo import HALONetwork, MaskedAutoregressive
from equisynth.generators.ehr import HALOGenerator

# known structure: code 3 in 70% of group A's visits and 10% of group B's; label prevalence
# 0.6 (A) / 0.1 (B); code 5 in 50% of the visits of label-1 patients, 5% otherwise; 1-4 visits
P_CODE3 = {"A": 0.7, "B": 0.1}
P_LABEL = {"A": 0.6, "B": 0.1}
P_CODE5 = {1: 0.5, 0: 0.05}
TINY = {"n_layers": 1, "d_model": 32, "n_heads": 2, "max_visits": 5, "dropout": 0.0,
        "batch_size": 64, "lr": 1e-2, "random_state": 0}  # fmt: skip


def make_task(n: int = 400, seed: int = 0) -> SequenceTask:
    rng = np.random.default_rng(seed)
    grp = rng.choice(["A", "B"], n, p=[0.5, 0.5])
    label = (rng.random(n) < np.vectorize(P_LABEL.get)(grp)).astype(int)
    visits = []
    for g, y in zip(grp, label, strict=True):
        patient = []
        for _ in range(rng.integers(1, 5)):
            codes = {int(rng.choice([0, 1, 2, 4]))}
            if rng.random() < P_CODE3[g]:
                codes.add(3)
            if rng.random() < P_CODE5[y]:
                codes.add(5)
            patient.append(np.array(sorted(codes)))
        visits.append(patient)
    return SequenceTask(
        patient_ids=np.array([f"p{i}" for i in range(n)]),
        demographics=pd.DataFrame({"grp": grp, "sex": rng.choice(["F", "M"], n)}),
        label=label,
        visits=visits,
        vocab=[f"dx:{i}" for i in range(7)],
        task="toy",
    )


def code_share(task: SequenceTask, code: int) -> float:
    visits = [v for p in task.visits for v in p]
    return float(np.mean([code in v for v in visits]))


@pytest.fixture(scope="module")
def task() -> SequenceTask:
    return make_task()


@pytest.fixture(scope="module")
def fitted(task) -> HALOGenerator:
    return HALOGenerator(n_epochs=60, **TINY).fit(task)


def test_recovers_the_group_structure_when_conditioned_on_the_group(fitted, task):
    n = 600
    out = fitted.sample(
        conditions=pd.DataFrame({"grp": ["A"] * n + ["B"] * n, "sex": ["F", "M"] * n}),
        random_state=0,
    )
    assert out.n_patients == 2 * n and out.is_synthetic.all() and out.vocab == task.vocab
    assert (out.demographics["grp"] == ["A"] * n + ["B"] * n).all()
    for g in ("A", "B"):
        sub = out.subset(out.demographics["grp"].to_numpy() == g)
        real = task.subset(task.demographics["grp"].to_numpy() == g)
        share = code_share(sub, 3)
        # against the training data's shares (within ~0.03 of P_CODE3 / P_LABEL); the model's
        # error dominates the binomial error of ~1,500 sampled visits (sd < 0.013)
        assert abs(share - code_share(real, 3)) < 0.08, (g, share)
        assert abs(sub.label.mean() - real.label.mean()) < 0.08, (g, sub.label.mean())
        # visits per patient: uniform on 1..4 in the data
        counts = np.bincount(sub.visit_counts(), minlength=6)[1:] / sub.n_patients
        assert np.abs(counts - [0.25, 0.25, 0.25, 0.25, 0.0]).sum() / 2 < 0.15, counts
    # the group matters: B-conditioned patients look like B, not like A
    a = code_share(out.subset(out.demographics["grp"].to_numpy() == "A"), 3)
    b = code_share(out.subset(out.demographics["grp"].to_numpy() == "B"), 3)
    assert a - b > 0.45


def test_conditioning_on_the_label_gives_that_labels_codes(fitted, task):
    n = 500
    frame = pd.DataFrame({"grp": ["A"] * 2 * n, "sex": ["F"] * 2 * n, "label": [1] * n + [0] * n})
    out = fitted.sample(conditions=frame, random_state=1)
    assert out.label.tolist() == frame["label"].tolist()
    pos = code_share(out.subset(np.arange(n)), 5)
    neg = code_share(out.subset(np.arange(n, 2 * n)), 5)
    in_a = task.demographics["grp"].to_numpy() == "A"
    real_pos = code_share(task.subset(in_a & (task.label == 1)), 5)  # about P_CODE5[1]
    real_neg = code_share(task.subset(in_a & (task.label == 0)), 5)
    assert abs(pos - real_pos) < 0.12 and abs(neg - real_neg) < 0.05, (pos, neg)
    assert pos - neg > 0.4
    # a missing label is drawn from P(label | demographics) (about 0.1 for B)
    drawn = fitted.sample(
        conditions=pd.DataFrame({"grp": ["B"] * n, "sex": ["F"] * n, "label": [np.nan] * n}),
        random_state=2,
    )
    assert drawn.label.mean() < 0.25


def test_unconditional_samples_are_valid_and_reproducible(fitted, task):
    out = fitted.sample(800, random_state=3)
    shares = out.demographics["grp"].value_counts(normalize=True)
    real = task.demographics["grp"].value_counts(normalize=True)
    assert abs(shares["A"] - real["A"]) < 0.07
    assert set(out.demographics["sex"]) == {"F", "M"}
    assert all(len(p) >= 1 and all(len(v) >= 1 for v in p) for p in out.visits)
    assert out.visit_counts().max() <= fitted.max_visits
    # overall label rate follows the data's mixture of groups
    assert abs(out.label.mean() - task.label.mean()) < 0.08
    again = fitted.sample(800, random_state=3)
    assert again.demographics.equals(out.demographics)
    assert all(
        len(p) == len(q) and all(np.array_equal(v, w) for v, w in zip(p, q, strict=True))
        for p, q in zip(out.visits, again.visits, strict=True)
    )
    other = fitted.sample(800, random_state=4)
    assert not other.demographics.equals(out.demographics)
    # the default seed is fixed at fit time
    assert fitted.sample(50).demographics.equals(fitted.sample(50).demographics)
    assert fitted.sample(0).n_patients == 0


def test_label_probability_follows_the_group_prevalence(fitted):
    p = fitted.label_probability(pd.DataFrame({"grp": ["A", "B"], "sex": ["F", "F"]}))
    assert isinstance(p, np.ndarray) and p.shape == (2,)
    assert abs(p[0] - P_LABEL["A"]) < 0.12 and abs(p[1] - P_LABEL["B"]) < 0.08, p


def test_the_fairness_term_has_a_gradient_wrt_the_model_parameters(fitted, task):
    bits = torch.as_tensor(fitted.layout_.encode(task.demographics))
    groups = torch.as_tensor((task.demographics["grp"] == "B").to_numpy().astype(np.int64))
    loss = disparate_impact_loss(torch.sigmoid(fitted._label_logits(bits)), groups)
    params = [p for p in fitted.model_.parameters() if p.requires_grad]
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    assert float(loss.detach()) > 0.3  # groups with prevalence 0.6 vs 0.1
    assert sum(float(g.abs().sum()) for g in grads if g is not None) > 0
    fitted.model_.zero_grad(set_to_none=True)


def _di(gen: HALOGenerator) -> float:
    p = gen.label_probability(pd.DataFrame({"grp": ["A", "B"], "sex": ["F", "F"]}))
    return float(p.min() / p.max())


def test_fairness_lambda_moves_the_disparity_toward_parity(task):
    kw = {**TINY, "n_epochs": 40, "fairness": "disparate_impact", "sensitive": ["grp"]}
    plain = HALOGenerator(fairness_lambda=0.0, **kw).fit(task)
    fair = HALOGenerator(fairness_lambda=5.0, **kw).fit(task)
    di_plain, di_fair = _di(plain), _di(fair)
    assert di_plain < 0.35  # the data's DI is about 0.1 / 0.6
    assert di_fair > di_plain + 0.3, (di_plain, di_fair)
    # the fairness loss is recorded separately from the likelihood
    assert plain.history_[-1]["fairness"] > 0.5 and plain.history_[-1]["nll"] > 0
    assert fair.history_[-1]["fairness"] < 0.2
    # sampled labels move the same way
    n = 400
    cond = pd.DataFrame({"grp": ["A"] * n + ["B"] * n, "sex": ["F"] * 2 * n})
    lab = fair.sample(conditions=cond, random_state=0).label
    assert lab[n:].mean() / lab[:n].mean() > di_plain + 0.2
    # warm start: continue the plain model with lambda > 0 (no restart from scratch)
    warm = HALOGenerator(fairness_lambda=5.0, **{**kw, "n_epochs": 10}).fit(task, init=plain)
    assert _di(warm) > di_plain + 0.2
    assert _di(plain) == di_plain  # init is not modified


def test_group_weights_of_absent_groups_are_ignored_with_a_warning(task, caplog):
    kw = {**TINY, "n_epochs": 1, "fairness": "worst_group_tpr", "sensitive": ["grp"]}
    gen = HALOGenerator(group_weights={"grp=A": 2.0, "grp=C": 1.0}, **kw).fit(task)
    assert "grp=C" in caplog.text and gen.group_names_ == ["grp=A", "grp=B"]


def test_warm_start_starts_from_the_init_weights(fitted, task):
    warm = HALOGenerator(**{**TINY, "n_epochs": 1, "lr": 1e-9}).fit(task, init=fitted)
    a, b = fitted.model_.state_dict(), warm.model_.state_dict()
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-5
    with pytest.raises(ConfigError, match="d_model=32"):
        HALOGenerator(**{**TINY, "d_model": 16}).fit(task, init=fitted)
    with pytest.raises(ConfigError, match="fitted HALOGenerator"):
        HALOGenerator(**TINY).fit(task, init=HALOGenerator())


def test_save_load_round_trip_on_cpu(fitted, tmp_path):
    path = fitted.save(tmp_path / "halo")
    config = json.loads((path / "config.json").read_text())
    assert config["kind"] == "halo-ehr" and config["format_version"] == 1
    assert config["config"]["vocab"] == fitted.vocab_
    assert config["config"]["layout"]["levels"] == {"grp": ["A", "B"], "sex": ["F", "M"]}
    loaded = HALOGenerator.load(path, device="cpu")
    a = fitted.sample(300, random_state=7)
    b = loaded.sample(300, random_state=7)
    assert a.demographics.equals(b.demographics) and (a.label == b.label).all()
    assert all(
        all(np.array_equal(v, w) for v, w in zip(p, q, strict=True))
        for p, q in zip(a.visits, b.visits, strict=True)
    )
    assert loaded.sample(20).demographics.equals(fitted.sample(20).demographics)
    assert loaded.get_params()["d_model"] == 32 and loaded.history_ == fitted.history_


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"n_layers": 0}, "n_layers"),
        ({"d_model": 30, "n_heads": 4}, "n_heads"),
        ({"dropout": 1.0}, "dropout"),
        ({"lr": -1.0}, "lr"),
        ({"max_visits": 2.5}, "max_visits"),
        ({"fairness": "parity"}, "disparate_impact"),
        ({"fairness_lambda": 1.0}, "fairness_lambda"),
        ({"fairness": "disparate_impact", "fairness_lambda": -1.0}, "fairness_lambda"),
        ({"fairness": "disparate_impact"}, "sensitive"),
        ({"fairness": "disparate_impact", "sensitive": "grp"}, "sensitive"),
        ({"fairness": "disparate_impact", "sensitive": ["age"]}, "age"),
        ({"fairness": "disparate_impact", "sensitive": ["grp"], "group_weights": {"sex=F": 2}},
         "sex=F"),
        ({"fairness": "disparate_impact", "sensitive": ["grp"], "group_weights": {"grp=A": -1}},
         "group_weights"),
    ],
)  # fmt: skip
def test_bad_hyperparameters_name_the_parameter(task, params, match):
    with pytest.raises(ConfigError, match=match):
        HALOGenerator(**{**TINY, **params}).fit(task)


def test_bad_conditions_are_data_errors_naming_the_problem(fitted):
    with pytest.raises(DataError, match=r"'grp'.*'C'"):
        fitted.sample(conditions=pd.DataFrame({"grp": ["A", "C"], "sex": ["F", "F"]}))
    with pytest.raises(DataError, match="sex"):
        fitted.sample(conditions=pd.DataFrame({"grp": ["A"]}))
    with pytest.raises(DataError, match="age"):
        fitted.sample(conditions=pd.DataFrame({"grp": ["A"], "sex": ["F"], "age": [3]}))
    with pytest.raises(DataError, match="label"):
        fitted.sample(conditions=pd.DataFrame({"grp": ["A"], "sex": ["F"], "label": [2]}))
    with pytest.raises(ConfigError, match="n="):
        fitted.sample()
    with pytest.raises(NotFittedError):
        HALOGenerator().sample(5)
    with pytest.raises(DataError, match="SequenceTask"):
        HALOGenerator(**TINY).fit(pd.DataFrame({"a": [1]}))


def test_incremental_sampling_matches_the_masked_forward_pass():
    torch.manual_seed(0)  # test-local module init
    head = MaskedAutoregressive(7, 5, n_layers=3)
    with torch.no_grad():
        head.direct.normal_()
    h = torch.randn(50, 5)
    fixed = torch.zeros(50, 7, dtype=torch.bool)
    fixed[:10, 4] = True
    values = torch.ones(50, 7)
    gen = torch.Generator().manual_seed(0)
    x, logits = head.sample(
        h, generator=gen, fixed=fixed, values=values, one_hot=[(0, 3)], return_logits=True
    )
    torch.testing.assert_close(logits, head(h, x), rtol=1e-5, atol=1e-5)
    assert (x[:, :3].sum(1) == 1).all()  # one-hot segment: exactly one level
    assert (x[:10, 4] == 1).all()  # forced bits
    # output j does not depend on bits >= j
    x2 = x.clone()
    x2[:, 5:] = 1 - x2[:, 5:]
    torch.testing.assert_close(head(h, x2)[:, :6], head(h, x)[:, :6])


def test_padding_does_not_change_a_patients_likelihood():
    torch.manual_seed(0)  # test-local module init
    net = HALONetwork(3, 4, d_model=8, n_layers=1, n_heads=2, max_visits=4, n_code_layers=2,
                      dropout=0.0).eval()  # fmt: skip
    prefix = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    visits = torch.zeros(2, 3, 4)
    visits[0, 0, 1] = 1  # patient 0: one visit
    visits[1, :, 2] = 1  # patient 1: three visits
    lengths = torch.tensor([1, 3])
    both, _ = net(prefix, visits, lengths)
    alone0, _ = net(prefix[:1], visits[:1, :1], lengths[:1])
    alone1, _ = net(prefix[1:], visits[1:], lengths[1:])
    torch.testing.assert_close(2 * both, alone0 + alone1)
    # and changing a padded visit changes nothing
    visits[0, 2, 3] = 1
    torch.testing.assert_close(net(prefix, visits, lengths)[0], both)
