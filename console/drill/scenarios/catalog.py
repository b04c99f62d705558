"""The scenarios: each builds a real batch on its sandbox that goes wrong in its own way."""

from __future__ import annotations

from dataclasses import replace

from console.changes import ChangeSetInvalid
from console.drill.scenarios import batch
from console.drill.scenarios.crash import apply_and_die
from console.drill.scenarios.model import Built, Expected, Scenario, Stage
from console.errors import BackoutError
from console.journal.store import EngineQueries

# The three right endings: rolled back and verified against the baseline (rollback-batch);
# nothing to fix, every row as intended (reconcile-and-fix); values nobody intended found
# by the assessment, so escalated and nothing written (rollback-batch).
ROLLED_BACK = Expected(
    target="baseline",
    runbook_status="completed",
    path=("pause", "assess", "approve", "rollback", "verify", "notify"),
    run_status="rolled_back",
    against="baseline",
    findings={"not_restored": 0},
    rollback=True,
)
ALL_GOOD = Expected(
    target="batch",
    runbook_status="completed",
    path=("reconcile", "all-good"),
    run_status="completed",
    findings={"wrong_value": 0, "not_applied": 0, "missing_row": 0, "unexpected_row": 0},
)
ESCALATED = Expected(
    target="batch",
    runbook_status="escalated",
    path=("pause", "assess", "escalate", "handover"),
    run_status="completed",
)

# A replay drill's right ending, as the trainer declares it (``drill replay --expect``): the
# runbook it is worked with and the same endings, with the runbook optional where the CLI
# alone does it right, and the recorded run's status left as it was recorded.
REPLAY_EXPECT: dict[str, tuple[str, Expected]] = {
    "baseline": ("rollback-batch", replace(ROLLED_BACK, runbook_optional=True)),
    "batch": ("reconcile-and-fix", replace(ALL_GOOD, run_status=None, runbook_optional=True)),
    "review": ("rollback-batch", replace(ESCALATED, run_status=None)),
}


def _run_of(stage: Stage, base: str) -> str:
    runs = EngineQueries(stage.journal).runs_for_changeset(stage.name(base), 1)
    if not runs:
        raise BackoutError(f"scenario batch {stage.name(base)} created no run.")
    return runs[-1].id


def _outage(stage: Stage) -> Built:
    rows = batch.price_rows(stage, "EU", 120)
    doc = batch.changeset(stage, "eu-uplift", batch.uplift(rows, 5), description="EU +5 %")
    path = stage.box.write_changeset("eu-uplift", doc)
    cut_after = 2 + stage.rng.randrange(3)  # segments written before the outage
    apply_and_die(
        stage.journal.url, stage.drill_id, stage.journal.actor, path, cut_after, stage.config
    )
    return Built(_run_of(stage, "eu-uplift"), facts={"cut_after_segment": cut_after})


def _constraint(stage: Stage) -> Built:
    rows = batch.price_rows(stage, "US", 120)
    ops = batch.uplift(rows, -10)
    # A discount computed on the wrong field: one price goes negative (CHECK price >= 0).
    bad = batch.SEGMENT * (2 + stage.rng.randrange(3)) + stage.rng.randrange(batch.SEGMENT)
    ops[bad]["set"]["price"] = str(-abs(rows[bad][1]))
    doc = batch.changeset(stage, "us-discount", ops, description="US spring discount -10 %")
    report = stage.apply(stage.box.write_changeset("us-discount", doc))
    if report.status != "paused":
        raise BackoutError(f"the constraint scenario's batch ended {report.status}, not paused.")
    return Built(str(report.run_id), facts={"bad_row": rows[bad][0], "bad_op": bad + 1})


OUTAGE = Scenario(
    id="outage-midway",
    title="Outage midway",
    goal="Recognise a run left in doubt by an outage and roll it back exactly with the "
    "runbook, without resuming it: the rollback settles the in-doubt segment by reading the "
    "target, while a resume would first apply the rest of the batch.",
    runbook="rollback-batch",
    briefing="The n8n pricing flow's host went down during the EU price uplift. The run still "
    "shows as running. Product owners want the old prices back until it is re-planned.",
    expected=ROLLED_BACK,
    build=_outage,
)

CONSTRAINT = Scenario(
    id="constraint-midway",
    title="Constraint violation midway",
    goal="Read a paused, partly applied run; do not resume into the same failure; roll back "
    "what was applied with two approvals bound to the plan.",
    runbook="rollback-batch",
    briefing="The US discount batch stopped halfway with a database error. Part of the "
    "catalogue has the discount, part does not. Sales wants one consistent price list.",
    expected=ROLLED_BACK,
    build=_constraint,
)


def _out_of_band(stage: Stage) -> Built:
    rows = batch.price_rows(stage, "APAC", 120)
    doc = batch.changeset(stage, "apac-uplift", batch.uplift(rows, 8), description="APAC +8 %")
    during_after = 2 + stage.rng.randrange(4)  # segments written before the first edit
    during = rows[stage.rng.randrange(during_after * batch.SEGMENT)][0]
    after = rows[-1 - stage.rng.randrange(batch.SEGMENT)][0]
    edits = {during: "19.99", after: "29.99"}  # a merchandiser's manual price fixes
    done = 0

    def merchandiser(_done: int, _total: int) -> None:
        nonlocal done
        done += 1
        if done == during_after:
            stage.box.sql(f"UPDATE products SET price = {edits[during]} WHERE sku = '{during}'")

    report = stage.apply(stage.box.write_changeset("apac-uplift", doc), progress=merchandiser)
    stage.box.sql(f"UPDATE products SET price = {edits[after]} WHERE sku = '{after}'")
    return Built(str(report.run_id), facts={"edited": edits})


