"""The FastAPI application: routes are thin; the engine, rollback and the gate decide.

Blocking work (journal, engine) runs in Starlette's thread pool (sync routes); each write
uses its own ``Journal`` with the token's name as actor, so every event names the automation.
"""

# No `from __future__ import annotations`: FastAPI reads the local `Auth` alias at runtime.

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from console.canonical import mask_url
from console.changes import ChangeSet, ChangeSetInvalid
from console.config import Settings
from console.errors import BackoutError, BadInput, Blocked, NotFound
from console.intake import background, body, idempotency, metrics, tokens
from console.intake.limits import RateLimiter, TooLarge, read_body
from console.intake.tables import ensure
from console.journal import Journal
from console.paths import data_dir

log = logging.getLogger("backout.intake")

MiB = 1024 * 1024


@dataclass
class Config:
    journal_url: str
    settings: Settings
    intake_dir: Path = field(default_factory=lambda: data_dir() / "intake")
    max_body: int = 10 * MiB
    rate: float = 5.0  # requests per second per token, on average
    burst: int = 60


class ApiError(Exception):
    def __init__(self, status: int, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.status = status
        self.error = error
        self.extra = extra


def _error(status: int, error: str, **extra: Any) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if "retry_after" in extra:
        headers = {"Retry-After": str(extra["retry_after"])}
    return JSONResponse({"error": error, "problems": [], **extra}, status, headers=headers)


def _status_of(exc: BackoutError) -> int:
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, Blocked):
        return 403
    if isinstance(exc, ChangeSetInvalid):
        return 422
    if isinstance(exc, BadInput):
        return 409  # a state conflict: the run is not in a state for this action
    return 500


def _only_configured_targets(cs: ChangeSet, settings: Settings, loaded: body.Loaded) -> None:
    """A token may write only to the targets backout.toml names (by name or the same URL):
    never to a database URL a document brings along."""
    from console.targets.resolve import is_configured

    for ref in (cs.target, *(step.target for step in cs.steps)):
        if ref is not None and not is_configured(ref, settings):
            loaded.discard()
            raise ApiError(
                422,
                f"target '{mask_url(ref)}' is not a target in backout.toml; the intake writes "
                "only to configured targets: name one of them (or add this one there).",
            )


