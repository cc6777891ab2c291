"""What every driver page needs: services, language, the capability cookie."""

from __future__ import annotations

import secrets
from typing import Any

from litestar import Request
from litestar.datastructures import Cookie
from litestar.response import Template
from litestar.utils.scope.state import ScopeState

from plugpay.services.sessions import owner_hash
from plugpay.web import format as fmt
from plugpay.web.i18n import pick_language, problem_text, translator

OWNER_COOKIE = "plugpay_owner"
OWNER_MAX_AGE = 60 * 60 * 24 * 90


def services(request: Request[Any, Any, Any]) -> Any:
    return request.app.state.runtime.services


def settings(request: Request[Any, Any, Any]) -> Any:
    return request.app.state.runtime.settings


def language(request: Request[Any, Any, Any]) -> str:
    return pick_language(request.headers.get("accept-language"))


def owner_of(request: Request[Any, Any, Any]) -> str | None:
    """The capability this browser holds, as stored on its sessions (or None)."""
    token = request.cookies.get(OWNER_COOKIE)
    if not token or len(token) > 100:
        return None
    return owner_hash(settings(request).secret_key, token)


def owner_cookie(request: Request[Any, Any, Any]) -> tuple[str, Cookie | None]:
    """This browser's owner hash, minting the HttpOnly cookie on first use."""
    token = request.cookies.get(OWNER_COOKIE)
    cookie = None
    if not token or len(token) > 100:
        token = secrets.token_urlsafe(32)
        cookie = Cookie(
            key=OWNER_COOKIE,
            value=token,
            max_age=OWNER_MAX_AGE,
            path="/",
            httponly=True,
            secure=secure_cookies(request),
            samesite="lax",
        )
    return owner_hash(settings(request).secret_key, token), cookie


def secure_cookies(request: Request[Any, Any, Any]) -> bool:
    """Secure everywhere but plain-HTTP localhost development."""
    return not settings(request).public_url.startswith(("http://127.0.0.1", "http://localhost"))


def csrf_token(request: Request[Any, Any, Any]) -> str:
    token = ScopeState.from_scope(request.scope).csrf_token
    return token if isinstance(token, str) else ""


def page(
    request: Request[Any, Any, Any], name: str, status_code: int = 200, **context: Any
) -> Template:
    lang = language(request)
    return Template(
        template_name=name,
        status_code=status_code,
        context={
            "lang": lang,
            "_": translator(lang),
            "money": lambda minor, currency: fmt.money(minor, currency, lang),
            "kwh": lambda wh: fmt.kwh(wh, lang),
            "kw": lambda w: fmt.kw(w, lang),
            "plug": fmt.plug,
            "amount": lambda text, currency: fmt.amount(text, currency, lang),
            "number": lambda text: fmt.number(text, lang),
            "when": lambda at: fmt.when(at, lang),
            "elapsed": fmt.elapsed,
            "problem": lambda text: problem_text(text, lang),
            "csrf_token": csrf_token(request),
            **context,
        },
    )
