"""Notifications against a real local HTTP server (no mocks): delivery, retries with every
attempt journaled, and a dead webhook that never fails the reconciliation."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from console.changes import load_changeset
from console.config import NotifyConfig, Settings
from console.engine.apply import Engine
from console.engine.report import RunReport
from console.errors import Exit
from console.journal import Journal
from console.journal.verify import verify
from console.reconcile.notify import notify_rollback, post_webhook
from console.reconcile.service import reconcile_run
from tests.engine.helpers import changeset_doc, make_items, write_changeset


class Hook:
    """A webhook that answers 500 to the first ``fail`` requests, then 200."""

    def __init__(self, fail: int = 0) -> None:
        self.fail = fail
        self.bodies: list[dict[str, Any]] = []
        self.attempts = 0
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                hook.attempts += 1
                if hook.attempts <= hook.fail:
                    self.send_response(500)
                else:
                    hook.bodies.append(json.loads(body))
                    self.send_response(200)
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/T000/B000/secret"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook() -> Iterator[Hook]:
    h = Hook(fail=2)
    yield h
    h.close()


def _run(tmp_path: Path) -> tuple[Journal, str]:
    url = f"sqlite:///{tmp_path / 't.db'}"
    make_items(url, 20)
    j = Journal(f"sqlite:///{tmp_path / 'journal.db'}", actor="tester")
    doc = changeset_doc(url, updates=range(1, 6))
    report = Engine(j, Settings()).apply(load_changeset(write_changeset(tmp_path / "c.yaml", doc)))
    assert report.run_id
    return j, report.run_id


def test_webhook_fails_twice_then_succeeds_every_attempt_journaled(
    tmp_path: Path, hook: Hook
) -> None:
    j, run_id = _run(tmp_path)
    log = tmp_path / "notify.jsonl"
    settings = Settings(notify=NotifyConfig(webhook=hook.url, json_log=str(log), retries=3))
    res = reconcile_run(j, settings, run_id, notify=True)
    assert res.exit_code == Exit.DONE
    assert hook.attempts == 3 and len(hook.bodies) == 1
    body = hook.bodies[0]
    assert "applied 5" in body["text"] and body["counts"] == {"applied": 5}
    sent = [e.payload for e in j.events(run_id, kinds=["notify.*"])]
    assert [e["attempt"] for e in sent] == [1, 2, 3]
    assert [("error" in e, e.get("status")) for e in sent] == [(True, None)] * 2 + [(False, 200)]
    assert all("secret" not in e["url"] for e in sent)  # the webhook's path is its secret
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    assert len(lines) == 1 and lines[0]["run_id"] == run_id
    assert verify(j, remember=False).ok


def test_dead_webhook_never_fails_the_reconciliation(tmp_path: Path) -> None:
    j, run_id = _run(tmp_path)
    dead = Hook()
    url = dead.url
    dead.close()  # nothing listens there any more
    settings = Settings(notify=NotifyConfig(webhook=url, retries=1))
    res = reconcile_run(j, settings, run_id, notify=True)
    assert res.exit_code == Exit.DONE
    failed = j.events(run_id, kinds=["notify.failed"])
    assert [e.payload["attempt"] for e in failed] == [1, 2]
    assert j.count_events(run_id, ["reconcile.finished"]) == 1


def test_rollback_summary_and_direct_post(hook: Hook) -> None:
    hook.fail = 0

    report = RunReport("r1", "rolled_back", "rollback of run r1: reverted 5 rows", Exit.DONE)
    assert notify_rollback(None, Settings(notify=NotifyConfig(webhook=hook.url)), report) == {
        "webhook": "ok"
    }
    assert hook.bodies[0]["text"].startswith("rollback of run r1")
    assert post_webhook(None, None, hook.url, "hi", {}, retries=0) == "ok"


def test_configured_channels_are_used_by_default_and_no_notify_skips(
    tmp_path: Path, hook: Hook
) -> None:
    hook.fail = 0
    j, run_id = _run(tmp_path)
    settings = Settings(notify=NotifyConfig(webhook=hook.url))
    reconcile_run(j, settings, run_id)  # nobody asked: the configured channel is used
    assert len(hook.bodies) == 1 and hook.bodies[0]["event"] == "reconcile"
    reconcile_run(j, settings, run_id, notify=False)
    assert len(hook.bodies) == 1
    reconcile_run(j, Settings(), run_id, notify=True)  # nothing configured: nothing sent
    assert len(hook.bodies) == 1


def test_unwritable_json_log_is_journaled_never_fatal(tmp_path: Path) -> None:
    j, run_id = _run(tmp_path)
    log = tmp_path / "missing-dir" / "notify.jsonl"
    res = reconcile_run(j, Settings(notify=NotifyConfig(json_log=str(log))), run_id)
    assert res.exit_code == Exit.DONE
    failed = [e.payload for e in j.events(run_id, kinds=["notify.failed"])]
    assert len(failed) == 1 and failed[0]["channel"] == "json_log"
    assert "No such file" in failed[0]["error"]


def test_rollback_cli_notifies_configured_channels(tmp_path: Path, hook: Hook) -> None:
    from typer.testing import CliRunner

    import console.cli  # noqa: F401 - registers every command on the app
    from console.cli.app import app

    hook.fail = 0
    _j, run_id = _run(tmp_path)
    jpath = tmp_path / "journal.db"
    config = tmp_path / "backout.toml"
    config.write_text(f'[notify]\nwebhook = "{hook.url}"\nretries = 0\n')

    def rollback(*extra: str) -> int:
        args = ["--journal", str(jpath), "--as", "tester", "rollback", run_id, *extra]
        r = CliRunner().invoke(app, args, env={"BACKOUT_CONFIG": str(config)})
        return r.exit_code

    assert rollback("--dry-run") == 0
    assert hook.bodies == []  # a dry run changes nothing: nothing to announce
    assert rollback("--no-notify") == 0
    assert hook.bodies == []
    # a second rollback of the same run is refused or a no-op, and still announced
    rollback()
    assert len(hook.bodies) == 1 and hook.bodies[0]["event"] == "rollback"
    assert hook.bodies[0]["run_id"]
