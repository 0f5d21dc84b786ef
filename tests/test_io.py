"""equisynth.io: exact round trips, atomic writes, clear errors."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from equisynth.exceptions import InputFileError, OutputExistsError
from equisynth.io import atomic_output_dir, read_table, write_table


def _frame(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "x": np.round(rng.normal(size=50), 3),
            "precise": rng.normal(size=50),
            "n": rng.integers(0, 100, 50),
            "cat": rng.choice(["a", "b,c", 'q"d'], 50),
        }
    )


@pytest.mark.parametrize("ext", [".csv", ".csv.gz", ".tsv", ".parquet"])
def test_round_trip_exact(tmp_path, ext):
    df = _frame()
    path = write_table(df, tmp_path / f"t{ext}")
    back = read_table(path)
    pd.testing.assert_frame_equal(back, df, check_exact=True)


def test_refuses_existing_then_overwrites(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("old\n")
    with pytest.raises(OutputExistsError, match="exists; pass --overwrite"):
        write_table(_frame(), path)
    assert path.read_text() == "old\n"
    write_table(_frame(), path, overwrite=True)
    assert len(read_table(path)) == 50


def test_missing_output_dir(tmp_path):
    with pytest.raises(InputFileError, match="does not exist"):
        write_table(_frame(), tmp_path / "no" / "t.csv")


def test_failure_leaves_no_temp_file(tmp_path):
    bad = pd.DataFrame({"x": [object()]})  # parquet cannot store a bare object
    with pytest.raises(Exception):  # noqa: B017 - pyarrow's own error type
        write_table(bad, tmp_path / "t.parquet")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("content", "name", "match"),
    [
        (b"", "e.csv", "empty"),
        (b"a,b\n", "h.csv", "no data rows"),
        (b"\x00\xff\xfe garbage" * 20, "g.parquet", "cannot read"),
        (b"a,b\n\xff\xfe\x00,1\n", "u.csv", "cannot read"),
        (b"a", "t.json", "expected one of"),
    ],
)
def test_bad_inputs(tmp_path, content, name, match):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InputFileError, match=match) as info:
        read_table(path)
    assert "\n" not in str(info.value)


def test_missing_and_directory(tmp_path):
    with pytest.raises(InputFileError, match="does not exist"):
        read_table(tmp_path / "x.csv")
    (tmp_path / "d.csv").mkdir()
    with pytest.raises(InputFileError, match="directory"):
        read_table(tmp_path / "d.csv")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads everything")
def test_unreadable(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("a\n1\n")
    path.chmod(0)
    try:
        with pytest.raises(InputFileError, match="permission"):
            read_table(path)
    finally:
        path.chmod(0o600)


def test_atomic_output_dir(tmp_path):
    target = tmp_path / "model"
    with pytest.raises(RuntimeError):
        with atomic_output_dir(target) as tmp:
            (tmp / "a.json").write_text("{}")
            raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []
    with atomic_output_dir(target) as tmp:
        (tmp / "a.json").write_text("{}")
    assert sorted(p.name for p in target.iterdir()) == ["a.json"]
    with pytest.raises(OutputExistsError):
        with atomic_output_dir(target):
            pass
    with atomic_output_dir(target, overwrite=True) as tmp:
        (tmp / "b.json").write_text("{}")
    assert sorted(p.name for p in target.iterdir()) == ["b.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_input_never_modified(tmp_path):
    path = tmp_path / "in.csv"
    path.write_bytes(b"a,b\n1.10,x\n2.0,y\n")
    before = Path(path).read_bytes()
    read_table(path)
    assert path.read_bytes() == before


def test_outputs_get_the_usual_permissions_not_the_temp_files_0600(tmp_path):
    """Atomic writes go through temp files (mode 0600 / 0700 by default); the published
    outputs must get the permissions any other file of the user gets (0666 / 0777 & ~umask)."""
    import stat

    old = os.umask(0o022)
    try:
        f = write_table(pd.DataFrame({"a": [1]}), tmp_path / "t.csv")
        with atomic_output_dir(tmp_path / "d") as tmp:
            (tmp / "x.txt").write_text("x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(f.stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "d").stat().st_mode) == 0o755
