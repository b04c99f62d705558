"""The HTTP intake end to end: real server, real journal, real SQLite target."""

from __future__ import annotations

import json
import re
import threading
from typing import Any

from console.config import Policy, RollbackPolicy, Settings, TargetConfig
from console.intake import tokens
from tests.engine.helpers import changeset_doc, dump, write_counts
from tests.intake.conftest import ServerFactory


def _post(server: Any, doc: Any, **kw: Any) -> Any:
    with server.client() as c:
        return c.post("/changesets", json=doc, **kw)


def test_happy_path_applies_in_background_as_the_token(serve: ServerFactory) -> None:
    s = serve()
    r = _post(s, changeset_doc(s.target_url, updates=range(1, 11)))
    assert r.status_code == 202, r.text
    run_id = r.json()["run_id"]
    assert r.json()["url"] == f"/runs/{run_id}"
    data = s.wait_status(run_id, ("completed",))
    assert data["counts"]["applied"] == 10
    assert data["steps"][0]["table"] == "items"
    assert write_counts(s.target_url) == dict.fromkeys(range(1, 11), 1)
    assert dump(s.target_url)[0][3] == "v2"
    with s.client() as c:
        events = c.get(f"/runs/{run_id}/events", params={"after": 0}).json()
        assert {e["actor"] for e in events["events"]} == {"n8n-prices"}
        kinds = [e["kind"] for e in events["events"]]
        assert "run.completed" in kinds and "intake.accepted" in kinds
        later = c.get(f"/runs/{run_id}/events", params={"after": events["next"]}).json()
        assert later["events"] == []
        listed = c.get("/runs").json()
        assert [x["id"] for x in listed] == [run_id]


def test_a_document_naming_an_unconfigured_database_is_refused(serve: ServerFactory) -> None:
    """A token writes only to the targets backout.toml names: a change set carrying another
    database's URL (here a real one, with the same table) is refused and nothing is written,
    while the configured target by name or by its URL is accepted."""
    s = serve()
    other = serve()  # another real target, not in this server's backout.toml
    before = dump(other.target_url)
    r = _post(s, changeset_doc(other.target_url, updates=range(1, 4)))
    assert r.status_code == 422 and "not a target in backout.toml" in r.json()["error"]
    assert dump(other.target_url) == before and write_counts(other.target_url) == {}
    with s.client() as c:
        assert c.get("/runs").json() == []
    by_name = changeset_doc("crm", updates=range(1, 4))
    assert _post(s, by_name).status_code == 202
    by_url = changeset_doc(s.target_url, updates=range(5, 7), name="by-url")
    assert _post(s, by_url).status_code == 202


def test_csv_body_with_query_parameters(serve: ServerFactory) -> None:
    probe = serve()
    settings = Settings(targets={"crm": TargetConfig(url=probe.target_url)})
    s = serve(settings)
    s.target_url = probe.target_url
    params = {"table": "items", "key": "id", "op": "update", "name": "csv-batch"}
    csv = b"id,note\n1,from-csv\n2,from-csv\n"
    with s.client() as c:
        r = c.post(
            "/changesets",
            content=csv,
            headers={"Content-Type": "text/csv"},
            params={**params, "target": "sqlite:////etc/x.db"},
        )
        assert r.status_code == 422 and "backout.toml" in r.json()["error"]
        r = c.post(
            "/changesets",
            content=csv,
            headers={"Content-Type": "text/csv"},
            params={**params, "target": "crm"},
        )
        assert r.status_code == 202, r.text
        s.wait_status(r.json()["run_id"], ("completed",))
        r = c.post(
            "/changesets",
            json=[{"id": 3, "note": "flat"}],
            params={**params, "name": "flat", "target": "crm"},
        )
        assert r.status_code == 202, r.text
        s.wait_status(r.json()["run_id"], ("completed",))
    notes = {row[0]: row[3] for row in dump(probe.target_url)}
    assert (notes[1], notes[2], notes[3]) == ("from-csv", "from-csv", "flat")


def test_bad_changeset_is_422_and_writes_nothing(serve: ServerFactory) -> None:
    s = serve()
    doc = changeset_doc(s.target_url, updates=range(1, 3))
    doc["steps"][0]["operations"][0]["set"] = {"no_such_column": 1}
    r = _post(s, doc)
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["problems"] and "no_such_column" in json.dumps(body)
    assert all(p["file"] == "request body" for p in body["problems"])
    r = _post(s, {"changeset": "x"})
    assert r.status_code == 422 and r.json()["problems"]
    j = s.journal()
    assert j.runs() == []
    j.close()
    assert write_counts(s.target_url) == {}
    assert not any(s.config.intake_dir.glob("*.json"))


