"""Settings from ``backout.toml`` (working directory or ``BACKOUT_CONFIG``), validated strictly.

An unknown key, a wrong type or a bad value is refused with one sentence that names the file,
the line and the key. The shape follows DESIGN.md; more keys may be added, these keep their
meaning.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator

from console.errors import BadInput

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> dt.timedelta:
    """``"30m"`` → 30 minutes. Units: s, m, h, d, w."""
    m = _DURATION.match(text)
    if not m:
        raise ValueError(f"'{text}' is not a duration such as 30m, 4h or 7d")
    return dt.timedelta(seconds=int(m.group(1)) * _UNITS[m.group(2)])


class _Strict(BaseModel):
    # strict: a TOML string is not a number or a boolean ("no" must not mean False).
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


Duration = Annotated[str, Field(pattern=_DURATION.pattern)]


class TargetConfig(_Strict):
    url: str
    environment: str = "production"
    # Per-statement timeout for writes, in milliseconds, where the database has one.
    statement_timeout_ms: int = Field(default=5000, ge=1)


Exclusion = Literal["requester", "executor", "owner"]


class ApprovalPolicy(_Strict):
    """Defaults for every approval step; a runbook step may ask for more, never less."""

    quorum: int = Field(default=1, ge=1)
    require_roles: list[str] = Field(default_factory=list)  # at least one approver from each
    # requester: who started the runbook execution; executor: who runs a step of it;
    # owner: the human owner of the automation that produced the run (``[policy.owners]``).
    exclude: list[Exclusion] = Field(
        default_factory=lambda: ["requester", "executor", "owner"]  # type: ignore[arg-type]
    )
    expires_after: Duration = "30m"  # fail closed: an expired approval never counts


class RollbackPolicy(_Strict):
    require_runbook: bool = False  # a direct `backout rollback` exits 4 and names `runbook`
    runbook: str = "rollback-batch"
    window: Duration = "30d"  # default rollback window when the environment sets none


class EnvironmentPolicy(_Strict):
    """Governance for the targets of one environment (``[targets.X] environment``)."""

    operations: list[Literal["insert", "update", "delete", "upsert"]] = Field(
        default_factory=lambda: ["insert", "update", "delete", "upsert"]  # type: ignore[arg-type]
    )
    # An operation outside ``operations`` (a rollback of an insert is a delete) needs one extra
    # approval through a runbook; a direct entry point is refused.
    rollback_window: Duration | None = None  # else ``[policy.rollback] window``
    # A run older than the window: one extra approval through a runbook, or refused outright.
    past_window: Literal["extra_approval", "refuse"] = "extra_approval"
    require_runbook: bool = False  # rollbacks and fixes here only through a runbook
    require_approval: bool = False  # ... and only after an approval step
    retention: Duration | None = None  # keep this environment's runs longer than [policy]'s


class Policy(_Strict):
    version: int = 0
    roles: dict[str, list[str]] = Field(default_factory=dict)
    approval: ApprovalPolicy = Field(default_factory=ApprovalPolicy)
    rollback: RollbackPolicy = Field(default_factory=RollbackPolicy)
    environments: dict[str, EnvironmentPolicy] = Field(default_factory=dict)
    retention: Duration | None = None
    owners: dict[str, str] = Field(default_factory=dict)  # automation -> human owner

    def roles_of(self, user: str) -> list[str]:
        return sorted(role for role, users in self.roles.items() if user in users)

    def environment(self, name: str | None) -> EnvironmentPolicy | None:
        return None if name is None else self.environments.get(name)

    def rollback_window(self, environment: str | None) -> dt.timedelta:
        env = self.environment(environment)
        window = env.rollback_window if env and env.rollback_window else self.rollback.window
        return parse_duration(window)


class NotifyConfig(_Strict):
    webhook: str | None = None
    json_log: str | None = None
    retries: int = Field(default=3, ge=0, le=10)


def _normaliser(spec: dict[str, Any]) -> dict[str, Any]:
    """One table's ``[reconcile.normalise.TABLE]``, by the rules reconciliation applies."""
    from console.errors import BadInput
    from console.reconcile.normalise import Normalisers

    try:
        Normalisers.parse(spec)
    except BadInput as exc:
        raise ValueError(str(exc).removeprefix("Reconcile normaliser ").rstrip(".")) from None
    return spec


