"""Approving and denying: the approver is shown the exact plan and signs its digest.

An approval event carries the approver, their roles, the comment, the sha256 of the plan
shown, the runbook's digest and the journal head at that moment. The gate decides, under the
journal's write lock, whether this person may decide now (so two approvers at once, or one
approver twice at once, are serialised and judged on what the other wrote).
"""

from __future__ import annotations

from typing import Any

from console.canonical import loads
from console.errors import Blocked, Exit
from console.journal import parse_ts
from console.runbook import gate, state
from console.runbook.executor import Executor, Outcome
from console.runbook.plans import plan_for


class Approvals(Executor):
    def decide(
        self, exec_ref: str, *, approve: bool, comment: str | None, expect_digest: str | None = None
    ) -> Outcome:
        ex, book = self.load(exec_ref)
        step = book.step(ex.current_step) if ex.current_step else None
        verb = "approve" if approve else "deny"
        ctx = self.context(ex)
        if step is None or step.kind != "approval":
            # Nothing to decide: still the gate's refusal, recorded.
            request = gate.GateRequest(
                verb,
                ex.run_id,
                self.journal.actor,
                via_runbook=ex.id,
                step=ex.current_step,
                request_state=ex.status,
            )
            gate.check(self.settings, request, self.journal)
            raise AssertionError("unreachable")  # pragma: no cover
        guarded = book.guarded_action(step)
        plan = plan_for(ctx, guarded, step.id)
        refusal: gate.Decision | None = None
        with self.journal.write() as w:
            cur = state.get_exec(w.conn, ex.id)
            request = self.gate_request(w.conn, cur, book, step, guarded, plan, ctx, action=verb)
            if expect_digest and not plan.digest.startswith(expect_digest):
                decision = gate.Decision(
                    False,
                    "stale",
                    "approval.plan_digest",
                    f"policy v{self.settings.policy.version} (approval.plan_digest) refuses: "
                    f"the plan is now {plan.digest}, not the {expect_digest} you reviewed; "
                    "review it again.",
                    self.settings.policy.version,
                    self.settings.policy_digest(),
                )
            else:
                decision = gate.evaluate(self.settings, request)
            if not decision.allowed:
                gate.record(w, request, decision)
                refusal = decision
            else:
                row = state.exec_step(w.conn, ex.id, step.id)
                payload: dict[str, Any] = {
                    "exec": ex.id,
                    "step": step.id,
                    "request": row.request_no,
                    "roles": self.settings.policy.roles_of(self.journal.actor),
                    "comment": comment,
                    "plan_digest": plan.digest,
                    "runbook_digest": book.digest,
                    "guards": guarded.id if guarded else None,
                    "head": {"seq": w.seq, "hash": w.hash},
                }
                if approve:
                    w.append("approval.granted", payload, run_id=ex.run_id)
                else:
                    nxt = step.on_denied
                    payload.update(next=nxt, status="active" if nxt else "denied")
                    w.append("approval.denied", payload, run_id=ex.run_id)
                    if nxt is None:
                        self._unlock_all(w, cur)
                        w.append(
                            "runbook.finished",
                            {"exec": ex.id, "status": "denied", "reason": comment},
                            run_id=ex.run_id,
                        )
        if refusal is not None:
            raise Blocked(refusal.message)
        done = "approved" if approve else "denied"
        changed = (
            ""
            if row.plan_digest in (None, plan.digest)
            else (
                " The plan changed since approval was requested; your decision binds to the plan "
                "shown here."
            )
        )
        after = ""
        if not approve:
            after = (
                f" Execution goes to '{step.on_denied}'."
                if step.on_denied
                else " The execution is denied."
            )
        return Outcome(
            ex.id,
            "awaiting_approval" if approve else "denied",
            f"{self.journal.actor} {done} step '{step.id}' of execution {ex.id} "
            f"for plan {plan.digest}.{changed}{after}",
            Exit.DONE,
            step.id,
            "approval",
            done,
            None,
            {"plan_digest": plan.digest, "plan": plan.summary},
        )

    def listing(self, *, pending_only: bool) -> list[dict[str, Any]]:
        """Approval requests (pending, or all) with what each still needs."""
        now = self.journal.clock()
        out: list[dict[str, Any]] = []
        with self.journal.read() as conn:
            execs = state.list_execs(conn, limit=500)
            for ex in execs:
                for row in state.exec_steps(conn, ex.id):
                    if row.kind != "approval" or row.request_no == 0:
                        continue
                    waiting = ex.current_step == row.step_id and ex.status in (
                        "awaiting_approval",
                        "blocked",
                    )
                    if pending_only and not waiting:
                        continue
                    expired = row.state == "expired" or (
                        waiting and row.expires_at is not None and parse_ts(row.expires_at) <= now
                    )
                    given = [
                        a for a in state.approval_rows(conn, ex.id) if a["step_id"] == row.step_id
                    ]
                    out.append(
                        {
                            "exec": ex.id,
                            "runbook": ex.runbook,
                            "run": ex.run_id,
                            "step": row.step_id,
                            "state": "expired" if expired else row.state,
                            "requested_by": ex.requested_by,
                            "request": row.request_no,
                            "plan_digest": row.plan_digest,
                            "requested_at": row.requested_at,
                            "expires_at": row.expires_at,
                            "requirement": loads(row.requirement) if row.requirement else None,
                            "decisions": [
                                {
                                    "seq": a["seq"],
                                    "approver": a["approver"],
                                    "decision": a["decision"],
                                    "state": a["state"],
                                    "plan_digest": a["plan_digest"],
                                    "comment": a["comment"],
                                    "ts": a["ts"],
                                    "roles": loads(a["roles"]),
                                }
                                for a in given
                            ],
                        }
                    )
        return out