def create_app(config: Config) -> FastAPI:
    reader = Journal(config.journal_url, actor="intake")
    ensure(reader.engine)
    limiter = RateLimiter(config.rate, config.burst)
    locks = idempotency.KeyLocks()
    api = FastAPI(
        title="backout intake",
        version="1",
        description="Apply, pause, resume, query and roll back journaled batch updates.",
        # No endpoint without a token, the schema included (served below); no docs UIs.
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )

    @api.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return _error(exc.status, exc.error, **exc.extra)

    @api.exception_handler(HTTPException)
    async def _http(_: Request, exc: HTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail))

    @api.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {"field": ".".join(str(p) for p in e.get("loc", ())), "message": str(e.get("msg"))}
            for e in exc.errors()
        ]
        return JSONResponse({"error": "the request is invalid", "problems": problems}, 422)

    @api.exception_handler(BackoutError)
    async def _backout(_: Request, exc: BackoutError) -> JSONResponse:
        status = _status_of(exc)
        if status == 500:
            log.error("request failed: %s", exc.message)
        return _error(status, exc.message)

    @api.exception_handler(Exception)
    async def _internal(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error")  # the traceback stays in the server log
        return _error(500, f"internal error ({type(exc).__name__}); see the server log")

    def auth(authorization: Annotated[str | None, Header()] = None) -> tokens.Token:
        scheme, _, secret = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise ApiError(401, "a bearer token is required (Authorization: Bearer ...)")
        token = tokens.authenticate(reader, secret.strip())
        if token is None:
            raise ApiError(401, "the token is unknown or revoked")
        wait = limiter.allow(token.name)
        if wait:
            raise ApiError(429, "too many requests for this token", retry_after=int(wait) + 1)
        return token

    Auth = Annotated[tokens.Token, Depends(auth)]

    @contextmanager
    def journal_as(token: tokens.Token) -> Iterator[Journal]:
        j = Journal(config.journal_url, actor=token.name, create=False)
        try:
            yield j
        finally:
            j.close()

    def run_url(run_id: str) -> str:
        return f"/runs/{run_id}"

    def started(run_id: str, **extra: Any) -> JSONResponse:
        return JSONResponse({"run_id": run_id, "url": run_url(run_id), **extra}, 202)

    # --- change sets ------------------------------------------------------------------

    def accept(
        token: tokens.Token, data: bytes, suffix: str, args: dict[str, Any], key: str | None
    ) -> JSONResponse:
        try:
            loaded = body.load(data, suffix, config.intake_dir, args)
        except body.BodyInvalid as exc:
            raise ApiError(422, exc.message, problems=exc.problems) from None
        cs = loaded.changeset
        _only_configured_targets(cs, config.settings, loaded)
        ident = key or f"{cs.name}:v{cs.version}:{cs.digest}"
        with locks.get(token.name, ident):
            known = idempotency.find(reader, token.name, ident)
            if known is not None:
                if known.digest != cs.digest:
                    raise ApiError(
                        409,
                        "this Idempotency-Key was used for another change set; "
                        "use a new key for new content",
                    )
                return started(known.run_id, replayed=True)

            def work(j: Journal) -> Any:
                from console.engine.apply import Engine

                return Engine(j, config.settings).apply(cs, source_args=loaded.args)

            try:
                run_id = background.start(config.journal_url, token.name, work)
            except ChangeSetInvalid as exc:
                loaded.discard()
                raise ApiError(422, **_invalid(exc, loaded.path)) from None
            except BaseException:
                loaded.discard()
                raise
            with journal_as(token) as j:
                idempotency.record(j, token.name, ident, run_id, cs.digest)
        return started(run_id)

    @api.post(
        "/changesets",
        status_code=202,
        summary="Apply a change set in the background",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": {"type": ["object", "array"]}},
                    "text/csv": {"schema": {"type": "string"}},
                    "application/yaml": {"schema": {"type": "string"}},
                },
            }
        },
    )
    async def post_changeset(
        request: Request,
        token: Auth,
        table: str | None = None,
        key: Annotated[str | None, Query(description="Key column(s), comma-separated.")] = None,
        op: Annotated[str | None, Query(description="insert|update|delete|upsert")] = None,
        name: str | None = None,
        version: Annotated[int | None, Query(ge=1)] = None,
        target: Annotated[
            str | None, Query(description="A target name from backout.toml (not a URL).")
        ] = None,
        idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
    ) -> JSONResponse:
        suffix = body.suffix_for(request.headers.get("content-type"))
        if suffix is None:
            raise ApiError(415, "send application/json, text/csv or application/yaml")
        try:
            data = await read_body(request, config.max_body)
        except TooLarge:
            cap = config.max_body
            raise ApiError(413, f"the body is over {cap} bytes; split the batch") from None
        args: dict[str, Any] = {}
        if table:
            args["table"] = table
        if key:
            args["key"] = [k.strip() for k in key.split(",") if k.strip()]
        if op:
            args["op"] = op
        if name:
            args["name"] = name
        if version:
            args["version"] = version
        if target is not None:
            # Names only: a token must not point the server at an arbitrary database URL.
            if target not in config.settings.targets:
                raise ApiError(422, f"target '{target}' is not a target name in backout.toml")
            args["target"] = target
        return await run_in_threadpool(accept, token, data, suffix, args, idempotency_key)

    # --- runs -------------------------------------------------------------------------

    @api.get("/runs", summary="Runs, newest first")
    def list_runs(
        _: Auth,
        status: Annotated[list[str] | None, Query()] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> list[dict[str, Any]]:
        from console.journal.summary import run_summary

        return [run_summary(r) for r in reader.runs(status=status, limit=limit)]

    @api.get("/runs/{run_id}", summary="One run, as `backout show --json`")
    def get_run(run_id: str, _: Auth) -> dict[str, Any]:
        from console.journal.summary import run_summary

        r = reader.get_run(run_id)
        data = run_summary(r)
        data["steps"] = [
            {"step_no": s.step_no, "name": s.name, "table": s.tbl, "operations": s.operations}
            for s in reader.steps(r.id)
        ]
        data["operations_by_status"] = reader.operation_status_counts(r.id)
        data["events"] = reader.count_events(r.id)
        return data

    @api.get("/runs/{run_id}/events", summary="A run's events after SEQ (for polling)")
    def get_events(
        run_id: str,
        _: Auth,
        after: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    ) -> dict[str, Any]:
        r = reader.get_run(run_id)
        page = reader.events(r.id, after_seq=after, limit=limit)
        return {
            "run_id": r.id,
            "events": [e.as_dict() for e in page],
            "next": page[-1].seq if page else after,
        }

    @api.post("/runs/{run_id}/pause", summary="Pause at the next segment boundary")
    def pause(run_id: str, token: Auth) -> dict[str, Any]:
        from console.engine.apply import Engine

        with journal_as(token) as j:
            return Engine(j, config.settings).request_pause(run_id).as_dict()

    @api.post("/runs/{run_id}/resume", status_code=202, summary="Resume in the background")
    def resume(run_id: str, token: Auth) -> JSONResponse:
        run = reader.get_run(run_id)

        def work(j: Journal) -> Any:
            if run.kind == "rollback":
                from console.rollback.execute import Rollback

                return Rollback(j, config.settings).resume(run.id)
            from console.engine.apply import Engine

            return Engine(j, config.settings).resume(run.id)

        # Answer once the run is taken up again (its first event) or the work ended.
        background.start(config.journal_url, token.name, work, until=lambda e: True)
        return started(run.id)

    @api.post(
        "/runs/{run_id}/rollback",
        status_code=202,
        summary="Roll a run back through the gate (403 names the runbook when one is required)",
    )
    def rollback(run_id: str, token: Auth) -> JSONResponse:
        from console.rollback.execute import Options, Rollback
        from console.runbook import gate

        run = reader.get_run(run_id)
        with journal_as(token) as j:
            try:
                gate.check(
                    config.settings,
                    gate.GateRequest("rollback", run.id, token.name, owner=token.owner),
                    j,
                )
            except Blocked as exc:
                raise ApiError(
                    403, exc.message, runbook=config.settings.policy.rollback.runbook
                ) from None

        def work(j: Journal) -> Any:
            return Rollback(j, config.settings).execute(run.id, Options())

        rid = background.start(config.journal_url, token.name, work)
        return started(rid, parent_run=run.id)

    @api.get("/openapi.json", include_in_schema=False)
    def openapi(_: Auth) -> JSONResponse:
        return JSONResponse(schema())

    def schema() -> dict[str, Any]:
        if api.openapi_schema is None:
            from fastapi.openapi.utils import get_openapi

            api.openapi_schema = get_openapi(
                title=api.title,
                version=api.version,
                description=api.description,
                routes=api.routes,
            )
        return api.openapi_schema

    @api.get("/metrics", response_class=PlainTextResponse, summary="Prometheus metrics")
    def get_metrics(_: Auth) -> PlainTextResponse:
        return PlainTextResponse(
            metrics.render(reader), media_type="text/plain; version=0.0.4; charset=utf-8"
        )

    return api


def _invalid(exc: ChangeSetInvalid, path: Path) -> dict[str, Any]:
    bad = body.invalid(exc, path)
    return {"error": bad.message, "problems": bad.problems}
