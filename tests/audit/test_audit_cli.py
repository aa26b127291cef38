"""``cloisonne audit verify | export | head`` run through ``main(argv)``."""

from __future__ import annotations

import argparse
import io
import json
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from cloisonne.audit.chain import Event, verify
from cloisonne.audit.events import NewEvent
from cloisonne.audit.store import AuditStore, events_table
from cloisonne.platform import audit_cli as cli

T0 = datetime(2026, 11, 29, 12, 0, 0, tzinfo=UTC)


@pytest.fixture
def url(tmp_path) -> str:
    url = f"sqlite:///{tmp_path}/audit.db"
    store = AuditStore(url)
    store.append_many(
        NewEvent("test.event", "alice", "diabete", {"i": i}, T0 + timedelta(hours=i))
        for i in range(1, 6)
    )
    store.close()
    return url


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = cli.main(list(argv), out=out)
    return code, out.getvalue()


def test_verify_ok(url: str) -> None:
    code, text = run("audit", "verify", "--db", url)
    assert code == 0 and text.startswith("ok: 5 events")


def test_verify_names_the_first_bad_event(url: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.update(events_table).where(events_table.c.seq == 3).values(type="x"))
    engine.dispose()
    code, text = run("audit", "verify", "--db", url)
    assert code == 1 and "BAD at event 3" in text
    code, text = run("audit", "verify", "--db", url, "--json")
    assert code == 1 and json.loads(text)["first_bad_seq"] == 3


def test_verify_with_expected_head(url: str) -> None:
    _, head = run("audit", "head", "--db", url)
    seq, digest = head.split()
    assert seq == "5"
    assert run("audit", "verify", "--db", url, "--expected-head", digest)[0] == 0
    assert run("audit", "verify", "--db", url, "--expected-head", "f" * 64)[0] == 1


def test_head_json(url: str) -> None:
    code, text = run("audit", "head", "--db", url, "--json")
    assert code == 0 and json.loads(text)["seq"] == 5


def test_export_json_lines_since(url: str, tmp_path, monkeypatch) -> None:
    code, text = run("audit", "export", "--db", url)
    lines = [json.loads(line) for line in text.splitlines()]
    assert code == 0 and [line["seq"] for line in lines] == [1, 2, 3, 4, 5]
    # The export is self-verifying: the lines are the events, hashes included.
    assert verify(Event(**line) for line in lines).ok
    monkeypatch.setenv(cli.DB_ENV, url)
    out = tmp_path / "events.jsonl"
    code, _ = run("audit", "export", "--since", "2026-11-29T15:00:00+00:00", "-o", str(out))
    assert code == 0 and [json.loads(x)["seq"] for x in out.read_text().splitlines()] == [3, 4, 5]
    code, text = run("audit", "export", "--since", "2026-11-29T16:00")  # no zone: UTC
    assert [json.loads(x)["seq"] for x in text.splitlines()] == [4, 5]


def test_bad_since_is_a_usage_error(url: str) -> None:
    with pytest.raises(SystemExit) as exc:
        run("audit", "export", "--db", url, "--since", "yesterday")
    assert exc.value.code == 2


def test_missing_database_url(monkeypatch) -> None:
    monkeypatch.delenv(cli.DB_ENV, raising=False)
    with pytest.raises(SystemExit, match="--db"):
        run("audit", "head")


def test_missing_tables_are_not_created(tmp_path, capsys) -> None:
    url = f"sqlite:///{tmp_path}/empty.db"
    code, _ = run("audit", "head", "--db", url)
    assert code == 2 and "cloisonne audit:" in capsys.readouterr().err
    assert run("audit", "verify", "--db", url)[0] == 2


def test_add_parser_plugs_into_another_command() -> None:
    parser = argparse.ArgumentParser(prog="cloisonne")
    sub = parser.add_subparsers(dest="command")
    cli.add_parser(sub)
    args = parser.parse_args(["audit", "head", "--db", "sqlite://"])
    assert args.func is cli.cmd_head
