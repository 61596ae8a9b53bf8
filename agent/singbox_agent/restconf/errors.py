"""The one place that maps every failure to an HTTP status and an `ietf-restconf:errors` body.

Classification of library exceptions (libyang, sysrepo, an agent's SysrepoValidationFailedError) is shared with the
NETCONF server through `singbox_agent.mgmt.errors`; this module adds the HTTP side: RFC 8040 §7's error-tag ->
status table, the few places where RFC 8040 asks for a specific status (401, 404, 405, 406, 412, 415), and the body,
printed by libyang from the private twin of ietf-restconf (restconf/yang/, see twin.py).
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from typing import Any

import libyang
import structlog
import sysrepo

from singbox_agent.mgmt.errors import MgmtError, MgmtException, from_exception

log = structlog.get_logger("restconf")

# RFC 8040 §7. Where the table gives a choice we pick the status the RFC's text uses for the common case:
# access-denied 403 (401 only for failed authentication), operation-not-supported 405 (501 for unknown RPCs is
# set explicitly), data-missing 409 (404 for a missing target resource is set explicitly).
HTTP_STATUS: dict[str, int] = {
    "in-use": 409,
    "invalid-value": 400,
    "too-big": 413,
    "missing-attribute": 400,
    "bad-attribute": 400,
    "unknown-attribute": 400,
    "missing-element": 400,
    "bad-element": 400,
    "unknown-element": 400,
    "unknown-namespace": 400,
    "access-denied": 403,
    "lock-denied": 409,
    "resource-denied": 409,
    "rollback-failed": 500,
    "data-exists": 409,
    "data-missing": 409,
    "operation-not-supported": 405,
    "operation-failed": 500,
    "partial-operation": 500,
    "malformed-message": 400,
}


class RestconfError(MgmtException):
    """An error the RESTCONF server detected itself, with an optional status that overrides the table."""

    def __init__(
        self,
        error_type: str,
        error_tag: str,
        message: str,
        *,
        path: str | None = None,
        app_tag: str | None = None,
        status: int | None = None,
        allowed: tuple[str, ...] = (),
        retry_after: int | None = None,
    ) -> None:
        super().__init__(MgmtError(error_type, error_tag, message, app_tag, path))
        self.status = status
        self.allowed = allowed
        self.retry_after = retry_after


@dataclass(frozen=True)
class HttpFailure:
    """What the client gets: status, the error records, and extra headers (Allow, WWW-Authenticate)."""

    status: int
    errors: tuple[MgmtError, ...]
    headers: tuple[tuple[str, str], ...] = ()


def status_for(error: MgmtError) -> int:
    if error.error_tag == "operation-failed" and error.error_app_tag:
        # A YANG constraint the request's data broke (must, unique, min/max-elements: RFC 7950 §15 names them by
        # error-app-tag). RFC 8040 §7 offers 412 or 500 for operation-failed, but the fault is the client's data,
        # not the server (RFC 9110 §15.5.1: 400).
        return 400
    return HTTP_STATUS.get(error.error_tag, 500)


def to_failure(exc: BaseException, ctx: libyang.Context | None = None) -> HttpFailure:
    """Every exception -> status + errors. Unknown exceptions are 500 operation-failed without internals."""
    if isinstance(exc, RestconfError):
        status = exc.status or status_for(exc.error)
        headers: list[tuple[str, str]] = []
        if exc.allowed:
            headers.append(("Allow", ", ".join(exc.allowed)))
        if status == 401:
            headers.append(("WWW-Authenticate", 'Basic realm="restconf", charset="UTF-8"'))
        if exc.retry_after is not None:
            headers.append(("Retry-After", str(exc.retry_after)))
        return HttpFailure(status, exc.errors, tuple(headers))
    errors = tuple(from_exception(exc, ctx))
    status = status_for(errors[0]) if errors else 500
    if isinstance(exc, sysrepo.SysrepoUnauthorizedError):
        status = 403
    return HttpFailure(status, errors)


def bad_request(message: str, *, tag: str = "invalid-value", path: str | None = None) -> RestconfError:
    return RestconfError("protocol", tag, message, path=path)


def not_found(message: str, path: str | None = None) -> RestconfError:
    return RestconfError("application", "invalid-value", message, path=path, status=404)


def not_acceptable(message: str) -> RestconfError:
    return RestconfError("application", "invalid-value", message, status=406)


def unsupported_media_type(message: str) -> RestconfError:
    return RestconfError("application", "invalid-value", message, status=415)


def precondition_failed(message: str) -> RestconfError:
    return RestconfError("protocol", "operation-failed", message, status=412)


def unauthorized(message: str = "Authentication required") -> RestconfError:
    return RestconfError("protocol", "access-denied", message, status=401)


def too_big(message: str) -> RestconfError:
    return RestconfError("transport", "too-big", message, status=413)


def log_loop_exception(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """The event loop's exception handler: a client that leaves a TLS connection uncleanly (an event stream closed
    mid-record, a reset) made asyncio print Hypercorn's traceback unstructured on stderr. Those are one structured
    line without traceback; anything else keeps asyncio's full report."""
    exc = context.get("exception")
    if isinstance(exc, ssl.SSLError | ConnectionError | TimeoutError):
        log.info("client connection ended uncleanly", error=type(exc).__name__, reason=str(exc) or None,
                 where=context.get("message"))
        return
    loop.default_exception_handler(context)
