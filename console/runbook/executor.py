"""Runbook executions: start one for a run, then walk it one step per ``next``.

State lives in the journal (events + the ``runbook_*`` projections), so two terminals see the
same execution and a new process continues where the last one stopped. A step is claimed in
a journal write transaction (which serialises writers on every database) together with a
lease on the execution: two executors pressing ``next`` on the same step execute it exactly
once; the other is told who holds it, or that the step is already done.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from console.canonical import digest
from console.config import Settings
from console.engine import lease
from console.engine.lease import Holder
from console.errors import BackoutError, Blocked, Exit
from console.journal import Journal, format_ts, new_id
from console.journal.models import RunbookExec
from console.journal.store import T_LOCKS, Writer
from console.runbook import gate, loader, state
from console.runbook.facts import complete, lock_keys
from console.runbook.plans import PROVIDERS, PlanView, StepContext, StepResult, plan_for
from console.runbook.schema import PLANNED_ACTIONS, Runbook, Step
from console.runbook.steps import (
    StepFailed,
    decide,
    run_check,
    run_escalate,
    run_manual,
    run_simple_action,
)

GATED = gate.ACTION_OF


@dataclass
class Outcome:
    """What one command did to an execution (printed by the CLI, ``--json`` as is)."""

    exec_id: str
    status: str
    message: str
    exit_code: Exit = Exit.DONE
    step: str | None = None
    kind: str | None = None
    outcome: str | None = None
    next_step: str | None = None
    result: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["exit_code"] = int(self.exit_code)
        return data


def lease_key(exec_id: str) -> str:
    return f"runbook:{exec_id}"


class Executor:
    def __init__(self, journal: Journal, settings: Settings) -> None:
        self.journal = journal
        self.settings = settings
        self.holder = Holder.me()

    # --- helpers --------------------------------------------------------------------

    def context(self, ex: RunbookExec) -> StepContext:
        run = self.journal.get_run(ex.run_id)
        return StepContext(
            self.journal, self.settings, ex.id, run, ex.digest, renew=lambda: self._renew(ex.id)
        )

    def _renew(self, exec_id: str) -> None:
        with self.journal.write() as w:
            lease.renew(w.conn, self.journal, lease_key(exec_id), self.holder)

    def load(self, exec_ref: str) -> tuple[RunbookExec, Runbook]:
        with self.journal.read() as conn:
            ex = state.get_exec(conn, exec_ref)
        return ex, state.pinned(self.journal, ex).runbook

    def owner(self, ex: RunbookExec, ctx: StepContext) -> str | None:
        automation = ctx.run.automation or ""
        return self.settings.policy.owners.get(automation) or ex.owner

    def base_requirement(self, approval: Step) -> gate.Requirement:
        return gate.requirement(self.settings.policy.approval, approval.approval)

    def gate_request(
        self,
        conn: Connection,
        ex: RunbookExec,
        book: Runbook,
        approval: Step,
        guarded: Step | None,
        plan: PlanView,
        ctx: StepContext,
        action: str | None = None,
        step_id: str | None = None,
    ) -> gate.GateRequest:
        """Every fact the gate needs about ``approval``'s request, read under the lock."""
        row = state.exec_step(conn, ex.id, approval.id)
        verb = action or self.verb(guarded)
        request = gate.GateRequest(
            action=verb,
            run_id=ex.run_id,
            actor=self.journal.actor,
            via_runbook=ex.id,
            step=step_id or approval.id,
            operations=plan.operations,
            requirement=self.base_requirement(approval),
            approvals=tuple(state.approvals(conn, ex.id, approval.id)),
            plan_digest=plan.digest,
            runbook_digest=book.digest,
            requester=ex.requested_by,
            executors=state.executors(conn, ex.id),
            owner=self.owner(ex, ctx),
            expires_at=state.ts(row.expires_at),
            request_state=row.state if ex.current_step == approval.id else ex.status,
            now=self.journal.clock(),
        )
        # The run's environment and age, for the gate's governance rules.
        filled = complete(
            self.journal, self.settings, gate.GateRequest(verb, ex.run_id, request.actor)
        )
        return replace(
            request, environment=filled.environment, run_created_at=filled.run_created_at
        )

    @staticmethod
    def verb(guarded: Step | None) -> str:
        """The gate's name for the action an approval guards."""
        return GATED.get(guarded.action or "", "step") if guarded else "step"

    def _request_event(
        self,
        w: Writer,
        ex: RunbookExec,
        book: Runbook,
        approval: Step,
        plan: PlanView,
        reason: str,
        void: tuple[int, ...] = (),
    ) -> dict[str, Any]:
        row = state.exec_step(w.conn, ex.id, approval.id)
        guarded = book.guarded_action(approval)
        now = self.journal.clock()
        # Governance may add approvals (past the rollback window, a write kind not permitted
        # in the environment): approvers see the full requirement.
        probe = complete(
            self.journal,
            self.settings,
            gate.GateRequest(
                self.verb(guarded),
                ex.run_id,
                self.journal.actor,
                operations=plan.operations,
                now=now,
            ),
        )
        extra, _ = gate.governance(self.settings, probe)
        req = gate.requirement(self.settings.policy.approval, approval.approval, extra)
        payload = {
            "exec": ex.id,
            "step": approval.id,
            "guards": guarded.id if guarded else None,
            "request": row.request_no + 1,
            "plan_digest": plan.digest,
            "runbook_digest": book.digest,
            "requirement": req.as_dict(),
            "expires_at": format_ts(now + req.ttl),
            "reason": reason,
            "void": list(void),
            "plan": plan.summary,
        }
        w.append("approval.requested", payload, run_id=ex.run_id)
        return payload

    def _unlock_all(self, w: Writer, ex: RunbookExec, targets: list[str] | None = None) -> None:
        rows = w.conn.execute(
            select(T_LOCKS.c.seq, T_LOCKS.c.target).where(
                T_LOCKS.c.exec_id == ex.id, T_LOCKS.c.released_at.is_(None)
            )
        ).all()
        for seq, target in rows:
            if targets is None or target in targets:
                w.append(
                    "target.unlocked",
                    {"exec": ex.id, "target": target, "lock_seq": int(seq)},
                    run_id=ex.run_id,
                )

    # --- start ----------------------------------------------------------------------

    def start(self, name: str, run_ref: str, *, backup_ref: str | None = None) -> Outcome:
        path = loader.find(name)
        text = loader.read_file(path)
        book = loader.parse_text(text, str(path))
        run = self.journal.get_run(run_ref)
        missing = (
            ("backup_reference",)
            if book.prerequisites.backup_reference and not (backup_ref or "").strip()
            else ()
        )
        exec_id = new_id()
        owner = self.settings.policy.owners.get(run.automation or "")
        refusal: gate.Decision | None = None
        with self.journal.write() as w:
            request = gate.GateRequest(
                "start",
                run.id,
                self.journal.actor,
                step=book.name,
                missing=missing,
                active=tuple(state.open_execs(w.conn, run.id, book.name)),
            )
            decision = gate.evaluate(self.settings, request)
            if not decision.allowed:
                gate.record(w, request, decision)
                refusal = decision
            else:
                w.append(
                    "runbook.started",
                    {
                        "exec": exec_id,
                        "runbook": book.name,
                        "version": book.version,
                        "title": book.title,
                        "digest": book.digest,
                        "content": text,
                        "source": str(path.resolve()),
                        "owner": owner,
                        "backup_ref": backup_ref,
                        "prerequisites": asdict(book.prerequisites),
                        "steps": [{"id": s.id, "kind": s.kind} for s in book.steps],
                    },
                    run_id=run.id,
                    corr=run.corr,
                )
                if book.prerequisites.lock_target:
                    for target in lock_keys(self.journal, run):
                        w.append(
                            "target.locked", {"exec": exec_id, "target": target}, run_id=run.id
                        )
        if refusal is not None:
            raise refusal.blocked()
        first = book.steps[0]
        if first.kind == "approval":
            ex, _ = self.load(exec_id)
            plan = plan_for(self.context(ex), book.guarded_action(first), first.id)
            with self.journal.write() as w:
                self._request_event(w, ex, book, first, plan, "first")
        return Outcome(
            exec_id,
            "active",
            f"started runbook {book.name} v{book.version} "
            f"(sha256 {book.digest[:12]}) for run {run.id}: execution {exec_id}; "
            f"first step '{first.id}'. Continue with `backout runbook next "
            f"{exec_id}`.",
            step=first.id,
            kind=first.kind,
            result={"runbook": book.name, "digest": book.digest, "run": run.id},
        )

    # --- next -----------------------------------------------------------------------

    def next(
        self,
        exec_ref: str,
        *,
        confirm: bool = False,
        answer: str | None = None,
        expect_step: str | None = None,
    ) -> Outcome:
        ex, book = self.load(exec_ref)
        if ex.status in state.FINAL:
            if ex.status == "denied":
                raise Blocked(f"execution {ex.id} was denied ({ex.reason}); nothing runs.")
            return Outcome(ex.id, ex.status, f"execution {ex.id} is {ex.status}; nothing to do.")
        assert ex.current_step is not None
        if expect_step is not None and expect_step != ex.current_step:
            return self._moved_on(ex, expect_step)
        step = book.step(ex.current_step)
        ctx = self.context(ex)
        if step.kind == "approval":
            return self._approval_step(ex, book, step, ctx)
        if step.kind == "manual":
            run_manual(step, confirm, answer, ex.id)  # refuses early: not confirmed, bad answer
        plan: PlanView | None = None
        plan_error: Exception | None = None
        if step.kind == "action" and step.action in PLANNED_ACTIONS:
            # Planned outside the lock (it reads the target). Another executor may be running
            # this very step meanwhile: its outcome is reported first, the plan's error after.
            try:
                plan = PROVIDERS[step.action].plan(ctx, step)
            except Exception as exc:
                plan_error = exc
        refusal: gate.Decision | None = None
        with self.journal.write() as w:
            cur = state.get_exec(w.conn, ex.id)
            if (
                cur.current_step != step.id
                or cur.status in state.FINAL
                or cur.status in ("awaiting_approval", "blocked")
            ):
                return self._moved_on(cur, step.id)
            self._take_lease(w, ex.id, step.id)
            if plan_error is not None:
                raise plan_error
            if plan is not None:
                refusal = self._action_gate(w, cur, book, step, plan, ctx)
            if refusal is None:
                row = state.exec_step(w.conn, ex.id, step.id)
                w.append(
                    "runbook.step.started",
                    {
                        "exec": ex.id,
                        "step": step.id,
                        "kind": step.kind,
                        "attempt": row.attempts + 1,
                        "holder": str(self.holder),
                    },
                    run_id=ex.run_id,
                )
            else:
                lease.release(w.conn, lease_key(ex.id), self.holder)
        if refusal is not None:
            raise refusal.blocked()
        try:
            result = self._execute(ctx, step, plan, confirm, answer)
        except (BackoutError, StepFailed) as exc:
            self._failed(ex, step, exc.message, {})
            raise BackoutError(exc.message, exit_code=exc.exit_code) from None
        except Exception as exc:
            self._failed(ex, step, f"{type(exc).__name__}: {exc}", {})
            raise
        return self._finish(ex, book, step, ctx, result)

    def _take_lease(self, w: Writer, exec_id: str, step_id: str) -> None:
        try:
            lease.acquire(w.conn, self.journal, lease_key(exec_id), self.holder)
        except lease.RunHeld:
            raise Blocked(
                f"step '{step_id}' of execution {exec_id} is being executed by "
                "another process right now; wait for it, then check "
                f"`backout runbook status {exec_id}`."
            ) from None

    def _moved_on(self, cur: RunbookExec, step_id: str) -> Outcome:
        return Outcome(
            cur.id,
            cur.status,
            f"step '{step_id}' was already executed (or is no "
            f"longer current); execution {cur.id} is {cur.status} at step "
            f"'{cur.current_step}'. Nothing done.",
            step=cur.current_step,
            outcome="already",
        )

    def _action_gate(
        self,
        w: Writer,
        ex: RunbookExec,
        book: Runbook,
        step: Step,
        plan: PlanView,
        ctx: StepContext,
    ) -> gate.Decision | None:
        """Ask the gate for a planned action; on refusal journal why and what follows."""
        approval = book.guarding_approval(step)
        if approval is None:
            request = complete(
                self.journal,
                self.settings,
                gate.GateRequest(
                    GATED[step.action or ""],
                    ex.run_id,
                    self.journal.actor,
                    via_runbook=ex.id,
                    step=step.id,
                    operations=plan.operations,
                    plan_digest=plan.digest,
                    runbook_digest=book.digest,
                    now=self.journal.clock(),
                ),
            )
            request = replace(request, via_runbook=ex.id)
        else:
            request = self.gate_request(
                w.conn, ex, book, approval, step, plan, ctx, step_id=step.id
            )
        decision = gate.evaluate(self.settings, request)
        if decision.allowed:
            return None
        gate.record(w, request, decision)
        if approval is not None:
            self._consequence(w, ex, book, approval, plan, decision)
        return decision

    def _consequence(
        self,
        w: Writer,
        ex: RunbookExec,
        book: Runbook,
        approval: Step,
        plan: PlanView,
        decision: gate.Decision,
    ) -> None:
        """A changed plan asks for approval again; an expiry is recorded as its own state."""
        if decision.state == "stale":
            self._request_event(w, ex, book, approval, plan, "plan_changed", decision.stale)
        elif decision.state == "expired":
            w.append(
                "approval.expired",
                {
                    "exec": ex.id,
                    "step": approval.id,
                    "request": state.exec_step(w.conn, ex.id, approval.id).request_no,
                    "approvals": list(decision.expired),
                    "reason": decision.message,
                    "expired_at": format_ts(self.journal.clock()),
                },
                run_id=ex.run_id,
            )

    def _execute(
        self, ctx: StepContext, step: Step, plan: PlanView | None, confirm: bool, answer: str | None
    ) -> StepResult:
        if step.kind in ("check", "verify"):
            return run_check(ctx, step)
        if step.kind == "manual":
            return run_manual(step, confirm, answer, ctx.exec_id)
        if step.kind == "escalate":
            return run_escalate(ctx, step)
        if step.kind == "decide":
            return StepResult("done", {}, Exit.DONE, "decided")
        if plan is not None:
            return PROVIDERS[step.action or ""].execute(ctx, step, plan)
        return run_simple_action(ctx, step)

    def _failed(self, ex: RunbookExec, step: Step, message: str, result: dict[str, Any]) -> None:
        with self.journal.write() as w:
            w.append(
                "runbook.step.failed",
                {
                    "exec": ex.id,
                    "step": step.id,
                    "kind": step.kind,
                    "error": message,
                    "result": result,
                    "next": step.id,
                    "status": "active",
                    "reason": message,
                },
                run_id=ex.run_id,
            )
            lease.release(w.conn, lease_key(ex.id), self.holder)

    def env(self, ex: RunbookExec, result: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """What decisions read: the latest findings, this step's result, the run now."""
        findings: dict[str, Any] = {}
        previous: dict[str, Any] = {}
        for item in state.evidence(self.journal, ex):
            if isinstance(item.get("result"), dict):
                previous = item["result"]
                findings = previous.get("findings", findings)
        if "findings" in result:
            findings = result["findings"]
        run = self.journal.get_run(ex.run_id)
        run_fields = {
            k: getattr(run, k)
            for k in (
                "status",
                "kind",
                "rows_total",
                "rows_applied",
                "rows_failed",
                "rows_conflict",
                "rows_reverted",
                "rows_skipped",
            )
        }
        # A decide step of its own reads the result of the step before it.
        return {"findings": findings, "result": result or previous, "run": run_fields}

    def _finish(
        self, ex: RunbookExec, book: Runbook, step: Step, ctx: StepContext, res: StepResult
    ) -> Outcome:
        chose: str | None = None
        goto: str | None
        if res.outcome == "expectation":
            goto = step.on_fail or step.id
        elif res.outcome == "failed":
            self._failed(ex, step, res.message, res.result)
            raise BackoutError(res.message, exit_code=res.exit_code or Exit.FAILED)
        else:
            goto, chose = (
                decide(step.decide, self.env(ex, res.result)) if step.decide else (None, None)
            )
            goto = goto or book.after(step) or "end"
        nxt = None if goto == "end" else goto
        escalated = step.kind == "escalate" or any(
            book.step(e["step"]).kind == "escalate" for e in state.evidence(self.journal, ex)
        )
        nstep = book.step(nxt) if nxt and nxt != step.id else None
        plan = (
            plan_for(ctx, book.guarded_action(nstep), nstep.id)
            if nstep is not None and nstep.kind == "approval"
            else None
        )
        stay = nxt == step.id
        status = "active" if nxt else ("escalated" if escalated else "completed")
        result = {
            **res.result,
            **({"decided": {"goto": nxt or "end", "when": chose}} if chose else {}),
        }
        with self.journal.write() as w:
            for kind, payload in res.events:
                self._side_event(w, ex, kind, payload)
            w.append(
                "runbook.step.finished",
                {
                    "exec": ex.id,
                    "step": step.id,
                    "kind": step.kind,
                    "outcome": res.outcome,
                    "state": "failed" if stay or res.outcome == "expectation" else "done",
                    "ran": step.spec(),
                    "result": result,
                    "output_digest": digest(result),
                    "next": nxt,
                    "status": status,
                    "reason": res.message if stay else None,
                },
                run_id=ex.run_id,
            )
            if nxt is None:
                self._unlock_all(w, ex)
                w.append(
                    "runbook.finished",
                    {"exec": ex.id, "status": status, "reason": None},
                    run_id=ex.run_id,
                )
            elif nstep is not None and plan is not None:
                self._request_event(w, ex, book, nstep, plan, "first")
                status = "awaiting_approval"
            lease.release(w.conn, lease_key(ex.id), self.holder)
        if stay:
            where = "press next again once it is fixed"
        else:
            where = f"next: '{nxt}'" if nxt else f"execution {status}"
        return Outcome(
            ex.id,
            status,
            f"step '{step.id}' ({step.kind}): {res.message.rstrip('.')}; {where}.",
            res.exit_code,
            step.id,
            step.kind,
            res.outcome,
            nxt,
            result,
        )

    def _side_event(self, w: Writer, ex: RunbookExec, kind: str, payload: dict[str, Any]) -> None:
        if kind == "target.locked":
            for target in payload["targets"]:
                w.append(kind, {"exec": ex.id, "target": target}, run_id=ex.run_id)
        elif kind == "target.unlocked":
            self._unlock_all(w, ex, list(payload["targets"]))
        else:
            w.append(kind, payload, run_id=ex.run_id)

    # --- the approval step ----------------------------------------------------------

    def _approval_step(
        self, ex: RunbookExec, book: Runbook, step: Step, ctx: StepContext
    ) -> Outcome:
        guarded = book.guarded_action(step)
        plan = plan_for(ctx, guarded, step.id)
        refusal: gate.Decision | None = None
        with self.journal.write() as w:
            cur = state.get_exec(w.conn, ex.id)
            if cur.current_step != step.id or cur.status in state.FINAL:
                return self._moved_on(cur, step.id)
            row = state.exec_step(w.conn, ex.id, step.id)
            request = self.gate_request(w.conn, cur, book, step, guarded, plan, ctx)
            if row.request_no == 0 or row.state == "expired":
                reason = "first" if row.request_no == 0 else "expired"
                payload = self._request_event(w, cur, book, step, plan, reason)
                decision = gate.Decision(
                    False,
                    "pending",
                    "approval.quorum",
                    f"policy v{self.settings.policy.version} (approval.quorum): approval "
                    f"requested for step '{step.id}': "
                    f"{gate.Requirement.from_dict(payload['requirement']).describe()}; "
                    f"approvers run `backout approve {ex.id}`.",
                    self.settings.policy.version,
                    self.settings.policy_digest(),
                )
                gate.record(w, request, decision)
                refusal = decision
            else:
                decision = gate.evaluate(self.settings, request)
                if not decision.allowed:
                    gate.record(w, request, decision)
                    self._consequence(w, cur, book, step, plan, decision)
                    if decision.state == "pending" and row.plan_digest != plan.digest:
                        self._request_event(w, cur, book, step, plan, "plan_changed")
                    refusal = decision
                else:
                    nxt = book.after(step)
                    result = {
                        "approvers": list(decision.counted),
                        "plan_digest": plan.digest,
                        "runbook_digest": book.digest,
                        "guards": guarded.id if guarded else None,
                    }
                    w.append(
                        "runbook.step.finished",
                        {
                            "exec": ex.id,
                            "step": step.id,
                            "kind": "approval",
                            "outcome": "approved",
                            "state": "approved",
                            "ran": step.spec(),
                            "result": result,
                            "output_digest": digest(result),
                            "next": nxt,
                            "status": "active" if nxt else "completed",
                            "reason": None,
                        },
                        run_id=ex.run_id,
                    )
                    if nxt is None:
                        self._unlock_all(w, cur)
                        w.append(
                            "runbook.finished",
                            {"exec": ex.id, "status": "completed", "reason": None},
                            run_id=ex.run_id,
                        )
        if refusal is not None:
            raise refusal.blocked()
        return Outcome(
            ex.id,
            "active",
            f"step '{step.id}': {decision.message} Next: '{book.after(step)}'.",
            Exit.DONE,
            step.id,
            "approval",
            "approved",
            book.after(step),
            {"approvers": list(decision.counted), "plan_digest": plan.digest},
        )

    # --- abort ----------------------------------------------------------------------

    def abort(self, exec_ref: str, comment: str) -> Outcome:
        ex, _ = self.load(exec_ref)
        if ex.status in state.FINAL:
            return Outcome(ex.id, ex.status, f"execution {ex.id} is already {ex.status}.")
        with self.journal.write() as w:
            self._unlock_all(w, ex)
            w.append(
                "runbook.finished",
                {"exec": ex.id, "status": "aborted", "reason": comment},
                run_id=ex.run_id,
            )
        return Outcome(ex.id, "aborted", f"execution {ex.id} aborted: {comment}")
