"""The one pipeline every tool call goes through, whoever calls.

role -> rate limit -> schema -> idempotency -> circuit breaker -> handler (one transaction)
-> one AuditEntry. Errors come out as ToolError with a stable code; nothing else escapes.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from django.db import DatabaseError, DataError, IntegrityError, transaction

from core.accounts.roles import role_level
from core.accounts.services import department_code
from core.audit import writer as audit_writer
from core.db import write_slot
from core.errors import ToolError
from core.events import bus as event_bus
from core.tools import breaker, idempotency, ratelimit
from core.tools.registry import get_tool

log = logging.getLogger(__name__)


@dataclass
class CallContext:
    """What a handler may know about its call."""

    user: Any
    role_level: int
    via: str
    batch_id: str | None
    idempotency_key: str | None


@dataclass
class _Audit:
    tool: str
    user: Any
    via: str
    batch_id: str | None
    idempotency_key: str | None
    digest: str = ""

    def write(self, started: float, *, error: ToolError | None = None, replayed: bool = False) -> int:
        """Insert the call's AuditEntry; returns its id."""
        user = self.user if getattr(self.user, "pk", None) else None
        return audit_writer.record(
            tool=str(self.tool), user_id=getattr(user, "pk", None), username=getattr(user, "username", "") or "",
            department=_department(user), via=self.via, arguments_digest=self.digest, success=error is None,
            error_code=error.code if error else "", error_message=error.message if error else "",
            duration_ms=int((time.perf_counter() - started) * 1000), idempotency_key=str(self.idempotency_key or ""),
            replayed=replayed, batch_id=self.batch_id or "")

    def write_quietly(self, started: float, error: ToolError) -> None:
        try:
            self.write(started, error=error)
        except DatabaseError:
            log.exception("could not write the audit entry of a failed %s call", self.tool)


def _department(user) -> str:
    if user is None:
        return ""
    cached = getattr(user, "_ax_department", None)
    if cached is None:
        cached = department_code(user)
        user._ax_department = cached
    return cached


def call_tool(
    name: str,
    arguments: Any,
    user,
    idempotency_key: str | None = None,
    batch: str | None = None,
    *,
    via: str = "python",
    role_cap: int | None = None,
    count_rate: bool | None = None,
) -> dict[str, Any]:
    """Run tool `name` for `user` and return its JSON-ready output, or raise ToolError.

    role_cap limits the user's role (an API token's role). Calls inside a batch
    (batch set) are not counted against the rate limit: the batch was counted once.
    """
    started = time.perf_counter()
    audit = _Audit(name, user, via, str(batch) if batch else None, idempotency_key)
    try:
        tool = get_tool(name)
        level = role_level(user)
        if role_cap is not None:
            level = min(level, role_cap)
        if level < tool.role_level:
            raise ToolError("FORBIDDEN", f"{name} needs role {tool.role}")
        if count_rate if count_rate is not None else batch is None:
            ratelimit.hit(user.pk)
        arguments = tool.validate(arguments)
        if idempotency_key is not None:
            idempotency.check_key(idempotency_key)
        audit.digest = idempotency.digest(name, arguments)
        ticket = breaker.before_call()
    except ToolError as error:
        audit.write_quietly(started, error)
        raise

    ctx = CallContext(user=user, role_level=level, via=via, batch_id=audit.batch_id, idempotency_key=idempotency_key)
    try:
        output, error = _run(tool, arguments, ctx, audit, started)
    except ToolError as refusal:  # the idempotency key was reused for another request
        breaker.record_success(ticket)
        audit.write_quietly(started, refusal)
        raise
    except (DataError, IntegrityError):
        # The database refused this call's data (a value it cannot store, a constraint):
        # the caller's problem, not an outage, so it must not trip the breaker for everyone.
        log.exception("database refused the data of %s", name)
        breaker.record_success(ticket)
        failure = ToolError("INVALID_DATA", "the database refused a value of this call; it was not applied")
        audit.write_quietly(started, failure)
        raise failure from None
    except DatabaseError:
        log.exception("backend failure in %s", name)
        breaker.record_failure(ticket)
        failure = ToolError("BACKEND_UNAVAILABLE", "the ERP backend failed to complete the call; it was not applied")
        audit.write_quietly(started, failure)
        raise failure from None
    except Exception:
        log.exception("unexpected error in %s", name)
        failure = ToolError("INTERNAL_ERROR", "the call failed unexpectedly and was not applied")
        audit.write_quietly(started, failure)
        raise failure from None
    breaker.record_success(ticket)
    if error is not None:
        raise error
    return output


class _Refused(Exception):
    """Carries a handler's ToolError out of the transaction so that it rolls back."""

    def __init__(self, error: ToolError) -> None:
        self.error = error


def _run(tool, arguments: dict[str, Any], ctx: CallContext, audit: _Audit, started: float):
    """Idempotency claim, handler and audit row in one transaction. Returns (output, error).

    A refused call (business error) rolls back whole; its audit row and stored idempotent
    error are then written in a second short transaction. The successful path, the common
    one, thus needs no savepoint.
    """
    if not tool.transactional:
        return _run_orchestrator(tool, arguments, ctx, audit, started)
    with write_slot():
        try:
            with transaction.atomic():
                replay = _claim_or_replay(tool, ctx, audit, started)
                if replay is not None:
                    return replay
                try:
                    # Events the handler publishes are held until the audit row exists, then
                    # stored in this transaction naming it (a refusal discards them with the rollback).
                    with event_bus.collect(ctx.user, ctx.via) as events:
                        output = tool.handler(arguments, ctx)
                except ToolError as error:
                    raise _Refused(error) from None
                audit_id = _record(ctx, audit, started, output, None)
                event_bus.flush(events, audit_id=audit_id)
                return output, None
        except _Refused as refused:
            with transaction.atomic():
                replay = _claim_or_replay(tool, ctx, audit, started)
                if replay is not None:  # a concurrent call with the key finished first
                    return replay
                _record(ctx, audit, started, None, refused.error)
            return None, refused.error


def _claim_or_replay(tool, ctx: CallContext, audit: _Audit, started: float):
    key = ctx.idempotency_key
    record = idempotency.claim(ctx.user, key, tool.name, audit.digest) if key else None
    if record is None:
        return None
    error = None if record.success else ToolError.from_dict(record.response)
    audit.write(started, error=error, replayed=True)
    return (record.response if record.success else None), error


def _record(ctx: CallContext, audit: _Audit, started: float, output, error: ToolError | None) -> int:
    if ctx.idempotency_key:
        idempotency.store(ctx.user, ctx.idempotency_key, success=error is None,
                          response=output if error is None else error.as_dict())
    return audit.write(started, error=error)


def _run_orchestrator(tool, arguments: dict[str, Any], ctx: CallContext, audit: _Audit, started: float):
    """A tool whose inner calls commit on their own: the key is claimed in a short transaction
    first, so a concurrent duplicate sees IDEMPOTENCY_IN_PROGRESS instead of running twice."""
    if ctx.idempotency_key:
        with write_slot(), transaction.atomic():
            replay = _claim_or_replay(tool, ctx, audit, started)
        if replay is not None:
            return replay
    output, error = None, None
    try:
        output = tool.handler(arguments, ctx)
    except ToolError as refusal:
        error = refusal
    except BaseException:
        if ctx.idempotency_key:
            idempotency.release(ctx.user, ctx.idempotency_key)
        raise
    with write_slot(), transaction.atomic():
        _record(ctx, audit, started, output, error)
    return output, error
