"""Runbook validation: every kind of mistake, with its line and column; the shipped runbooks
are valid; `backout runbook validate` lists all problems and exits 2."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from console.runbook import expr
from console.runbook.loader import check_text, shipped_dir

ROOT = Path(__file__).resolve().parents[2]


def problems(text: str) -> list[tuple[int, int, str]]:
    book, found = check_text(text, "rb.yaml")
    assert book is None
    return [(p.where.line, p.where.column, p.message) for p in found]


def one(text: str) -> tuple[int, int, str]:
    found = problems(text)
    assert len(found) == 1, found
    return found[0]


HEAD = "runbook: t\nversion: 1\nsteps:\n"


@pytest.mark.parametrize("name", ["rollback-batch", "reconcile-and-fix", "resume-after-guard"])
def test_shipped_runbooks_are_valid_and_documented(name: str) -> None:
    path = shipped_dir() / f"{name}.yaml"
    text = path.read_text()
    book, found = check_text(text, str(path))
    assert book is not None, [p.render(str(path)) for p in found]
    assert book.name == name
    comments = [line for line in text.splitlines() if line.lstrip().startswith("#")]
    assert len(comments) >= 10  # written for the operator who reads it at 2 a.m.


def test_rollback_batch_has_the_designed_shape() -> None:
    book, _ = check_text((shipped_dir() / "rollback-batch.yaml").read_text(), "rb")
    assert book is not None
    kinds = [(s.id, s.kind) for s in book.steps]
    assert kinds[:6] == [
        ("pause", "action"),
        ("assess", "check"),
        ("approve", "approval"),
        ("rollback", "action"),
        ("verify", "verify"),
        ("notify", "action"),
    ]
    assert any(s.kind == "escalate" for s in book.steps)
    assert book.guarded_action(book.step("approve")) == book.step("rollback")


def test_schema_errors_carry_line_and_column() -> None:
    assert one("runbook: t\nversion: two\nsteps:\n  - {id: a, action: notify}\n") == (
        2,
        10,
        "version must be a whole number",
    )
    line, col, msg = one(HEAD + "  - id: a\n    action: notify\n    colour: red\n")
    assert (line, col) == (6, 5) and "unknown key 'colour'" in msg
    line, col, msg = one("runbook: t\nsteps:\n  - {id: a, action: notify}\n")
    assert (line, col) == (1, 1) and "'version' is missing" in msg
    line, col, msg = one(HEAD + "  - id: a\n    approval: {quorum: 0}\n")
    assert (line, col) == (5, 24) and "quorum must be at least 1" in msg
    line, col, msg = one(HEAD + "  - id: a\n    approval: {expires_after: soon}\n")
    assert (line, col) == (5, 31) and "not a duration" in msg
    line, col, msg = one("runbook: t\nversion: 1\nsteps: [\n")
    assert "not valid YAML" in msg and line >= 3


def test_unknown_step_kind_and_action() -> None:
    line, col, msg = one(HEAD + "  - id: a\n    explode: now\n")
    assert (line, col) == (5, 5) and "unknown step kind 'explode'" in msg
    line, col, msg = one(HEAD + "  - id: a\n    action: launch\n")
    assert (line, col) == (5, 13) and "unknown action 'launch'" in msg
    line, col, msg = one(HEAD + "  - id: a\n    check: vibes\n")
    assert (line, col) == (5, 12) and "unknown check 'vibes'" in msg


def test_goto_to_a_missing_step() -> None:
    text = HEAD + (
        "  - id: a\n    check: run_status\n    decide:\n"
        "      - when: \"run.status == 'paused'\"\n        goto: nowhere\n"
    )
    line, col, msg = one(text)
    assert (line, col) == (8, 15) and "goto 'nowhere'" in msg


def test_unreachable_step() -> None:
    text = HEAD + "  - id: a\n    action: notify\n    next: end\n  - id: b\n    action: notify\n"
    assert one(text) == (7, 5, "step 'b' is unreachable: no step goes to it")


def test_cycle_without_exit() -> None:
    text = HEAD + (
        "  - id: a\n    action: notify\n  - id: b\n    manual: again\n    next: c\n"
        "  - id: c\n    manual: and again\n    next: b\n"
    )
    line, col, msg = one(text)
    assert (line, col) == (6, 5) and "cycle without an exit: b -> c -> b" in msg
    # A loop with a way out is fine.
    ok = HEAD + (
        "  - id: a\n    check: run_status\n    decide:\n"
        "      - when: \"run.status == 'paused'\"\n        goto: a\n"
    )
    assert check_text(ok, "rb")[0] is not None


def test_unsafe_expression_is_refused_where_it_stands() -> None:
    text = HEAD + (
        "  - id: a\n    check: reconcile\n    decide:\n"
        "      - when: \"findings.wrong_value > 0 and __import__('os')\"\n"
        "        goto: a\n"
    )
    line, col, msg = one(text)
    assert (line, col) == (7, 45) and "'call' is not allowed" in msg


def test_all_problems_are_listed_at_once() -> None:
    text = (
        "runbook: t\nversion: 0\ncolour: red\nsteps:\n"
        "  - id: a\n    action: launch\n"
        "  - id: a\n    explode: now\n"
        "  - id: c\n    manual: x\n    next: d\n"
        "  - id: d\n    manual: y\n    next: c\n"
    )
    found = problems(text)
    messages = " | ".join(m for _, _, m in found)
    for needle in (
        "version must be at least 1",
        "unknown key 'colour'",
        "unknown action 'launch'",
        "duplicate step id 'a'",
        "unknown step kind 'explode'",
        "cycle without an exit",
    ):
        assert needle in messages
    assert found == sorted(found)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("findings.wrong_value + findings.collateral > 0", None),
        ("run.status == 'paused' and not findings.applied", None),
        ("findings.x > 0", "'findings.x' is unknown"),
        ("os.system", "unknown name 'os'"),
        ("findings", "alone is not a value"),
        ("findings.applied * 2", "only + and -"),
        ("(1).real", "one level"),
        ("[1][0]", "not allowed"),
        ("lambda: 1", "not allowed"),
        ("1 if 1 else 2", "not allowed"),
        ("findings.applied >", "not a valid expression"),
    ],
)
def test_expressions(text: str, fragment: str | None) -> None:
    if fragment is None:
        expr.parse(text)
        return
    with pytest.raises(expr.ExprError, match=re.escape(fragment)):
        expr.parse(text)


def test_expression_evaluation() -> None:
    e = expr.parse("findings.wrong_value + findings.collateral > 0")
    assert e.evaluate({"findings": {"wrong_value": 1, "collateral": 0}})
    assert not e.evaluate({"findings": {"wrong_value": 0, "collateral": 0}})
    assert expr.parse("0 < result.value <= 3").evaluate({"result": {"value": 3}})
    with pytest.raises(expr.ExprError, match="not known"):
        e.evaluate({"findings": {}})
    with pytest.raises(expr.ExprError, match="cannot be evaluated"):
        expr.parse("run.status > 1").evaluate({"run": {"status": "paused"}})


def test_validate_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from console.cli import main

    bad = tmp_path / "bad.yaml"
    bad.write_text(HEAD + "  - id: a\n    action: launch\n  - id: b\n    explode: 1\n")
    with pytest.raises(SystemExit) as exc:
        main(["runbook", "validate", str(bad)])
    assert exc.value.code == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"{bad}:5:13: unknown action 'launch'; use pause_run, resume_run, rollback, fix, "
        "notify, lock_target, unlock_target",
        f"{bad}:7:5: unknown step kind 'explode'; a step is one of check, verify, decide, "
        "approval, action, manual, escalate",
    ]
    good = shipped_dir() / "rollback-batch.yaml"
    with pytest.raises(SystemExit) as exc:
        main(["runbook", "validate", str(good)])
    assert exc.value.code == 0
    assert "valid" in capsys.readouterr().out
