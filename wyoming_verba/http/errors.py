"""Errors as OpenAI sends them: a JSON body `{"error": {"message", "type", "param",
"code"}}` with the matching HTTP status, so OpenAI's clients raise their usual exception
types (BadRequestError, AuthenticationError, NotFoundError, RateLimitError, ...)."""

from __future__ import annotations

import logging

from aiohttp import web

_LOGGER = logging.getLogger(__name__)

_TYPES = {401: "authentication_error", 429: "rate_limit_error"}


class ApiError(Exception):
    def __init__(self, status: int, message: str, *, param: str | None = None,
                 code: str | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.retry_after = retry_after

    def response(self) -> web.Response:
        kind = _TYPES.get(self.status) or (
            "server_error" if self.status >= 500 else "invalid_request_error")
        headers = {}
        if self.retry_after is not None:
            headers["Retry-After"] = str(max(int(self.retry_after + 0.999), 1))
        if self.status == 401:
            headers["WWW-Authenticate"] = 'Bearer realm="wyoming-verba"'
        response = web.json_response(
            {"error": {"message": self.message, "type": kind, "param": self.param,
                       "code": self.code}},
            status=self.status, headers=headers)
        if self.status in (408, 413):  # the body was not read: nothing left to keep alive
            response.force_close()
        return response


@web.middleware
async def openai_errors(request: web.Request, handler) -> web.StreamResponse:
    """Every error leaves as OpenAI-style JSON: ours, aiohttp's own (unknown route, wrong
    method, body over the size limit) and bugs (500, with the traceback in the log)."""
    try:
        return await handler(request)
    except ApiError as exc:
        return exc.response()
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        message = {404: f"no such endpoint: {request.method} {request.path}",
                   405: f"{request.method} is not allowed on {request.path}",
                   413: "the request body is too large"}.get(exc.status, exc.reason)
        return ApiError(exc.status, message, code=_slug(exc.reason)).response()
    except (ConnectionError, TimeoutError):
        raise
    except Exception:
        _LOGGER.exception("HTTP %s %s: internal error", request.method, request.path)
        return ApiError(500, "internal error; see the server log",
                        code="internal_error").response()


def _slug(reason: str) -> str:
    return reason.lower().replace(" ", "_")
