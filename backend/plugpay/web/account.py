"""Drivers' sign-in and account: /login/{provider}, /auth/{provider}/callback,
POST /logout, /me.

The sign-in's ``state`` rides in a cookie scoped to the callback path for ten
minutes (SameSite=Lax reaches the provider's top-level redirect back), and a
successful sign-in sets a new login cookie, never one the browser brought.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

from litestar import Request, get, post
from litestar.datastructures import Cookie
from litestar.response import Redirect, Response

from plugpay.domain.errors import InvalidInput
from plugpay.services.accounts import AccountBusy, SignInResult, safe_return_path
from plugpay.services.ports.accounts import ProviderUnavailable, SignInRefused
from plugpay.services.principals import Driver, guest_of
from plugpay.web.context import (
    LOGIN_COOKIE,
    OWNER_COOKIE,
    Asking,
    Cards,
    Histories,
    Reservations,
    Rfid,
    SignedIn,
    SignIn,
    Web,
    WebConfig,
    page,
)
from plugpay.web.i18n import pick_language, translator

log = logging.getLogger(__name__)
Req = Request[Any, Any, Any]
STATE_COOKIE = "plugpay_sign_in"
STATE_MAX_AGE = 600
LOGIN_MAX_AGE = 60 * 60 * 24 * 30


def _cookie(web: WebConfig, key: str, value: str, max_age: int, path: str = "/") -> Cookie:
    return Cookie(
        key=key,
        value=value,
        max_age=max_age,
        path=path,
        httponly=True,
        secure=web.secure_cookies,
        samesite="lax",
    )


def _failed(request: Req, status: int, message: str) -> Response[Any]:
    _ = translator(pick_language(request.headers.get("accept-language")))
    return page(
        request,
        "error.html",
        status,
        title=_("Sign-in did not work"),
        message=message,
        status=status,
    )


@get("/login/{provider:str}", include_in_schema=False)
async def login(request: Req, provider: str, sign_in: SignIn, web: Web) -> Response[Any]:
    """Send the browser to the provider, remembering this attempt (``?next=`` a path
    of this site to come back to)."""
    _ = translator(pick_language(request.headers.get("accept-language")))
    try:
        start = await sign_in.begin(provider, request.query_params.get("next"))
    except ProviderUnavailable as exc:
        log.warning("sign-in provider %s unavailable: %s", provider, exc)
        return _failed(
            request, 503, _("The sign-in service does not answer. Please try again in a moment.")
        )
    state_cookie = _cookie(web, STATE_COOKIE, start.state, STATE_MAX_AGE, f"/auth/{provider}/")
    return Redirect(start.url, status_code=303, cookies=[state_cookie])


@get("/auth/{provider:str}/callback", include_in_schema=False)
async def callback(request: Req, provider: str, sign_in: SignIn, web: Web) -> Response[Any]:
    """The provider's answer: on success a new login cookie, then back where the
    driver was (or the account page)."""
    _ = translator(pick_language(request.headers.get("accept-language")))
    query = request.query_params
    guest = guest_of(web.capability_key, web.secret_key, request.cookies.get(OWNER_COOKIE))
    clear_state = _cookie(web, STATE_COOKIE, "", 0, f"/auth/{provider}/")
    try:
        signed: SignInResult = await sign_in.complete(
            provider,
            code=query.get("code"),
            state=query.get("state"),
            browser_state=request.cookies.get(STATE_COOKIE),
            error=query.get("error"),
            owner_hashes=guest.capability_hashes,
            previous_login=request.cookies.get(LOGIN_COOKIE),
        )
    except SignInRefused as exc:
        log.info("sign-in with %s refused: %s", provider, exc)
        response = _failed(
            request,
            400,
            _("Sign-in was cancelled or could not be checked. Nothing changed; please try again."),
        )
        response.cookies.append(clear_state)
        return response
    except ProviderUnavailable as exc:
        log.warning("sign-in provider %s unavailable: %s", provider, exc)
        return _failed(
            request, 503, _("The sign-in service does not answer. Please try again in a moment.")
        )
    login_cookie = _cookie(web, LOGIN_COOKIE, signed.login_token, LOGIN_MAX_AGE)
    return Redirect(signed.return_to, status_code=303, cookies=[login_cookie, clear_state])


@post("/logout", include_in_schema=False)
async def logout(request: Req, sign_in: SignIn, web: Web) -> Redirect:
    await sign_in.sign_out(request.cookies.get(LOGIN_COOKIE))
    return Redirect("/", status_code=303, cookies=[_cookie(web, LOGIN_COOKIE, "", 0)])


@get("/me", include_in_schema=False)
async def me(
    request: Req, principal: Asking, reservations: Reservations, sign_in: SignIn
) -> Response[Any]:
    """The signed-in driver's account and latest charges; the sign-in choices otherwise
    (``?next=`` where to come back to)."""
    if not isinstance(principal, Driver):
        return page(
            request,
            "signin.html",
            providers=sign_in.choices(),
            next=safe_return_path(request.query_params.get("next")),
        )
    return page(
        request,
        "me.html",
        account=principal.account,
        sessions=await reservations.owned(principal, limit=5),
        devices=await sign_in.devices(principal.account),
    )


@get("/me/sessions", include_in_schema=False)
async def my_sessions(request: Req, driver: SignedIn, history: Histories) -> Response[Any]:
    """Every charge of the account, from any device, with monthly totals."""
    mine = await history.of_account(driver.account_id)
    return page(
        request, "history.html", sessions=mine.sessions, months=mine.months, refunded=mine.refunded
    )


@get("/me/sessions.csv", include_in_schema=False)
async def my_sessions_csv(driver: SignedIn, history: Histories) -> Response[str]:
    return Response(
        await history.csv(driver.account_id),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": 'attachment; filename="plugpay-charges.csv"',
            "Cache-Control": "no-store",
        },
    )


@post("/me/devices/{device_id:int}/remove", include_in_schema=False)
async def remove_device(device_id: int, driver: SignedIn, sign_in: SignIn) -> Redirect:
    """This device gets no more receipts (another subscription from it comes back)."""
    await sign_in.remove_device(driver.account, device_id)
    return Redirect("/me", status_code=303)


@get("/me/rfid", include_in_schema=False)
async def rfid_page(request: Req, driver: SignedIn, rfid: Rfid, cards: Cards) -> Response[Any]:
    """The driver's RFID cards: link one (its number as printed), unlink one."""
    return page(
        request,
        "rfid.html",
        tags=await rfid.of_account(driver.account_id),
        has_card=await cards.default(driver.account_id) is not None,
        error=request.query_params.get("error"),
    )


