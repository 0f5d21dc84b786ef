"""Faults while writing: interrupted or killed runs, full disks, unwritable directories.

The promise: the output path holds either the complete previous output or the complete new
one (or nothing if there was none), never a half-written file; a failed write is one clear
error line (CLI exit code 2). A SIGKILLed process cannot clean up, so it may leave a hidden
temporary sibling (``.NAME.*.tmp``) behind - never at the output path itself.
"""

from __future__ import annotations

import errno
import os
import resource
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from reliability_support import leftovers
from typer.testing import CliRunner

import equisynth.io as eio
from equisynth.cli.app import app
from equisynth.exceptions import OutputError
from equisynth.io import atomic_output_dir, write_table

runner = CliRunner()
SRC = Path(__file__).resolve().parents[2] / "src"


def _frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "k": rng.integers(0, 100, n),
            "s": rng.choice(["F", "M"], n),
            "y": rng.integers(0, 2, n),
        }
    )


def _input(tmp_path: Path, n: int = 60) -> Path:
    path = tmp_path / "in.csv"
    _frame(n, 0).to_csv(path, index=False)
    return path


# ------------------------------------------------------------- interrupted in-process writes
class _Interrupt(BaseException):
    pass


def _half_then(exc: BaseException):
    """A DataFrame writer that writes some bytes, then fails like a signal or a full disk."""

    def writer(self, fh, *args, **kwargs):
        fh.write(b"x,k,s,y\n0.5,1,F,")
        fh.flush()
        raise exc

    return writer


@pytest.mark.parametrize("ext", [".csv", ".parquet"])
@pytest.mark.parametrize("exc", [KeyboardInterrupt(), _Interrupt(), OSError(errno.ENOSPC, "full")])
def test_failure_mid_write_keeps_previous_output(tmp_path, monkeypatch, ext, exc):
    path = tmp_path / f"out{ext}"
    write_table(_frame(20, 1), path)
    previous = path.read_bytes()
    method = "to_parquet" if ext == ".parquet" else "to_csv"
    monkeypatch.setattr(pd.DataFrame, method, _half_then(exc))
    expected = OutputError if isinstance(exc, OSError) else type(exc)
    with pytest.raises(expected):
        write_table(_frame(30, 2), path, overwrite=True)
    assert path.read_bytes() == previous
    assert not leftovers(tmp_path, path.name)


