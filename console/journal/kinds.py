"""The event vocabulary and payload shapes: the contract between the engine, rollback,
reconciliation, runbooks and the console. Images are canonical JSON rows (console.canonical).

run.created      {kind: apply|rollback|fix|reapply, parent_run, changeset, version, digest,
                  automation, description, target, drill, dry_run, rows_total, options,
                  touchpoints: {source, writes, readers}, source_file,
                  steps: [{step_no, name, table, key: [col], operations, target}]}
run.started      {pid, host}
run.progress     {seg_no, done, total, elapsed_s}                       (no projection)
snapshot.taken   {phase: baseline|post|post-rollback|post-fix, table, rows, digest,
                  aggregates: {count, sums: {col: "exact decimal"}}}    (rows in `snapshots`)
segment.intent   {seg_no, step_no, ops: [{op_no, table, op: insert|update|delete, key, before,
                  after, inverse, idem}]}
                  inverse: {op: delete} | {op: update, set: {col: v}} | {op: insert, row: {...}}
segment.applied  {seg_no, applied: [op_no], attempt, duration_ms, resolved?: true,
                  parent_run?, reverted_ops?: [op_no of the parent run]}   (rollback adds these)
segment.failed   {seg_no, error, op_no, ops: [op_no]}   (one transaction: none of ops written)
segment.retry    {seg_no, ops: [op_no]}                 (resume tries a failed segment again)
segment.dry_run  {seg_no, applied: [op_no]}  as segment.applied; nothing was written
op.conflict      {op_no, detail: {table, key, before, ours, now}}
op.failed        {op_no, detail: {error}}
op.skipped       {op_no, detail: {reason}}
op.forced        {op_no, by, detail: {table, key, before, ours, now}}   (--force-conflicts)
rollback.planned {plan_digest, scope, items, conflicts}       (on the rollback run)
rollback.triggered {on_error, reason, seg_no, step_no, step, cause, error?}
                 (on an apply run about to be rolled back by ``on_error: rollback``)
checkpoint       {seg_no, op_no, done}
guard.tripped    {reason, invariant, sql, expected, actual, seg_no}     (run -> paused)
guard.passed     {invariant, seg_no}                                    (no projection)
run.pause_requested {by}                               (the executor pauses at a boundary)
run.paused       {reason, by}
run.resumed      {by, in_doubt: [seg_no]}
run.completed    {applied, failed, conflicts, elapsed_s, rows_per_s}
run.failed       {reason}
run.status       {status, reason, final: bool, rollback_run}
                 (on the parent run: rolling_back, rolled_back, rollback_partial)
run.drift        {drifted: bool}
changeset.rejected  {changeset, version, file, problems: [{file, line, field, message}]}
changeset.duplicate {changeset, version, digest, previous_run}
annotation       {text, ref_seq}
journal.pruned   {before, reason, policy_version, policy_digest, runs: [run id], ranges:
                  [[lo, hi]], events, bytes, events_sha256, state_rows, state_sha256}
                  (``journal prune``: see console/journal/prune.py)

Runbooks and approvals (run_id: the run the execution is for; ``exec``: the execution id):
runbook.started       {exec, runbook, version, title, digest, content, source, owner,
                       backup_ref, prerequisites, steps: [{id, kind}]}
                       (``content`` pins the runbook: editing the file changes nothing here)
runbook.step.started  {exec, step, kind, attempt, holder}
runbook.step.finished {exec, step, kind, outcome, state, ran, result, output_digest, next,
                       status, reason}        (``ran``: the step spec; evidence of the result)
runbook.step.failed   {exec, step, kind, error, result, next, status, reason}
runbook.finished      {exec, status: completed|escalated|denied|aborted, reason}
approval.requested    {exec, step, request, plan_digest, runbook_digest, requirement,
                       expires_at, reason: first|plan_changed|expired|runbook_changed, void:
                       [seq], plan: {...summary}, guards}
approval.granted      {exec, step, request, roles, comment, plan_digest, runbook_digest,
                       head: {seq, hash}}                 (actor: the approver)
approval.denied       as approval.granted, plus {status, next}
approval.expired      {exec, step, request, approvals: [seq], expired_at, reason}
gate.refused          {action, rule, policy_version, policy_digest, message, exec, step,
                       actor}                             (every refusal of the gate)
escalation            {exec, step, page: [who], message}
target.locked         {exec, target}
target.unlocked       {exec, target, lock_seq}

Drills: every event of a drill carries ``drill`` (its id), stamped by the journal: a handle
opened with ``drill=``, or any handle appending to a drill run or a run made from one.
drill.started    {id, scenario, title, goal, runbook, briefing, expected, seed, sandbox,
                  target, states_digest, facts}
                                             (a scenario's, on the drill's run in the configured
                                             journal, once its batch went wrong)
drill.replay.started  {source_run, source_journal, source_journal_id, source_head: {seq, hash},
                  speed, events, expect, sandbox, sandbox_target}
                                             (a replay's, first in its sandbox journal, no run;
                                             expect: baseline|batch|review, the right ending)
drill.replay.finished {source_run, source_journal, source_head: {seq, hash}, speed, events,
                  diverged, states_digest, wall_ts}
                                             (the last event replayed; wall_ts: real time)
drill.scored     {drill_id, scenario, run_id, time_to_detect_s, time_to_decision_s, approvals,
                  approvals_correct, runbook, runbook_status, path, wrong_branches, outcome,
                  checks, matches, correct, kind}
                                             (each ``backout drill score``, where the drill is;
                                             scenario: the scenario id or replay:<expect>;
                                             latest counts)
Every event a replay re-appends from the recording also carries ``replayed: true`` (a score
tells the trainee's own events from it).
"""

from __future__ import annotations

FAILURE_KINDS = ("segment.failed", "op.failed", "op.conflict", "guard.tripped", "run.failed")
MARKER_KINDS = (
    "checkpoint",
    "guard.tripped",
    "run.paused",
    "run.resumed",
    "op.conflict",
    "segment.failed",
    "run.status",
)
