"""The aiohttp application: routes, the middleware that turns errors into HTTP answers (by
the table in `errors`), and the small admin, health and metrics endpoints. Pages live in
`page_routes`, files in `file_routes`, everything the running proxy owns in `state`.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.web_request import BaseRequest

from proxy import __version__
from proxy.config import Settings
from proxy.server.backend_routes import add_backend_routes
from proxy.server.cluster_routes import peer_file_handler
from proxy.server.errors import BadRequest, error_answer
from proxy.server.file_routes import file_handler
from proxy.server.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from proxy.server.page_routes import page_handler, variants_json_handler
from proxy.server.responses import error_response
from proxy.server.state import STATE, ProxyState
from proxy.server.status_page import status_handler
from proxy.server.upload_routes import add_upload_routes
from proxy.simple.names import normalize_name

# -- middleware: errors -> HTTP answers --------------------------------------------------


@web.middleware
async def error_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Turns every known error into its HTTP answer; the access log is written by
    `logs.AccessLog` once the answer is sent (`count_request` feeds the metrics)."""
    try:
        return await handler(request)
    except Exception as exc:
        response = error_answer(exc)
        if response is None:
            raise
        return response


def request_counter(app: web.Application) -> Callable[[BaseRequest, web.StreamResponse, str], None]:
    """Per-request metrics, counted with the status actually sent (malformed requests too)."""
    state = app[STATE]

    def count(request: BaseRequest, response: web.StreamResponse, route: str) -> None:
        state.metrics.requests.labels(route, str(response.status)).inc()
        if response.status >= 500:
            state.recent_errors.answer(response.status, request.path, response.get("reason"))

    return count


# -- admin, health, metrics ----------------------------------------------------------------


def _is_admin(request: web.Request, settings: Settings) -> bool:
    try:
        if request.remote and ipaddress.ip_address(request.remote).is_loopback:
            return True
    except ValueError:
        pass
    if settings.admin_token_env and os.environ.get(settings.admin_token_env):
        expected = f"Bearer {os.environ[settings.admin_token_env]}"
        return request.headers.get("Authorization", "") == expected
    return False


async def invalidate_handler(request: web.Request) -> web.Response:
    state = request.app[STATE]
    if not _is_admin(request, state.settings):
        return error_response(403, "admin endpoints are for loopback clients or the admin token")
    project = request.match_info["project"]
    if not 0 < len(project) <= 512:
        raise BadRequest("bad project name")
    name = normalize_name(project)
    state.page_service.invalidate(name)
    if state.backends is not None:
        state.backends.invalidate(name)
    state.variant_metadata.forget(name)
    if state.cluster is not None:
        upstreams = [u.name for u in state.upstreams]
        problem = await state.cluster.invalidate(name, upstreams)
        if problem is not None:
            return web.json_response({"invalidated": name, "replicas": problem}, status=503)
    return web.json_response({"invalidated": name})


async def health_handler(request: web.Request) -> web.Response:
    """200 while the process can serve; "degraded", with the reasons, while an upstream does
    not answer (cached pages and files are still served, so a load balancer keeps it)."""
    state = request.app[STATE]
    problems = await state.cluster.problems() if state.cluster is not None else []
    statuses = await state.upstream_watch.statuses()
    reasons = [f"upstream {u.name}: {u.reason}" for u in statuses if u.answering is False]
    reasons += problems
    return web.json_response(
        {
            "status": "degraded" if reasons else "ok",
            "reasons": reasons,
            "version": __version__,
            "upstreams": [u.name for u in state.upstreams],
            **({"problems": problems} if problems else {}),
            "offline": state.settings.offline,
        }
    )


async def metrics_handler(request: web.Request) -> web.Response:
    body = request.app[STATE].metrics.render()
    return web.Response(body=body, headers={"Content-Type": METRICS_CONTENT_TYPE})


def make_app(settings: Settings) -> web.Application:
    app = web.Application(
        middlewares=[error_middleware],
        client_max_size=64 * 1024,
        handler_args={
            "max_line_size": settings.max_request_bytes,
            "max_field_size": settings.max_request_bytes,
        },
    )
    state = ProxyState(settings)
    app[STATE] = state

    async def lifecycle(app: web.Application) -> Any:
        await state.start()
        yield
        await state.close()

    app.cleanup_ctx.append(lifecycle)
    app.router.add_get("/", status_handler, name="status")
    app.router.add_get("/health", health_handler, name="health")
    app.router.add_get("/metrics", metrics_handler, name="metrics")
    app.router.add_post("/admin/invalidate/{project}", invalidate_handler, name="admin")
    app.router.add_get("/files/{project}/{file_id}/{filename}", file_handler, name="file")
    app.router.add_get("/_cluster/files/{key}", peer_file_handler, name="cluster-file")
    app.router.add_get(
        "/variants-json/{project}/{file_id}/{labels}/{filename}",
        variants_json_handler,
        name="variants-json",
    )
    add_upload_routes(app)
    add_backend_routes(app)
    app.router.add_get("/{tail:.*}", page_handler, name="page")
    return app