def test_failure_mid_write_leaves_nothing_when_new(tmp_path, monkeypatch):
    path = tmp_path / "out.csv"
    monkeypatch.setattr(pd.DataFrame, "to_csv", _half_then(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        write_table(_frame(30, 2), path)
    assert not path.exists()
    assert not leftovers(tmp_path, path.name)


def test_failure_inside_output_dir_keeps_previous(tmp_path):
    target = tmp_path / "model"
    with atomic_output_dir(target) as tmp:
        (tmp / "config.json").write_text("old")
    with pytest.raises(KeyboardInterrupt), atomic_output_dir(target, overwrite=True) as tmp:
        (tmp / "config.json").write_text("new, half")
        raise KeyboardInterrupt
    assert (target / "config.json").read_text() == "old"
    assert not leftovers(tmp_path, "model")


def test_cli_interrupted_while_writing_leaves_no_output(tmp_path, monkeypatch):
    inp = _input(tmp_path)
    out = tmp_path / "out.csv"
    monkeypatch.setattr(pd.DataFrame, "to_csv", _half_then(KeyboardInterrupt()))
    args = ["rebalance", inp, "--target", "y", "--sensitive", "s", "--out", out]
    result = runner.invoke(app, [str(a) for a in [*args, "--method", "random", "-q"]])
    assert result.exit_code != 0
    assert not out.exists() and not leftovers(tmp_path, "out.csv")


# ------------------------------------------------------------- killed processes (SIGINT, SIGKILL)
def _fork(child) -> tuple[int, int]:
    """Run ``child(write_fd)`` in a forked process (no re-import); returns (pid, read_fd)."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        os.close(read_fd)
        code = 0
        try:
            child(write_fd)
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    os.close(write_fd)
    return pid, read_fd


def _rewrite_forever(target: Path, kind: str):
    frames = [pd.DataFrame({"v": np.full(200_000, i, dtype=np.int64)}) for i in (1, 2)]

    def child(fd):
        signal.signal(signal.SIGINT, signal.default_int_handler)
        os.write(fd, b"r")
        i = 0
        while True:
            if kind == "file":
                write_table(frames[i % 2], target, overwrite=True)
            else:
                with atomic_output_dir(target, overwrite=True, marker="a.csv") as tmp:
                    frames[i % 2].to_csv(tmp / "a.csv", index=False)
                    frames[i % 2].to_csv(tmp / "b.csv", index=False)
            i += 1

    return child


def _check_complete_table(path: Path) -> None:
    values = pd.read_csv(path)["v"]
    assert len(values) == 200_000 and values.nunique() == 1 and values.iloc[0] in (1, 2)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["file", "directory"])
def test_killed_writer_leaves_complete_output(tmp_path, kind):
    """Kill (SIGINT, SIGKILL) a process that rewrites an output in a loop, at random moments."""
    target = tmp_path / ("out.csv" if kind == "file" else "outdir")
    rng = np.random.default_rng(len(kind))
    for sig in (signal.SIGINT, signal.SIGKILL, signal.SIGINT, signal.SIGKILL):
        pid, fd = _fork(_rewrite_forever(target, kind))
        assert os.read(fd, 1) == b"r"
        os.close(fd)
        time.sleep(float(rng.uniform(0.05, 0.6)))
        os.kill(pid, sig)
        os.waitpid(pid, 0)
        if kind == "file":
            if target.exists():
                _check_complete_table(target)
        elif target.exists():
            _check_complete_table(target / "a.csv")
            _check_complete_table(target / "b.csv")
        stray = leftovers(tmp_path, target.name)
        if sig == signal.SIGINT:  # the process cleaned up after itself
            assert not stray, stray
        else:  # nothing to clean up with; only hidden temporary names may remain
            for name in stray:
                assert name.startswith(f".{target.name}.")
                path = tmp_path / name
                shutil.rmtree(path) if path.is_dir() else path.unlink()


@pytest.mark.slow
def test_killed_rebalance_keeps_previous_or_new_complete_output(tmp_path):
    """SIGKILL / SIGINT a process running ``rebalance --overwrite`` at random moments."""
    inp = tmp_path / "in.csv"
    _frame(40_000, 0).to_csv(inp, index=False)

    def args(out: Path, seed: int) -> list[str]:
        return ["rebalance", str(inp), "--target", "y", "--sensitive", "s", "--method",
                "random", "--seed", str(seed), "--out", str(out), "--overwrite", "-q"]  # fmt: skip

    references, duration = [], 0.0
    for seed in (0, 1):  # same seed, same bytes: these are what a complete run writes
        ref = tmp_path / f"ref{seed}.csv"
        start = time.perf_counter()
        assert runner.invoke(app, args(ref, seed)).exit_code == 0
        duration = time.perf_counter() - start
        references.append(ref.read_bytes())
    assert references[0] != references[1]
    out = tmp_path / "out.csv"
    rng = np.random.default_rng(7)
    for sig in (signal.SIGKILL, signal.SIGINT, signal.SIGKILL, signal.SIGINT):
        out.write_bytes(references[0])

        def child(fd):
            signal.signal(signal.SIGINT, signal.default_int_handler)
            os.write(fd, b"r")
            runner.invoke(app, args(out, 1), catch_exceptions=False)

        pid, fd = _fork(child)
        assert os.read(fd, 1) == b"r"
        os.close(fd)
        time.sleep(float(rng.uniform(0.2, 1.2)) * duration)
        os.kill(pid, sig)
        os.waitpid(pid, 0)
        data = out.read_bytes()
        assert data in references, "a half-written output"
        assert all(n.endswith(".tmp") for n in leftovers(tmp_path, "out.csv"))


# ------------------------------------------------------------- full disks, unwritable dirs
def _assert_one_line_error(result, *needles: str) -> str:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert lines and lines[-1].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in lines[-1], lines[-1]
    return lines[-1]


def test_disk_full_is_one_clear_line(tmp_path, monkeypatch):
    inp = _input(tmp_path)
    raw = inp.read_bytes()
    out = tmp_path / "out.csv"

    def no_space(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(eio.os, "fsync", no_space)
    args = ["rebalance", inp, "--target", "y", "--sensitive", "s", "--out", out]
    result = runner.invoke(app, [str(a) for a in [*args, "--method", "random", "-q"]])
    _assert_one_line_error(result, "No space left on device", str(out), "free disk space")
    assert not out.exists() and not leftovers(tmp_path, "out.csv")
    assert inp.read_bytes() == raw


def test_file_size_limit_in_a_real_process(tmp_path):
    """RLIMIT_FSIZE makes the kernel refuse the write (EFBIG), as a full disk would (ENOSPC)."""
    inp = tmp_path / "in.csv"
    _frame(5000, 0).to_csv(inp, index=False)
    raw = inp.read_bytes()
    out = tmp_path / "out.csv"
    args = ["rebalance", str(inp), "--target", "y", "--sensitive", "s", "--method", "random"]
    args += ["--out", str(out), "-q"]

    def child(fd):
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (len(raw) // 2, len(raw) // 2))
        result = runner.invoke(app, args)
        os.write(fd, f"{result.exit_code}\n{result.stderr}".encode())

    pid, fd = _fork(child)
    with os.fdopen(fd, "rb") as fh:
        code, _, stderr = fh.read().decode().partition("\n")
    os.waitpid(pid, 0)
    assert code == "2", stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("error: cannot write") and "File too large" in last, stderr
    assert "Traceback" not in stderr
    assert not out.exists() and not leftovers(tmp_path, "out.csv")
    assert inp.read_bytes() == raw


@pytest.fixture
def tiny_tmpfs(tmp_path):
    """A real 64 KiB filesystem (needs root and mount; skipped elsewhere)."""
    mount_point = tmp_path / "tiny"
    mount_point.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount_point)],
        capture_output=True,
    )
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.decode().strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=False)


def test_really_full_disk(tmp_path, tiny_tmpfs):
    inp = tmp_path / "in.csv"
    _frame(5000, 0).to_csv(inp, index=False)
    out = tiny_tmpfs / "out.csv"
    args = ["rebalance", inp, "--target", "y", "--sensitive", "s", "--out", out]
    result = runner.invoke(app, [str(a) for a in [*args, "--method", "random", "-q"]])
    _assert_one_line_error(result, "No space left on device")
    assert list(tiny_tmpfs.iterdir()) == []


def _unwritable_dir(tmp_path: Path) -> Path:
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o555)
        return locked
    if Path("/sys").is_dir():  # root may write anywhere except read-only kernel filesystems
        return Path("/sys")
    pytest.skip("no unwritable directory available to root here")


@pytest.mark.parametrize("command", ["rebalance", "fit"])
def test_unwritable_output_directory(tmp_path, command):
    inp = _input(tmp_path)
    out = _unwritable_dir(tmp_path) / ("model" if command == "fit" else "out.csv")
    args = [command, inp, "--target", "y", "--sensitive", "s", "--out", out, "-q"]
    args += ["--method", "random"] if command == "rebalance" else ["--n-iter", "1"]
    result = runner.invoke(app, [str(a) for a in args])
    _assert_one_line_error(result, str(out.parent))
    assert not out.exists()


def test_output_directory_that_does_not_exist(tmp_path):
    inp = _input(tmp_path)
    out = tmp_path / "no" / "such" / "dir" / "out.csv"
    args = ["rebalance", inp, "--target", "y", "--sensitive", "s", "--out", out]
    result = runner.invoke(app, [str(a) for a in [*args, "--method", "random", "-q"]])
    _assert_one_line_error(result, "does not exist")


def test_overwrite_never_deletes_an_unrelated_directory(tmp_path):
    inp = _input(tmp_path)
    precious = tmp_path / "thesis"
    precious.mkdir()
    (precious / "chapter1.tex").write_text("years of work")
    args = ["fit", inp, "--target", "y", "--sensitive", "s", "--out", precious, "--overwrite"]
    result = runner.invoke(app, [str(a) for a in [*args, "--n-iter", "1", "-q"]])
    _assert_one_line_error(result, "refusing to replace")
    assert (precious / "chapter1.tex").read_text() == "years of work"


def test_quality_overwrite_never_deletes_an_unrelated_directory(tmp_path):
    from equisynth.evaluation.quality import write_quality_outputs
    from equisynth.exceptions import OutputExistsError

    table = pd.DataFrame(
        {"metric": ["c2st_auc"], "stratum": ["all"], "column": [""], "value": [0.5]}
    )
    precious = tmp_path / "thesis"
    precious.mkdir()
    (precious / "chapter1.tex").write_text("years of work")
    with pytest.raises(OutputExistsError, match="not an earlier quality report"):
        write_quality_outputs(table, precious, overwrite=True, plots=False)
    assert (precious / "chapter1.tex").read_text() == "years of work"
    report = tmp_path / "report"
    write_quality_outputs(table, report, plots=False)
    write_quality_outputs(table, report, overwrite=True, plots=False)  # an earlier report: fine
    assert (report / "quality.csv").is_file()
