"""Running one step: checks, decisions, manual confirmations, escalations and the actions
that need no plan (pause, notify, locks). Planned actions go through ``plans``."""

from __future__ import annotations

import importlib
import json
import re
import urllib.request
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from console.errors import BackoutError, BadInput, Blocked, Exit
from console.runbook import expr
from console.runbook.facts import lock_keys, run_targets
from console.runbook.plans import StepContext, StepResult
from console.runbook.schema import Criterion, Step


class StepFailed(Exception):
    """A step could not run (not a refusal): recorded as ``runbook.step.failed``."""

    def __init__(self, message: str, exit_code: Exit = Exit.FAILED) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


Env = Mapping[str, Mapping[str, Any]]


def decide(criteria: tuple[Criterion, ...], env: Env) -> tuple[str | None, str | None]:
    """(goto, the criterion that chose it); (None, None): no criterion matched."""
    for c in criteria:
        if c.when is None:
            return c.goto, "default"
        try:
            if c.when.evaluate(env):
                return c.goto, c.when.text
        except expr.ExprError as exc:
            raise StepFailed(f"decision '{c.when.text}': {exc}") from None
    return None, None


# --- checks -----------------------------------------------------------------------------


def run_check(ctx: StepContext, step: Step) -> StepResult:
    if step.check == "reconcile":
        result = _reconcile(ctx, step)
    elif step.check == "sql":
        result = _sql(ctx, step)
    else:
        run = ctx.journal.get_run(ctx.run.id)
        wanted = [step.expect] if isinstance(step.expect, str) else list(step.expect or [])
        result = {"status": run.status, "ok": not wanted or run.status in wanted, "expect": wanted}
    ok = bool(result.get("ok", True))
    what = f"{step.kind} {step.check}"
    if ok:
        return StepResult("done", result, Exit.DONE, f"{what}: as expected")
    detail = {k: v for k, v in result.items() if k in ("findings", "value", "status")}
    return StepResult(
        "expectation",
        result,
        Exit.REVIEW,
        f"{what}: expected {step.expect}, found {json.dumps(detail, default=str)}",
    )


def _reconcile(ctx: StepContext, step: Step) -> dict[str, Any]:
    try:
        service = importlib.import_module("console.reconcile.service")
    except ImportError:
        raise StepFailed(
            "reconciliation is not available in this build (console.reconcile.service is missing)."
        ) from None
    res = service.reconcile_run(ctx.journal, ctx.settings, ctx.run.id, step.against or "expected")
    counts = {k: int(v) for k, v in dict(res.counts).items()}
    findings = {c: counts.get(c, 0) for c in expr.FINDING_CLASSES}
    findings["total"] = sum(findings.values())
    expect = step.expect or {}
    ok = all(findings.get(k) == v for k, v in expect.items())
    return {
        "check": "reconcile",
        "against": step.against,
        "findings": findings,
        "exit_code": int(getattr(res, "exit_code", 0)),
        "ok": ok,
        "expect": expect,
    }


def _target_url(ctx: StepContext, ref: str) -> str:
    if ref in ctx.settings.targets:
        return ctx.settings.targets[ref].url
    if "://" in ref and ":***@" not in ref:
        return ref
    raise StepFailed(
        f"sql check: target '{ref}' is neither a name in backout.toml nor a "
        "usable URL; name the target with `target:`.",
        Exit.BAD_INPUT,
    )


def _sql(ctx: StepContext, step: Step) -> dict[str, Any]:
    """A trusted query, run as invariants are: one statement, read-only, rolled back."""
    from console.targets.sql import SqlTarget

    refs = [step.target] if step.target else run_targets(ctx.journal, ctx.run)
    if not refs:
        raise StepFailed("sql check: the run has no target; name one with `target:`.")
    target = SqlTarget(_target_url(ctx, refs[0]))
    try:
        value = target.scalar(step.sql or "")
    except BackoutError as exc:
        raise StepFailed(f"sql check failed: {exc.message}") from None
    finally:
        target.close()
    plain = _plain(value)
    ok = step.expect is None or _same(plain, step.expect)
    return {"check": "sql", "sql": step.sql, "value": plain, "ok": ok, "expect": step.expect}


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if value is None or isinstance(value, int | float | str | bool):
        return value
    return str(value)


