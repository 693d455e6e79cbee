"""`sfmodels embed` keeps one model's vectors per file, resumes from record keys only, streams
its input, refuses user errors in one line, and survives Ctrl-C."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from array import array
from pathlib import Path
from typing import Any

import pytest

from sfmodels.cli import main
from sfmodels_emulator import Emulator
from sfmodels_emulator.text.embeddings import embedding_json

from .test_commands import env  # noqa: F401  (the fixture pointing the environment at it)

ROOT = Path(__file__).resolve().parents[2]
DIMENSIONS = {"databricks": 1024, "salesforce": 1536}


def records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def expected_vector(text: str, provider: str = "databricks") -> list[float]:
    """What the emulator answers for ``text`` (its embeddings are a function of the text)."""
    vector: list[float] = json.loads(embedding_json(text, DIMENSIONS[provider]))
    return vector


def invocations(emu: Emulator) -> int:
    return int(emu.counters()["requests"].get("databricks.invocations", 0))


# -- 15.8: one model per file, keyed by provider, model and a hash of the text --------------------
def test_records_carry_provider_model_and_text_hash_first(env: Emulator,  # noqa: F811
                                                          tmp_path: Path) -> None:
    source = tmp_path / "notes.txt"
    source.write_text("first line\nsecond line\n")
    out = tmp_path / "v.jsonl"
    assert main(["embed", str(source), "--out", str(out)]) == 0
    first = out.read_text().splitlines()[0]
    record = json.loads(first)
    assert list(record) == ["id", "provider", "model", "instruction", "sha256", "text",
                            "embedding"]
    assert record["provider"] == "databricks" and record["model"] == "databricks-gte-large-en"
    assert record["sha256"] == hashlib.sha256(b"first line").hexdigest()
    assert record["embedding"] == expected_vector("first line")


def test_another_model_is_refused_and_the_file_left_alone(
        env: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    source = tmp_path / "notes.txt"
    source.write_text("first line\nsecond line\n")
    out = tmp_path / "v.jsonl"
    assert main(["embed", str(source), "--out", str(out)]) == 0
    before = out.read_bytes()
    capsys.readouterr()
    for extra in (["--provider", "salesforce"], ["--model", "databricks-bge-large-en"],
                  ["--instruction", "Represent this sentence for searching:"]):
        assert main(["embed", str(source), "--out", str(out), *extra]) == 1
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1, err
        assert "databricks-gte-large-en" in err and "another --out" in err
    assert out.read_bytes() == before


def test_a_file_without_provider_and_model_is_refused(
        env: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    source = tmp_path / "notes.txt"
    source.write_text("first line\n")
    out = tmp_path / "v.jsonl"
    out.write_text(json.dumps({"id": f"{source}:1", "text": "first line",
                               "embedding": [0.5] * 8}) + "\n")
    assert main(["embed", str(source), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "provider" in err and "Traceback" not in err
    assert invocations(env) == 0


def test_a_changed_line_is_embedded_again_and_unchanged_ones_skipped(
        env: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    source = tmp_path / "notes.txt"
    source.write_text("first line\nsecond line\nthird line\n")
    out = tmp_path / "v.jsonl"
    assert main(["embed", str(source), "--out", str(out)]) == 0
    source.write_text("first line\nsecond line, edited\nthird line\n")
    capsys.readouterr()
    sent = invocations(env)
    assert main(["embed", str(source), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "embedded 1 texts" in err and "skipped 2" in err and "of those, 1 changed" in err
    assert invocations(env) == sent + 1
    latest = {r["id"]: r for r in records(out)}  # the last record of an id is the current one
    assert latest[f"{source}:2"]["text"] == "second line, edited"
    assert latest[f"{source}:2"]["embedding"] == expected_vector("second line, edited")
    # Once more: nothing to do, whatever stale records the file holds.
    assert main(["embed", str(source), "--out", str(out)]) == 0
    assert "embedded 0 texts" in capsys.readouterr().err
    assert invocations(env) == sent + 1


def test_a_resume_with_nothing_to_do_never_decodes_a_vector(
        env: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
        capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "notes.txt"
    source.write_text("".join(f"line number {i}\n" for i in range(300)))
    out = tmp_path / "v.jsonl"
    assert main(["embed", str(source), "--out", str(out)]) == 0
    decoded: list[int] = []
    real_loads, real_from_json = json.loads, __import__("pydantic_core").from_json

    def spy_loads(text: Any, *args: Any, **kwargs: Any) -> Any:
        if b'"embedding"' in (text if isinstance(text, bytes) else str(text).encode()):
            decoded.append(len(text))
        return real_loads(text, *args, **kwargs)

    def spy_from_json(data: Any, *args: Any, **kwargs: Any) -> Any:
        decoded.append(len(data))
        return real_from_json(data, *args, **kwargs)

    monkeypatch.setattr(json, "loads", spy_loads)
    monkeypatch.setattr("pydantic_core.from_json", spy_from_json)
    capsys.readouterr()
    assert main(["embed", str(source), "--out", str(out)]) == 0
    assert "skipped 300" in capsys.readouterr().err
    assert decoded == []


# -- 15.9: user errors are one line, exit 1, and leave no file behind -----------------------------
def _one_error_line(err: str) -> None:
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err


def test_out_into_a_missing_folder(env: Emulator, tmp_path: Path,  # noqa: F811
                                   capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "notes.txt"
    source.write_text("first line\n")
    out = tmp_path / "missing" / "v.jsonl"
    assert main(["embed", str(source), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    _one_error_line(err)
    assert "missing" in err
    assert not out.parent.exists() and invocations(env) == 0


def test_a_non_utf8_input_names_the_line(env: Emulator, tmp_path: Path,  # noqa: F811
                                         capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "latin1.txt"
    source.write_bytes("caf\u00e9 au lait\n".encode("latin-1"))
    out = tmp_path / "v.jsonl"
    assert main(["embed", str(source), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    _one_error_line(err)
    assert f"{source}:1" in err and "UTF-8" in err
    assert not out.exists()


def test_a_missing_input_and_a_failed_run_leave_no_empty_file(
        env: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "v.jsonl"
    assert main(["embed", str(tmp_path / "nope.txt"), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    _one_error_line(err)
    assert "nope.txt" in err and not out.exists()
    source = tmp_path / "notes.txt"
    source.write_text("first line\n")
    monkeypatch.setenv("DATABRICKS_TOKEN", "wrong-token")
    assert main(["embed", str(source), "--out", str(out), "--provider", "databricks"]) == 1
    assert capsys.readouterr().err.startswith("error: ")
    assert not out.exists()


@pytest.mark.parametrize("flag", ["--batch-size", "--max-concurrency"])
@pytest.mark.parametrize("value", ["0", "-3"])
def test_bad_sizes_are_refused_with_the_flag_name(tmp_path: Path, flag: str, value: str,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["embed", str(tmp_path / "x.txt"), flag, value])
    assert done.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {flag}: " in err and "positive integer" in err and "Traceback" not in err


# -- 16.3: streaming ------------------------------------------------------------------------------
class WatchedLines(io.TextIOBase):
    """A stdin that notes how many requests the emulator had served when each line was read."""

    def __init__(self, lines: list[str], emu: Emulator, at: set[int]) -> None:
        self.lines, self.emu, self.at = iter(lines), emu, at
        self.read_count = 0
        self.seen: dict[int, int] = {}

    def readable(self) -> bool:
        return True

    def __next__(self) -> str:
        line = next(self.lines)
        self.read_count += 1
        if self.read_count in self.at:
            self.seen[self.read_count] = invocations(self.emu)
        return line

    def readline(self, size: int | None = -1) -> str:
        try:
            return next(self)
        except StopIteration:
            return ""

    def read(self, size: int | None = -1) -> str:
        return "".join(self)


def test_input_is_read_lazily_while_requests_are_sent(
        env: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
        capsys: pytest.CaptureFixture[str]) -> None:
    lines = [f"streamed line {i}\n" for i in range(2000)]
    stdin = WatchedLines(lines, env, at={1500, 2000})
    monkeypatch.setattr("sys.stdin", stdin)
    out = tmp_path / "v.jsonl"
    assert main(["embed", "-", "--out", str(out), "--batch-size", "10",
                 "--max-concurrency", "2"]) == 0
    # Requests went out long before the last line was read: the input was never read whole.
    assert stdin.seen[1500] >= 100
    assert invocations(env) == 200
    written = records(out)
    assert [r["id"] for r in written] == [f"stdin:{i}" for i in range(1, 2001)]
    assert written[1234]["embedding"] == expected_vector("streamed line 1234")


# -- 13.4: progress bar, Ctrl-C ------------------------------------------------------------------
class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_progress_bar_shows_rate_and_eta(env: Emulator, tmp_path: Path,  # noqa: F811
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("tqdm")
    source = tmp_path / "notes.txt"
    source.write_text("".join(f"line {i}\n" for i in range(40)))
    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    assert main(["embed", str(source), "--out", str(tmp_path / "v.jsonl"),
                 "--batch-size", "4"]) == 0
    shown = terminal.getvalue()
    assert "40/40" in shown and "texts/s" in shown
    assert "<00:" in shown  # the time left


def test_ctrl_c_leaves_a_file_that_resumes_cleanly(env: Emulator, tmp_path: Path,  # noqa: F811
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    texts = [f"interrupted line {i}" for i in range(2000)]
    source = tmp_path / "notes.txt"
    source.write_text("".join(t + "\n" for t in texts))
    out = tmp_path / "v.jsonl"
    env.configure(latency_ms=50)
    process = subprocess.Popen(
        [sys.executable, "-m", "sfmodels.cli", "embed", str(source), "--out", str(out),
         "--batch-size", "10", "--max-concurrency", "2"],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120  # a bound on waiting, not an assertion on speed
        while time.monotonic() < deadline and process.poll() is None and (
                not out.exists() or out.read_bytes().count(b"\n") < 100):
            time.sleep(0.05)
        assert process.poll() is None, process.communicate()
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130, err
    assert "interrupted" in err and "resume" in err and "Traceback" not in err
    lines = out.read_text().splitlines()
    assert 100 <= len(lines) < len(texts)
    first = [json.loads(line)["id"] for line in lines]  # every line a whole record
    env.configure(latency_ms=0)
    sent = invocations(env)
    capsys.readouterr()
    assert main(["embed", str(source), "--out", str(out), "--batch-size", "10"]) == 0
    assert f"skipped {len(first)}" in capsys.readouterr().err
    assert invocations(env) - sent == -(-(len(texts) - len(first)) // 10)
    written = records(out)
    assert sorted(r["id"] for r in written) == sorted(f"{source}:{i}" for i in range(1, 2001))
    for record in written:
        assert record["embedding"] == expected_vector(texts[int(record["id"].rsplit(":")[1]) - 1])


def test_ids_with_escapes_and_whole_files_resume(env: Emulator, tmp_path: Path,  # noqa: F811
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    odd = tmp_path / 'a "quoted" \\ name, caf\u00e9.md'
    odd.write_text("\ufeffReturns within 30 days.\n\nUnless opened.")
    out = tmp_path / "v.jsonl"
    for whole in ([], ["--whole-files"]):
        assert main(["embed", str(odd), "--out", str(out), *whole]) == 0
        capsys.readouterr()
        assert main(["embed", str(odd), "--out", str(out), *whole]) == 0
        assert "embedded 0 texts" in capsys.readouterr().err
    ids = [r["id"] for r in records(out)]
    assert ids == [f"{odd}:1", f"{odd}:3", str(odd)]
    assert records(out)[0]["text"] == "Returns within 30 days."  # the byte order mark is dropped


def test_the_resume_index_holds_many_keys_compactly() -> None:
    from sfmodels.cli.embed.resume_index import ResumeIndex, id_key

    index = ResumeIndex(capacity=8)
    keys = [id_key(f"file.txt:{i}") for i in range(20_000)]
    for number, key in enumerate(keys):
        index.put(key, number)
    index.put(keys[7], 12345)  # a later record of the same id wins
    assert len(index) == 20_000
    assert [index.get(k) for k in keys[:7]] == list(range(7)) and index.get(keys[7]) == 12345
    assert index.get(id_key("file.txt:20000")) is None


# -- compact vectors: float32 from the service to the file ---------------------------------------
def test_base64_vectors_are_the_float32_numbers_and_resume_like_the_others(
        env: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    source = tmp_path / "notes.txt"
    source.write_text("".join(f"line number {i} about cats\n" for i in range(40)))
    out = tmp_path / "v.jsonl"
    assert main(["embed", str(source), "--out", str(out), "--vectors", "base64"]) == 0
    written = records(out)
    assert len(written) == 40 and list(written[0]) == ["id", "provider", "model", "instruction",
                                                       "sha256", "text", "embedding"]
    for record in written:
        numbers = array("f", base64.b64decode(record["embedding"])).tolist()
        assert numbers == array("f", expected_vector(record["text"])).tolist()
    source.write_text(source.read_text() + "one more line\n")
    capsys.readouterr()
    sent = invocations(env)
    assert main(["embed", str(source), "--out", str(out), "--vectors", "base64"]) == 0
    assert "embedded 1 texts" in capsys.readouterr().err and invocations(env) == sent + 1
    before = out.read_bytes()
    assert main(["embed", str(source), "--out", str(out)]) == 1  # numbers into a base64 file
    assert "written as base64" in capsys.readouterr().err
    assert out.read_bytes() == before
    floats = tmp_path / "f.jsonl"
    assert main(["embed", str(source), "--out", str(floats)]) == 0
    assert main(["embed", str(source), "--out", str(floats), "--vectors", "base64"]) == 1
    assert "another --out" in capsys.readouterr().err


def test_base64_asks_the_service_for_base64_and_copes_when_it_refuses(
        env: Emulator, tmp_path: Path) -> None:  # noqa: F811
    source = tmp_path / "notes.txt"
    source.write_text("".join(f"line number {i}\n" for i in range(30)))
    env.configure(embedding_base64="reject")
    out = tmp_path / "v.jsonl"
    assert main(["embed", str(source), "--out", str(out), "--vectors", "base64"]) == 0
    assert [array("f", base64.b64decode(r["embedding"])).tolist() for r in records(out)] == \
        [array("f", expected_vector(r["text"])).tolist() for r in records(out)]