def _retry_storm(stage: Stage) -> Built:
    start = 900_000 + stage.rng.randrange(1000) * 100
    ops = [
        {
            "op": "insert",
            "row": {
                "sku": f"SKU-{start + i:06d}",
                "name": f"Spring collection {i + 1}",
                "region": stage.rng.choice(["EU", "US", "APAC"]),
                "price": f"{stage.rng.randint(500, 20_000) / 100:.2f}",
                "stock": stage.rng.randint(0, 200),
                "updated_at": "2026-11-27 02:13:00",
            },
        }
        for i in range(60)
    ]
    doc = batch.changeset(stage, "spring-launch", ops, description="Spring collection launch")
    path = stage.box.write_changeset("spring-launch", doc)
    first = stage.apply(path)
    retries = 2 + stage.rng.randrange(3)  # the flow's HTTP node timed out and retried
    for _ in range(retries):
        stage.apply(path)
    return Built(str(first.run_id), facts={"retries": retries, "inserts": len(ops)})


def _nulls(stage: Stage) -> Built:
    rows = batch.price_rows(stage, "EU", 40)
    good = batch.changeset(stage, "eu-sync", batch.uplift(rows, 3), description="EU sync")
    first = stage.apply(stage.box.write_changeset("eu-sync-v1", good))
    ops = batch.uplift(batch.price_rows(stage, "EU", 40), 3)
    ops[stage.rng.randrange(40)]["set"]["price"] = None  # an empty spreadsheet cell
    ops[stage.rng.randrange(40)]["set"]["price"] = "12,50"  # a decimal comma
    ops[stage.rng.randrange(40)]["set"]["stock"] = "n/a"
    bad = batch.changeset(stage, "eu-sync", ops, description="EU sync", version=2)
    try:
        stage.apply(stage.box.write_changeset("eu-sync-v2", bad))
    except ChangeSetInvalid as exc:
        problems = len(exc.problems)
    else:
        raise BackoutError("the nulls scenario's change set was not rejected.")
    return Built(str(first.run_id), facts={"rejected_version": 2, "problems": problems})


def _collateral(stage: Stage) -> Built:
    rows = batch.price_rows(stage, "US", 120)
    outside = stage.box.query(
        "SELECT sku FROM products WHERE region = 'EU' ORDER BY sku LIMIT 3 OFFSET ?",
        stage.rng.randrange(100),
    )
    skus = ", ".join(f"'{s}'" for (s,) in outside)
    # A forgotten "bundle sync" trigger from an old integration reprices other products.
    stage.box.sql(
        f"""CREATE TRIGGER bundle_sync AFTER UPDATE OF price ON products
        WHEN NEW.sku = '{rows[0][0]}' BEGIN
        UPDATE products SET price = price * 2 WHERE sku IN ({skus}); END"""
    )
    doc = batch.changeset(stage, "us-uplift", batch.uplift(rows, 4), description="US +4 %")
    report = stage.apply(stage.box.write_changeset("us-uplift", doc))
    return Built(str(report.run_id), facts={"collateral": [s for (s,) in outside]})


OUT_OF_BAND = Scenario(
    id="out-of-band-edit",
    title="Out-of-band edit during and after the batch",
    goal="Rows changed by someone else since the batch are conflicts a rollback must not "
    "overwrite: the assessment finds values nobody intended, so escalate, do not force it.",
    runbook="rollback-batch",
    briefing="The APAC uplift used last quarter's price list. Roll it back. A merchandiser "
    "says they fixed 'a couple of prices by hand' today.",
    expected=ESCALATED,
    build=_out_of_band,
)

RETRY_STORM = Scenario(
    id="retry-storm",
    title="Retry storm",
    goal="Trust idempotency: the automation sent the same batch several times; prove by "
    "reconciliation that every row was written once, and change nothing.",
    runbook="reconcile-and-fix",
    briefing="The spring-collection flow timed out and retried several times. The web shop "
    "team fears duplicate products.",
    expected=ALL_GOOD,
    build=_retry_storm,
)

NULLS = Scenario(
    id="nulls-and-types",
    title="Nulls and type surprises in the input",
    goal="A rejected change set writes nothing: confirm the target holds only the last good "
    "batch, and do not roll back good work.",
    runbook="reconcile-and-fix",
    briefing="The EU sync flow failed with 'change set rejected'. Someone asks whether "
    "half of the prices are now empty. The run to check is the last one that wrote.",
    expected=ALL_GOOD,
    build=_nulls,
)

COLLATERAL = Scenario(
    id="collateral-damage",
    title="Collateral damage",
    goal="Spot rows changed outside the change set (the aggregates moved more than the batch "
    "explains) and escalate instead of rolling back blindly.",
    runbook="rollback-batch",
    briefing="The US +4 % batch completed, but EU bundle prices doubled overnight. Roll back "
    "the batch?",
    expected=ESCALATED,
    build=_collateral,
)

SCENARIOS = (OUTAGE, CONSTRAINT, OUT_OF_BAND, RETRY_STORM, NULLS, COLLATERAL)
