"""What every yinling HTTP service shares: a body-size limit and one JSON shape for every refusal.

Errors come back as ``{"error": "<one sentence>"}`` (422 adds ``detail``), so the family page, the
staff console and other programs can show them without knowing FastAPI's formats.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException


def install_json_errors(app: FastAPI, max_body: int) -> None:
    """Refuse bodies over ``max_body`` bytes (413) and render validation and HTTP errors as one sentence."""

    @app.middleware("http")
    async def limit_body(request: Request, call_next: Any) -> Response:
        length = request.headers.get("content-length", "0")
        if not length.isdigit() or int(length) > max_body:
            return JSONResponse({"error": f"the request body must be at most {max_body} bytes."}, status_code=413)
        return await call_next(request)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [{"loc": [str(part) for part in error.get("loc", ())], "msg": str(error.get("msg", ""))}
                    for error in exc.errors()]
        first = problems[0] if problems else {"loc": [], "msg": "invalid"}
        return JSONResponse({"error": f"invalid request: {'.'.join(first['loc'])}: {first['msg']}.",
                             "detail": problems}, status_code=422)

    @app.exception_handler(HTTPException)
    async def refused(request: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)
