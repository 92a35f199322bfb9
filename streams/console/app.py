"""The console's ASGI application: pages, JSON API, OpenAPI document and the stylesheet.

``create_app(settings)`` builds it; ``churnwatch console`` serves it with uvicorn. One Redis
client (the worker's async ``Store``) is shared by all requests and closed on shutdown. Every
answer carries ``Server-Timing: app;dur=<ms>``, the time the application took to start it (what
a browser's tools and the benchmark read apart from the network and the client).
"""

from __future__ import annotations

import contextlib
import gc
import time
from typing import AsyncIterator

from redis.exceptions import RedisError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from streams.console import api, pages
from streams.console.deps import Deps
from streams.settings import Settings

__all__ = ["create_app", "ServerTiming"]


async def _http_error(request: Request, exc: Exception) -> Response:
    """Unknown paths and wrong methods: JSON under /api, a page elsewhere."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    if request.url.path.startswith("/api/"):
        return api.error_response(status, "not_found" if status == 404 else "http_error", str(getattr(exc, "detail", exc)))
    return pages._render("message.html", status, title="Not found" if status == 404 else "Error",
                         message=f"nothing at {request.url.path}", nav=None)


class ServerTiming:
    """ASGI middleware: adds ``Server-Timing: app;dur=<ms>`` (request in to response start)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()

        async def timed(message: Message) -> None:
            if message["type"] == "http.response.start":
                took = f"app;dur={(time.perf_counter() - t0) * 1000:.2f}".encode()
                message = {**message, "headers": [*message.get("headers", ()), (b"server-timing", took)]}
            await send(message)

        await self.app(scope, receive, timed)


def create_app(settings: Settings, deps: Deps | None = None) -> Starlette:
    deps = deps or Deps.from_settings(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # Everything loaded so far (modules, templates, the model) lives as long as the process:
        # moved out of the collector's sight, a full collection no longer walks ~70k objects in
        # the middle of a request (measured: the at-risk call's p99 fell by about half, -10% CPU).
        gc.collect()
        gc.freeze()
        if deps.file_model is not None:  # say at start if CHURNWATCH_MODEL_PATH is not the model in use
            with contextlib.suppress(RedisError, OSError):  # Redis not up yet (or refusing): the first page looks again
                await deps.check_model()
        yield
        await deps.store.close()

    app = Starlette(
        routes=[*api.routes, *pages.routes, Mount("/static", StaticFiles(packages=[("streams.console", "static")]), name="static")],
        exception_handlers={HTTPException: _http_error},
        lifespan=lifespan,
    )
    app.add_middleware(ServerTiming)
    app.state.deps = deps
    return app
