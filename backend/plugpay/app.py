"""create_app(settings): the web application around the runtime (see runtime.py)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader
from litestar import Litestar, Router, asgi
from litestar.config.compression import CompressionConfig
from litestar.config.csrf import CSRFConfig
from litestar.openapi import OpenAPIConfig
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.template.config import TemplateConfig

from plugpay.api import health, webhooks
from plugpay.config import Settings
from plugpay.ocpp.route import make_ocpp_endpoint
from plugpay.runtime import build_push, build_runtime
from plugpay.services.ports import PushSender
from plugpay.web import account, cards, driver, live, receipt, shell
from plugpay.web.context import WebConfig, dependencies, driver_guard, owner_guard
from plugpay.web.security import security_headers

TEMPLATES = Path(__file__).parent / "web" / "templates"


def template_engine(sign_in_offered: bool = False) -> JinjaTemplateEngine:
    """The page templates ship with the package and change only with it: no look
    at their files on every render (the live page renders one per meter reading).
    ``sign_in_offered``: some sign-in provider is configured (the header links to it)."""
    environment = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,
        auto_reload=False,
        extensions=["jinja2.ext.i18n"],
    )
    # English until a page brings its language's gettext, pgettext and ngettext.
    environment.install_null_translations()  # type: ignore[attr-defined]
    environment.globals["sign_in_offered"] = sign_in_offered
    return JinjaTemplateEngine.from_environment(environment)


def create_app(
    settings: Settings,
    *,
    push: PushSender | None = None,
    worker: dict[str, Any] | None = None,
    run_worker: bool = True,
    extra_routes: Sequence[Any] = (),
) -> Litestar:
    """``worker``: job worker options; ``run_worker=False`` leaves the jobs to other
    instances (or to a test that runs them itself). ``extra_routes``: what ``plugpay
    demo`` adds (its stand-in sign-in provider under /demo-id/)."""
    runtime = build_runtime(
        settings, push=push if push is not None else build_push(settings), worker=worker
    )
    ocpp_endpoint = make_ocpp_endpoint(
        runtime.services, runtime.registry, runtime.message_log, settings.ocpp_call_timeout
    )
    # Mounted so that every scope type reaches it: a plain HTTP request gets a
    # clear 426 from the endpoint instead of a routing error.
    ocpp_route = asgi("/ocpp", is_mount=True, copy_scope=True)(ocpp_endpoint)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        await runtime.start()
        task = (
            asyncio.get_running_loop().create_task(runtime.services.worker.run())
            if run_worker
            else None
        )
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await runtime.close()

    web = WebConfig(
        capability_key=settings.key("capability"),
        secret_key=settings.secret_key,
        public_url=settings.public_url,
        production=settings.production,
        push_key=runtime.services.push_key,
        push_allow_private=settings.push_allow_private,
    )
    app = Litestar(
        route_handlers=[
            *health.ROUTES,
            *webhooks.ROUTES,
            ocpp_route,
            *shell.ROUTES,
            *driver.ROUTES,
            *account.ROUTES,
            *extra_routes,
            Router(
                path="/",
                route_handlers=[*account.DRIVER_ROUTES, *cards.DRIVER_ROUTES],
                guards=[driver_guard(runtime.services.sign_in, web)],
            ),
            Router(
                path="/",
                route_handlers=[
                    *driver.SESSION_ROUTES,
                    *live.SESSION_ROUTES,
                    *receipt.SESSION_ROUTES,
                ],
                guards=[owner_guard(runtime.services.reservations, runtime.services.sign_in, web)],
            ),
        ],
        dependencies=dependencies(runtime.services, web),
        lifespan=[lifespan],
        openapi_config=OpenAPIConfig(title="plugpay", version="0.1.0", path="/schema"),
        template_config=TemplateConfig(
            instance=template_engine(sign_in_offered=bool(settings.oidc_providers))
        ),
        csrf_config=CSRFConfig(
            secret=settings.key("csrf"),
            cookie_name="plugpay_csrf",
            cookie_secure=web.secure_cookies,
            cookie_httponly=False,
            cookie_samesite="lax",
            header_name="x-csrf-token",
            # /demo-id/: the demo's sign-in provider (a token endpoint takes no CSRF token).
            exclude=["/webhooks/", "/ocpp/", "/demo-id/"],
        ),
        exception_handlers=shell.EXCEPTION_HANDLERS,
        # Outside the router and every middleware: 404s, the CSRF 403 and error
        # pages get the security headers too (see plugpay.web.security).
        before_send=[security_headers(settings.public_url)],
        # SSE must flow event by event, uncompressed and unbuffered.
        compression_config=CompressionConfig(
            backend="gzip", minimum_size=512, exclude=[r"^/s/[^/]+/events$"]
        ),
        logging_config=None,
    )
    app.state.runtime = runtime
    app.state.ready_check = runtime.db.ping
    return app
