"""The sfmodels sub-commands end to end against the emulator."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from sfmodels.cli import main
from sfmodels_emulator import Emulator

from .test_demo import CREDENTIALS


@pytest.fixture
def env(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Emulator:
    """The environment a user gets by pasting `sfmodels emulator`'s export lines."""
    for var in CREDENTIALS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("DATABRICKS_CONFIG_FILE", "/nonexistent")
    for key, value in emulator.env().items():
        monkeypatch.setenv(key, value)
    return emulator


def test_chat_salesforce(env: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["chat", "Hello there"]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip()
    assert "[generation id " in captured.err and "prompt +" in captured.err


def test_chat_databricks_streams_and_reads_stdin(env: Emulator, capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("Tell me about rivers\n"))
    assert main(["chat", "--provider", "databricks", "--system", "Be brief."]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip()
    assert captured.err.count("completion tokens") == 1
    assert env.counters()["requests"]["databricks.invocations"] == 1


def test_embed_writes_jsonl_and_resumes(env: Emulator, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "notes.txt"
    source.write_text("first line\n\nsecond line\nthird line\n")
    out = tmp_path / "vectors.jsonl"
    assert main(["embed", str(source), "--out", str(out), "--batch-size", "2"]) == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in records] == [f"{source}:1", f"{source}:3", f"{source}:4"]
    assert all(len(r["embedding"]) == 1024 for r in records)
    assert "embedded 3 texts" in capsys.readouterr().err
    # An interrupted run left a half-written line; new lines were added to the file since.
    with out.open("a") as handle:
        handle.write('{"id": "broken')
    with source.open("a") as handle:
        handle.write("fourth line\n")
    requests = env.counters()["requests"]["databricks.invocations"]
    assert main(["embed", str(source), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "embedded 1 texts" in err and "skipped 3" in err
    assert env.counters()["requests"]["databricks.invocations"] == requests + 1
    lines = out.read_text().splitlines()
    assert lines[3] == '{"id": "broken'  # left as it was, never merged with a new record
    assert json.loads(lines[4])["id"] == f"{source}:5"


def test_embed_salesforce_whole_files(env: Emulator, tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("Returns within 30 days.")
    (tmp_path / "b.md").write_text("Shipping takes five days.")
    out = tmp_path / "v.jsonl"
    assert main(["embed", str(tmp_path / "a.md"), str(tmp_path / "b.md"), "--whole-files",
                 "--provider", "salesforce", "--out", str(out)]) == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [len(r["embedding"]) for r in records] == [1536, 1536]


def test_feedback(env: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["feedback", "gen-123", "BAD", "--text", "wrong city"]) == 0
    assert "recorded for generation gen-123" in capsys.readouterr().out
    recorded = env.feedback()[-1]
    assert (recorded["generationId"], recorded["feedback"], recorded["feedbackText"]) == (
        "gen-123", "BAD", "wrong city")


def test_token_good_credentials(env: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["token"]) == 0
    out = capsys.readouterr().out
    assert "OAuth client credentials" in out and "token: minted" in out
    assert "personal access token" in out and out.count("  OK") == 2
    assert env.salesforce_client_secret not in out and env.databricks_token not in out


@pytest.mark.parametrize("var, value, expected", [
    ("SALESFORCE_CLIENT_SECRET", "wrong-secret", "consumer"),
    ("SALESFORCE_DOMAIN", "{login}", "My Domain"),
])
def test_token_bad_salesforce_credentials_give_hints(
        env: Emulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        var: str, value: str, expected: str) -> None:
    monkeypatch.setenv(var, value.format(login=env.salesforce_login_url))
    assert main(["token", "--provider", "salesforce"]) == 1
    out = capsys.readouterr().out
    assert "FAILED" in out and expected in out
    assert "Traceback" not in out


def test_token_ambiguous_databricks(env: Emulator, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DATABRICKS_CLIENT_ID", "sp")
    assert main(["token", "--provider", "databricks"]) == 1
    assert "Ambiguous" in capsys.readouterr().out


def test_expected_errors_print_one_line_and_exit_1(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    for var in CREDENTIALS:
        monkeypatch.delenv(var, raising=False)
    assert main(["chat", "hi"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: Salesforce credentials are missing")
    assert "Traceback" not in err


def test_every_command_explains_itself(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("demo", "chat", "embed", "feedback", "token", "emulator"):
        with pytest.raises(SystemExit) as done:
            main([command, "--help"])
        assert done.value.code == 0
        assert len(capsys.readouterr().out) > 200
    assert main([]) == 2


def test_the_progress_bar_shows_the_adaptive_limit(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("tqdm")
    from types import SimpleNamespace

    from sfmodels.cli.embed.progress import Progress

    progress = Progress(10, True, lambda: SimpleNamespace(limit=4, rate_limited=2))
    progress.update(3)
    progress.close()
    assert "4 in flight at most, 2 answered 429" in capsys.readouterr().err