class ReconcileConfig(_Strict):
    """``[reconcile]``: the whole-table baseline behind ``collateral`` and the declared
    normalisers (``[reconcile.normalise.TABLE] column = {decimals = 2}``; a change set's own
    ``reconcile.normalise`` wins per column)."""

    full_baseline_rows: int = Field(default=10_000, ge=0)  # up to this: copy the table
    rows_per_bucket: int = Field(default=32, ge=1)  # above it: bucketed digests
    # Above this, no whole-table state (collateral from the aggregates only): the digests
    # cost a scan at apply and at reconcile (SQLite: ~5 s CPU per million rows).
    digest_max_rows: int = Field(default=5_000_000, ge=0)
    normalise: dict[str, Annotated[dict[str, Any], AfterValidator(_normaliser)]] = Field(
        default_factory=dict
    )


class IdentityConfig(_Strict):
    user: str | None = None


class ConsoleConfig(_Strict):
    theme: str | None = None
    keys: dict[str, str] = Field(default_factory=dict)  # binding id -> key(s)


class Settings(_Strict):
    journal: str | None = None
    identity: IdentityConfig = Field(default_factory=IdentityConfig)
    targets: dict[str, TargetConfig] = Field(default_factory=dict)
    policy: Policy = Field(default_factory=Policy)
    notify: NotifyConfig = Field(default_factory=NotifyConfig)
    reconcile: ReconcileConfig = Field(default_factory=ReconcileConfig)
    console: ConsoleConfig = Field(default_factory=ConsoleConfig)
    source: str | None = Field(default=None, exclude=True)

    @field_validator("targets")
    @classmethod
    def _target_names(cls, v: dict[str, TargetConfig]) -> dict[str, TargetConfig]:
        for name in v:
            if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
                raise ValueError(f"target name '{name}' may only use letters, digits, _ . -")
        return v

    def policy_digest(self) -> str:
        from console.canonical import digest

        return digest(self.policy.model_dump(mode="json"))


# Deeper than any configuration needs. tomllib recurses per level, and a RecursionError deep
# inside it can leave "Exception ignored" noise on stderr as its frames unwind.
MAX_NESTING = 100


def _nesting(text: str) -> int:
    """How deeply arrays and inline tables nest (brackets in strings and comments skipped)."""
    if text.count("[") + text.count("{") <= MAX_NESTING:
        return 0
    depth = deepest = 0
    quote: str | None = None
    comment = False
    for ch in text:
        if comment:
            comment = ch != "\n"
        elif quote is not None:
            quote = None if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch == "#":
            comment = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def _line_of(text: str, loc: tuple[Any, ...]) -> int | None:
    """Best-effort line number of a dotted key in a TOML document (tomllib keeps none).

    A list item (``loc`` ending in an index) is found on the line of its list's key.
    """
    while loc and isinstance(loc[-1], int):
        loc = loc[:-1]
    if not loc:
        return None
    last = str(loc[-1])
    tables = [str(p) for p in loc[:-1] if not isinstance(p, int)]
    header = ".".join(tables)
    in_table = header == ""
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if line.startswith("["):
            name = line.strip("[]").strip().replace('"', "")
            in_table = name == header
            if name == ".".join([*tables, last]):
                return number
            continue
        if in_table and re.match(rf'^"?{re.escape(last)}"?\s*=', line):
            return number
    return None


def _one_line(message: str) -> str:
    """Keys and values quoted from the file must not break the line or drive the terminal."""
    return "".join(
        c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in message
    )


def load_settings(path: str | os.PathLike[str] | None = None) -> Settings:
    """Load ``path``, else ``$BACKOUT_CONFIG``, else ``./backout.toml``; defaults if none."""
    explicit = path or os.environ.get("BACKOUT_CONFIG")
    file = Path(explicit) if explicit else Path("backout.toml")
    if not file.exists():
        if explicit:
            raise BadInput(
                f"{file}: configuration file not found; check --config or BACKOUT_CONFIG."
            )
        return Settings()
    try:
        text = file.read_text(encoding="utf-8")
        if _nesting(text) > MAX_NESTING:
            raise RecursionError  # refused before tomllib recurses into it
        data = tomllib.loads(text)
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(_one_line(f"{file}: cannot read the configuration ({exc}).")) from None
    except tomllib.TOMLDecodeError as exc:
        raise BadInput(_one_line(f"{file}: not valid TOML ({exc}); fix the syntax.")) from None
    except RecursionError:
        raise BadInput(f"{file}: nested too deeply to be a configuration.") from None
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(err["loc"])
        key = ".".join(str(p) for p in loc)
        line = _line_of(text, loc)
        where = f"{file}:{line}" if line else str(file)
        if err["type"] == "extra_forbidden":
            raise BadInput(
                _one_line(f"{where}: unknown key '{key}'; remove it or check its spelling.")
            ) from None
        raise BadInput(
            _one_line(f"{where}: '{key}' {err['msg'].lower()}; fix the value.")
        ) from None
    return settings.model_copy(update={"source": str(file)})