def test_same_idempotency_key_gives_one_run(serve: ServerFactory) -> None:
    s = serve()
    doc = changeset_doc(s.target_url, updates=range(1, 6))
    first = _post(s, doc, headers={"Idempotency-Key": "exec-77"})
    second = _post(s, doc, headers={"Idempotency-Key": "exec-77"})
    assert first.status_code == second.status_code == 202
    assert first.json()["run_id"] == second.json()["run_id"]
    assert second.json()["replayed"] is True
    s.wait_status(first.json()["run_id"], ("completed",))
    # Double-fired at once, without a key: name+version+digest is the key.
    doc2 = changeset_doc(s.target_url, name="other", updates=range(6, 9))
    answers: list[Any] = []
    threads = [threading.Thread(target=lambda: answers.append(_post(s, doc2))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [a.status_code for a in answers] == [202, 202]
    assert answers[0].json()["run_id"] == answers[1].json()["run_id"]
    j = s.journal()
    assert len(j.runs()) == 2
    j.close()
    # The same key for other content is refused, not silently replayed.
    third = changeset_doc(s.target_url, name="third", updates=range(1, 2))
    r = _post(s, third, headers={"Idempotency-Key": "exec-77"})
    assert r.status_code == 409


def test_missing_unknown_and_revoked_tokens_are_401(serve: ServerFactory) -> None:
    s = serve()
    for token in ("", "bko_nope"):
        with s.client(token) as c:
            for method, path in (("GET", "/runs"), ("GET", "/metrics"), ("POST", "/changesets")):
                r = c.request(method, path)
                assert r.status_code == 401, (path, r.text)
                assert r.json()["error"]
    j = s.journal()
    tokens.revoke(j, "n8n-prices")
    assert j.events(kinds=["token.revoked"])[0].payload == {"name": "n8n-prices"}
    j.close()
    with s.client() as c:
        assert c.get("/runs").status_code == 401


def test_body_over_the_cap_is_413(serve: ServerFactory) -> None:
    s = serve(max_body=1024)
    r = _post(s, changeset_doc(s.target_url, updates=range(1, 21)))
    assert r.status_code == 413
    assert "error" in r.json()


def test_rate_limit_per_token_is_429(serve: ServerFactory) -> None:
    s = serve(rate=0.01, burst=2)
    with s.client() as c:
        codes = [c.get("/runs").status_code for _ in range(3)]
    assert codes == [200, 200, 429]


def test_rollback_refused_under_require_runbook(serve: ServerFactory) -> None:
    settings = Settings(policy=Policy(rollback=RollbackPolicy(require_runbook=True)))
    s = serve(settings)
    run_id = _post(s, changeset_doc(s.target_url, updates=range(1, 4))).json()["run_id"]
    s.wait_status(run_id, ("completed",))
    with s.client() as c:
        r = c.post(f"/runs/{run_id}/rollback")
    assert r.status_code == 403
    assert r.json()["runbook"] == "rollback-batch"
    j = s.journal()
    refused = j.events(kinds=["gate.refused"])
    assert refused and refused[-1].actor == "n8n-prices"
    j.close()


def test_rollback_through_the_gate_restores(serve: ServerFactory) -> None:
    s = serve()
    before = dump(s.target_url)
    run_id = _post(s, changeset_doc(s.target_url, updates=range(1, 4))).json()["run_id"]
    s.wait_status(run_id, ("completed",))
    with s.client() as c:
        r = c.post(f"/runs/{run_id}/rollback")
        assert r.status_code == 202, r.text
        assert r.json()["parent_run"] == run_id
    s.wait_status(run_id, ("rolled_back",))
    assert dump(s.target_url) == before


def test_pause_and_resume_answer(serve: ServerFactory) -> None:
    s = serve()
    run_id = _post(s, changeset_doc(s.target_url, updates=range(1, 3))).json()["run_id"]
    s.wait_status(run_id, ("completed",))
    with s.client() as c:
        assert c.post(f"/runs/{run_id}/pause").status_code == 200
        r = c.post(f"/runs/{run_id}/resume")
        assert r.status_code == 202 and r.json()["run_id"] == run_id
        assert c.get("/runs/nope").status_code == 404


_SAMPLE = re.compile(r'^[a-z_]+(\{[a-z_]+="[^"]*"\})? -?[0-9.]+$')


def test_metrics_text_parses(serve: ServerFactory) -> None:
    s = serve()
    run_id = _post(s, changeset_doc(s.target_url, updates=range(1, 4))).json()["run_id"]
    s.wait_status(run_id, ("completed",))
    with s.client() as c:
        r = c.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    samples = {}
    for line in r.text.splitlines():
        if line.startswith("#"):
            continue
        assert _SAMPLE.match(line), line
        name, value = line.rsplit(" ", 1)
        samples[name] = float(value)
    assert samples['backout_runs{status="completed"}'] == 1
    assert samples['backout_rows{outcome="applied"}'] == 3
    assert samples["backout_approvals_waiting"] == 0


def test_openapi_document_is_served(serve: ServerFactory) -> None:
    s = serve()
    with s.client("") as c:
        assert c.get("/openapi.json").status_code == 401
        assert c.get("/docs").status_code == 404
    with s.client() as c:
        doc = c.get("/openapi.json").json()
    assert "/changesets" in doc["paths"] and "/runs/{run_id}/rollback" in doc["paths"]


def test_pause_mid_run_then_resume_reloads_the_stored_body(serve: ServerFactory) -> None:
    # 600 segments: long enough that the run is still running when the pause lands (120
    # rows in 60 segments could finish between two polls once apply got faster).
    s = serve(rows=1200, rate=1000.0, burst=1000)
    doc = changeset_doc(s.target_url, updates=range(1, 1201), segment_size=2)
    with s.client() as c:
        run_id = c.post("/changesets", json=doc).json()["run_id"]
        # The engine honours a pause from `running` on (one asked while `planned` is
        # superseded by run.started), so ask once it runs.
        s.wait_status(run_id, ("running",), poll=0.01)
        paused = c.post(f"/runs/{run_id}/pause")
        assert paused.status_code == 200, paused.text
        data = s.wait_status(run_id, ("paused", "completed"))
        assert data["status"] == "paused", "the run finished before the pause arrived"
        assert data["counts"]["applied"] < 1200
        assert c.post(f"/runs/{run_id}/resume").status_code == 202
    data = s.wait_status(run_id, ("completed",), timeout=60)
    assert data["counts"]["applied"] == 1200
    assert set(write_counts(s.target_url).values()) == {1}
