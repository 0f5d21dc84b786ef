"""Model files: safetensors + JSON only, verified on load, never executing code."""

from __future__ import annotations

import copy
import json
import pickle
import re
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from reliability_support import fuzz, record, time_limit

from equisynth.exceptions import EquisynthError, ModelFileError, OutputExistsError
from equisynth.generators._modelfile import _config_digest

torch = pytest.importorskip("torch")
from equisynth.generators.tabular import FORMAT_VERSION, TabularDiffusionGenerator  # noqa: E402

SRC = Path(__file__).resolve().parents[2] / "src" / "equisynth"


def _table(n: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "x": np.round(rng.normal(50, 10, n), 2),
            "c": rng.choice(["a", "b", "c"], n),
            "s": rng.choice(["F", "M"], n),
            "y": (rng.random(n) < 0.4).astype(int),
        }
    )


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    gen = TabularDiffusionGenerator(
        n_iter=3, timesteps=8, hidden=(16,), dim_t=8, sample_steps=2, random_state=0
    ).fit(_table(), condition_on=["y", "s"])
    return gen.save(tmp_path_factory.mktemp("saved") / "model")


def _copy(saved: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "model"
    shutil.copytree(saved, dest)
    return dest


def _document(model: Path) -> dict:
    return json.loads((model / "config.json").read_text(encoding="utf-8"))


def _write_document(model: Path, document: dict, *, rehash: bool) -> None:
    """Rewrite config.json; ``rehash`` also fixes the checksums, as a careful forger would."""
    if rehash:
        document["config_sha256"] = _config_digest(document["config"])
        for name in document["sha256"]:
            import hashlib

            document["sha256"][name] = hashlib.sha256((model / name).read_bytes()).hexdigest()
    (model / "config.json").write_text(json.dumps(document), encoding="utf-8")


def test_layout_is_json_plus_safetensors_with_checksums(saved):
    assert sorted(p.name for p in saved.iterdir()) == [
        "arrays.safetensors",
        "config.json",
        "model.safetensors",
    ]
    document = _document(saved)
    assert document["format"] == "equisynth-model"
    assert document["format_version"] == FORMAT_VERSION
    import hashlib

    for name, digest in document["sha256"].items():
        assert hashlib.sha256((saved / name).read_bytes()).hexdigest() == digest
    assert document["config_sha256"] == _config_digest(document["config"])
    # safetensors files start with an 8-byte header length and a JSON header, not a pickle
    for name in ("model.safetensors", "arrays.safetensors"):
        raw = (saved / name).read_bytes()
        header_len = int.from_bytes(raw[:8], "little")
        json.loads(raw[8 : 8 + header_len])
        assert not raw.startswith(b"\x80")  # pickle protocol marker


def test_round_trip_samples_identically(saved):
    a = TabularDiffusionGenerator.load(saved)
    b = TabularDiffusionGenerator.load(saved)
    cond = pd.DataFrame({"y": [0, 1, 1], "s": ["F", "M", "F"]})
    pd.testing.assert_frame_equal(a.sample(cond, random_state=3), b.sample(cond, random_state=3))


def test_wrong_format_version_is_refused(saved, tmp_path):
    model = _copy(saved, tmp_path)
    document = _document(model)
    document["format_version"] = FORMAT_VERSION + 1
    _write_document(model, document, rehash=True)
    with pytest.raises(ModelFileError, match=f"format version {FORMAT_VERSION + 1}.*re-fit"):
        TabularDiffusionGenerator.load(model)


def test_tampered_weights_are_refused(saved, tmp_path):
    model = _copy(saved, tmp_path)
    raw = bytearray((model / "model.safetensors").read_bytes())
    raw[-1] ^= 0xFF  # one flipped bit pattern in the last weight
    (model / "model.safetensors").write_bytes(bytes(raw))
    with pytest.raises(ModelFileError, match=r"checksum mismatch.*model\.safetensors"):
        TabularDiffusionGenerator.load(model)


def test_tampered_config_is_refused(saved, tmp_path):
    model = _copy(saved, tmp_path)
    document = _document(model)
    document["config"]["strata"]["levels"][1] = ["F", "X"]  # relabel a group
    _write_document(model, document, rehash=False)
    with pytest.raises(ModelFileError, match=r"checksum mismatch.*config"):
        TabularDiffusionGenerator.load(model)


def test_mismatched_schema_is_refused_even_with_fixed_checksums(saved, tmp_path):
    model = _copy(saved, tmp_path)
    document = _document(model)
    document["config"]["d_num"] = 3  # the weights were trained on 1 numeric column
    _write_document(model, document, rehash=True)
    with pytest.raises(ModelFileError, match=r"do not match|inconsistent"):
        TabularDiffusionGenerator.load(model)


def test_fill_table_with_another_schema_is_a_clean_error(saved, tmp_path):
    gen = TabularDiffusionGenerator.load(saved)
    with pytest.raises(EquisynthError, match="lack column"):
        gen.sample(pd.DataFrame({"y": [1], "sex": ["F"]}))
    with pytest.raises(EquisynthError, match="'s'"):
        gen.sample(pd.DataFrame({"y": [1], "s": ["unknown-group"]}))


class _Exploit:
    """Under pickle, loading this object would run ``touch <marker>``."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def test_pickle_payload_in_weights_is_refused_and_inert(saved, tmp_path):
    model = _copy(saved, tmp_path)
    marker = tmp_path / "pwned"
    payload = pickle.dumps({"weights": _Exploit(marker)})
    for name in ("model.safetensors", "arrays.safetensors"):
        (model / name).write_bytes(payload)
    _write_document(model, _document(model), rehash=True)  # checksums cannot help here
    with pytest.raises(ModelFileError, match="cannot read weights"):
        TabularDiffusionGenerator.load(model)
    assert not marker.exists()


def test_torch_save_file_is_refused_and_inert(saved, tmp_path):
    model = _copy(saved, tmp_path)
    marker = tmp_path / "pwned"
    torch.save({"weights": _Exploit(marker)}, model / "model.safetensors")
    _write_document(model, _document(model), rehash=True)
    with pytest.raises(ModelFileError, match="cannot read weights"):
        TabularDiffusionGenerator.load(model)
    assert not marker.exists()


def test_code_in_config_is_inert(saved, tmp_path):
    """JSON has no way to name a callable: a config smuggling one is refused or ignored."""
    model = _copy(saved, tmp_path)
    marker = tmp_path / "pwned"
    document = _document(model)
    document["config"]["params"]["random_state"] = {
        "py/reduce": [{"py/function": "os.system"}, [f"touch {marker}"]],
        "__reduce__": f"os.system('touch {marker}')",
    }
    document["config"]["params"]["device"] = f"__import__('os').system('touch {marker}')"
    _write_document(model, document, rehash=True)
    try:
        gen = TabularDiffusionGenerator.load(model)
        gen.sample(pd.DataFrame({"y": [1], "s": ["F"]}))
    except EquisynthError:
        pass
    assert not marker.exists()


def test_existing_non_model_directory_is_never_replaced(saved, tmp_path):
    precious = tmp_path / "thesis"
    precious.mkdir()
    (precious / "chapter1.tex").write_text("years of work")
    gen = TabularDiffusionGenerator.load(saved)
    with pytest.raises(OutputExistsError, match="not an equisynth model directory"):
        gen.save(precious, overwrite=True)
    assert (precious / "chapter1.tex").read_text() == "years of work"
    gen.save(tmp_path / "m", overwrite=False)
    gen.save(tmp_path / "m", overwrite=True)  # an earlier model may be replaced


UNSAFE = [
    (re.compile(r"^\s*(import|from)\s+(c?pickle|dill|cloudpickle|shelve|marshal)\b"), "pickle"),
    (re.compile(r"\bpickle\.loads?\("), "pickle.load"),
    (re.compile(r"\bjoblib\.load\("), "joblib.load"),
    (re.compile(r"\ballow_pickle\s*=\s*True"), "np.load(allow_pickle=True)"),
    (re.compile(r"\byaml\.load\("), "yaml.load"),
    (re.compile(r"(?<![\w.])(eval|exec)\("), "eval/exec"),
]


def test_package_source_has_no_pickle_or_unsafe_torch_load():
    offenders = []
    files = sorted(SRC.rglob("*.py"))
    assert len(files) > 20
    for path in files:
        text = path.read_text(encoding="utf-8")
        for lineno, line in enumerate(text.splitlines(), 1):
            for pattern, what in UNSAFE:
                if pattern.search(line):
                    offenders.append(f"{path.relative_to(SRC)}:{lineno}: {what}")
        for match in re.finditer(r"torch\.load\(", text):
            call = text[match.start() : text.find(")", match.start()) + 1]
            if not re.search(r"weights_only\s*=\s*True", call):
                line = text.count("\n", 0, match.start()) + 1
                offenders.append(f"{path.relative_to(SRC)}:{line}: torch.load without weights_only")
    assert not offenders, "\n".join(offenders)


def _json_paths(node, prefix=()):
    """Every (path, value) of a JSON tree."""
    yield prefix, node
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _json_paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _json_paths(v, (*prefix, i))


JSON_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=6),
    st.lists(st.integers(-3, 3), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


@fuzz(60)
@given(data=st.data())
def test_fuzz_consistently_rehashed_config_mutations(saved, tmp_path_factory, data):
    """A config edited *and* re-hashed (a bug or a forger): clean error or a working model."""
    name = "model file: mutated config.json"
    model = _copy(saved, tmp_path_factory.mktemp("mut"))
    document = _document(model)
    paths = [p for p, _ in _json_paths(document["config"]) if p]
    path = data.draw(st.sampled_from(paths))
    value = data.draw(JSON_VALUES)
    config = copy.deepcopy(document["config"])
    node = config
    for key in path[:-1]:
        node = node[key]
    if data.draw(st.booleans()) and isinstance(node, dict):
        del node[path[-1]]
    else:
        node[path[-1]] = value
    document["config"] = config
    _write_document(model, document, rehash=True)
    with time_limit(60), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            gen = TabularDiffusionGenerator.load(model)
            out = gen.sample(pd.DataFrame({"y": [0, 1], "s": ["F", "M"]}), random_state=0)
        except Exception as exc:
            assert isinstance(exc, EquisynthError), f"{type(exc).__name__}: {exc} at {path}"
            record(name, "clean error")
            return
    assert len(out) == 2
    record(name, "result")
