"""The PWA shell: manifest, service worker, static files, the start page, error pages."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

from litestar import Request, Response, get
from litestar.exceptions import NotFoundException
from litestar.response import File, Redirect, Template
from litestar.static_files import create_static_files_router

from plugpay.domain.errors import InvalidInput, NotFound
from plugpay.services.ports import PaymentUnavailable
from plugpay.web.context import Asking, Reservations, SignInRequired, page
from plugpay.web.i18n import pick_language, translator

_PACKAGED = Path(__file__).resolve().parents[1] / "pwa"  # inside an installed wheel
PWA_DIR = _PACKAGED if _PACKAGED.is_dir() else Path(__file__).resolve().parents[3] / "pwa"
Req = Request[Any, Any, Any]


@get("/", include_in_schema=False)
async def home(request: Req, principal: Asking, reservations: Reservations) -> Template:
    """What plugpay is, and the charges this browser started (its way back to them)."""
    return page(request, "home.html", sessions=await reservations.owned(principal))


@get("/manifest.webmanifest", include_in_schema=False)
async def manifest() -> File:
    return File(
        PWA_DIR / "manifest.webmanifest",
        media_type="application/manifest+json",
        content_disposition_type="inline",
    )


@get("/sw.js", include_in_schema=False)
async def service_worker() -> File:
    return File(
        PWA_DIR / "sw.js",
        media_type="text/javascript",
        content_disposition_type="inline",
        headers={"Cache-Control": "no-cache", "Service-Worker-Allowed": "/"},
    )


@get("/offline.html", include_in_schema=False)
async def offline() -> File:
    return File(PWA_DIR / "offline.html", media_type="text/html", content_disposition_type="inline")


static_files = create_static_files_router(
    path="/static",
    directories=[PWA_DIR],
    include_in_schema=False,
    cache_control=None,
    send_as_attachment=False,
)


def _wants_html(request: Req) -> bool:
    return not request.url.path.startswith(("/api/", "/webhooks/", "/ocpp/", "/schema"))


def not_found(request: Req, exc: Exception) -> Response[Any]:
    """A friendly page for people; JSON for machines."""
    if not _wants_html(request):
        return Response({"error": "not found"}, status_code=404)
    _ = translator(pick_language(request.headers.get("accept-language")))
    message = (
        _("We could not find that charger or connector.")
        if request.url.path.startswith("/c/")
        else _("We could not find that page.")
    )
    return page(request, "error.html", 404, title=_("Page not found"), message=message, status=404)


def bad_input(request: Req, exc: Exception) -> Response[Any]:
    if not _wants_html(request):
        return Response({"error": str(exc)}, status_code=400)
    _ = translator(pick_language(request.headers.get("accept-language")))
    return page(
        request, "error.html", 400, title=_("Something went wrong"), message=str(exc), status=400
    )


def payments_down(request: Req, exc: Exception) -> Response[Any]:
    """The payment provider does not answer: a clear page, and nothing changed."""
    if not _wants_html(request):
        return Response({"error": "payments unavailable"}, status_code=503)
    _ = translator(pick_language(request.headers.get("accept-language")))
    response = page(
        request,
        "error.html",
        503,
        title=_("Payments are not available right now"),
        message=_("Payments are not available right now. Please try again in a moment."),
        status=503,
    )
    response.headers["Retry-After"] = "30"
    return response


def sign_in_first(request: Req, exc: Exception) -> Response[Any]:
    """An account page asked for while signed out: sign in, then come back."""
    return Redirect(f"/me?next={quote(request.url.path)}", status_code=303)


EXCEPTION_HANDLERS: dict[Any, Any] = {
    SignInRequired: sign_in_first,
    PaymentUnavailable: payments_down,
    NotFound: not_found,
    NotFoundException: not_found,
    InvalidInput: bad_input,
}
ROUTES: list[Any] = [home, manifest, service_worker, offline, static_files]