def _same(value: Any, expected: Any) -> bool:
    try:
        return Decimal(str(value)) == Decimal(str(expected))
    except InvalidOperation:
        return str(value) == str(expected)


# --- manual and escalate ----------------------------------------------------------------


def run_manual(step: Step, confirm: bool, answer: str | None, exec_id: str) -> StepResult:
    if not confirm:
        hint = f" --answer '{step.answer.prompt}'" if step.answer else ""
        raise Blocked(
            f"step '{step.id}' is manual: {(step.manual or '').strip()} Confirm "
            f"with `backout runbook next {exec_id} --confirm{hint}`."
        )
    if step.answer is not None:
        if step.answer.required and not (answer or "").strip():
            raise BadInput(
                f"step '{step.id}' needs an answer: {step.answer.prompt}; pass --answer TEXT."
            )
        if answer and step.answer.pattern and not re.search(step.answer.pattern, answer):
            raise BadInput(
                f"step '{step.id}': the answer does not match "
                f"{step.answer.pattern}; {step.answer.prompt}."
            )
    result = {"instruction": (step.manual or "").strip(), "confirmed": True, "answer": answer}
    return StepResult("done", result, Exit.DONE, f"step '{step.id}' confirmed")


def run_escalate(ctx: StepContext, step: Step) -> StepResult:
    payload = {
        "exec": ctx.exec_id,
        "step": step.id,
        "page": list(step.page),
        "message": step.message,
        "run": ctx.run.id,
    }
    _notify(ctx, {"event": "escalation", **payload})
    result = {"page": list(step.page), "message": step.message}
    return StepResult(
        "done",
        result,
        Exit.DONE,
        f"escalated: paging {', '.join(step.page)}",
        events=[("escalation", payload)],
    )


# --- actions without a plan -------------------------------------------------------------


def run_simple_action(ctx: StepContext, step: Step) -> StepResult:
    action = step.action
    if action == "pause_run":
        from console.engine.apply import Engine

        report = Engine(ctx.journal, ctx.settings).request_pause(ctx.run.id)
        return StepResult(
            "done", {"status": report.status, "message": report.message}, Exit.DONE, report.message
        )
    if action == "notify":
        message = str(step.with_.get("message") or f"runbook step '{step.id}'")
        channels = _notify(
            ctx, {"event": "notify", "exec": ctx.exec_id, "run": ctx.run.id, "message": message}
        )
        return StepResult(
            "done", {"message": message, "channels": channels}, Exit.DONE, f"notified: {message}"
        )
    if action in ("lock_target", "unlock_target"):
        targets = (
            [str(step.with_["target"])]
            if "target" in step.with_
            else lock_keys(ctx.journal, ctx.run)
        )
        kind = "target.locked" if action == "lock_target" else "target.unlocked"
        # The executor turns these into lock events (it knows the lock seqs to release).
        return StepResult(
            "done",
            {"targets": targets},
            Exit.DONE,
            f"{action.replace('_', ' ')}: {', '.join(targets)}",
            events=[(kind, {"targets": targets})],
        )
    raise StepFailed(f"action '{action}' cannot run here.")


def _notify(ctx: StepContext, message: dict[str, Any]) -> dict[str, str]:
    """Send to the configured channels; a failing channel is reported, never fatal."""
    channels: dict[str, str] = {}
    notify = ctx.settings.notify
    line = json.dumps(message, sort_keys=True, default=str)
    if notify.json_log:
        try:
            with open(notify.json_log, "a", encoding="utf-8") as fh:
                fh.write(line + "\n")
            channels["json_log"] = "ok"
        except OSError as exc:
            channels["json_log"] = f"failed: {exc.strerror}"
    if notify.webhook:
        channels["webhook"] = _post(notify.webhook, line, notify.retries)
    return channels


def _post(url: str, body: str, retries: int) -> str:
    error = "not sent"
    for _ in range(retries + 1):
        request = urllib.request.Request(
            url, data=body.encode(), method="POST", headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return f"ok ({response.status})"
        except OSError as exc:
            error = f"failed: {exc}"
    return error