@post("/me/rfid", include_in_schema=False)
async def link_rfid(request: Req, driver: SignedIn, rfid: Rfid) -> Redirect:
    form = await request.form()
    try:
        await rfid.link(driver.account_id, str(form.get("tag", "")), str(form.get("label", "")))
    except InvalidInput as exc:
        return Redirect(f"/me/rfid?error={quote(str(exc)[:200])}", status_code=303)
    return Redirect("/me/rfid", status_code=303)


@post("/me/rfid/{id_tag:str}/remove", include_in_schema=False)
async def unlink_rfid(id_tag: str, driver: SignedIn, rfid: Rfid) -> Redirect:
    await rfid.unlink(driver.account_id, id_tag)
    return Redirect("/me/rfid", status_code=303)


@get("/me/delete", include_in_schema=False)
async def delete_page(request: Req, driver: SignedIn) -> Response[Any]:
    """What deleting the account removes and what it keeps; one button."""
    return page(request, "delete_account.html", account=driver.account, busy=False)


@post("/me/delete", include_in_schema=False)
async def delete_account(
    request: Req, driver: SignedIn, sign_in: SignIn, web: Web
) -> Response[Any]:
    try:
        await sign_in.delete_account(driver.account)
    except AccountBusy:
        return page(request, "delete_account.html", 409, account=driver.account, busy=True)
    _ = translator(pick_language(request.headers.get("accept-language")))
    response = page(
        request,
        "error.html",
        title=_("Your account is deleted"),
        message=_(
            "Your name, e-mail address and sign-in are gone. Receipts and payments stay"
            " on record, without your name, as the law on bookkeeping asks."
        ),
    )
    response.cookies.append(_cookie(web, LOGIN_COOKIE, "", 0))
    return response


ROUTES: list[Any] = [login, callback, logout, me]
# For signed-in drivers only (app.py puts them behind the driver guard).
DRIVER_ROUTES: list[Any] = [
    my_sessions,
    my_sessions_csv,
    remove_device,
    rfid_page,
    link_rfid,
    unlink_rfid,
    delete_page,
    delete_account,
]
