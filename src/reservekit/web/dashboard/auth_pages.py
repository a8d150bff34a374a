"""Sign up, sign in, sign out and change password: forms that become commands."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.datastructures import Cookie
from litestar.di import NamedDependency
from litestar.params import FromQuery
from litestar.response import Redirect, Template

from reservekit.domain.errors import DomainError
from reservekit.domain.members import MIN_PASSWORD_CHARS, TooManyAttempts
from reservekit.usecases.commands import ChangePassword, SignIn, SignOut, SignUp
from reservekit.web.dashboard.pages import form_of, render, see_other, text
from reservekit.web.dashboard.visit import Visit


def _session_cookie(visit: Visit, token: str) -> Cookie:
    return Cookie(
        key=visit.services.session_cookie,
        value=token,
        path="/",
        httponly=True,
        samesite="lax",
        secure=visit.services.secure_cookies,
    )


def signed_in_response(visit: Visit, token: str) -> Redirect:
    response = see_other("/dashboard/keys")
    response.cookies.append(_session_cookie(visit, token))
    return response


class AuthPages(Controller):
    path = "/"

    @get("/", name="dashboard-home")
    async def home(self, visit: NamedDependency[Visit]) -> Redirect:
        return see_other("/dashboard/keys" if await visit.member() else "/dashboard/signin")

    @get("/signup")
    async def signup_form(self, visit: NamedDependency[Visit]) -> Template:
        if not visit.services.signup_open:
            return render("signup_closed.html", status=403, title="Sign-up is closed")
        return render("signup.html", title="Create your account", email="", errors={}, min=MIN_PASSWORD_CHARS)

    @post("/signup")
    async def signup(
        self, visit: NamedDependency[Visit], request: Request[Any, Any, Any]
    ) -> Template | Redirect:
        if not visit.services.signup_open:
            return render("signup_closed.html", status=403, title="Sign-up is closed")
        form = await form_of(request)
        email, password = text(form, "email"), str(form.get("password") or "")
        try:
            await visit.application.execute(SignUp(email=email, password=password), visit.metadata(None))
            signed_in = await visit.application.execute(
                SignIn(email=email, password=password), visit.metadata(None)
            )
        except DomainError as exc:
            return render(
                "signup.html",
                status=429 if isinstance(exc, TooManyAttempts) else 422,
                title="Create your account",
                email=email,
                errors={exc.field or "form": exc.message},
                min=MIN_PASSWORD_CHARS,
            )
        return signed_in_response(visit, signed_in.session_token)

    @get("/signin")
    async def signin_form(self, visit: NamedDependency[Visit], expired: FromQuery[bool] = False) -> Template:
        notice = "Your session ended. Please sign in again." if expired else None
        return render(
            "signin.html",
            title="Sign in",
            email="",
            error=None,
            notice=notice,
            signup_open=visit.services.signup_open,
        )

    @post("/signin")
    async def signin(
        self, visit: NamedDependency[Visit], request: Request[Any, Any, Any]
    ) -> Template | Redirect:
        form = await form_of(request)
        email = text(form, "email")
        try:
            signed_in = await visit.application.execute(
                SignIn(email=email, password=str(form.get("password") or "")), visit.metadata(None)
            )
        except DomainError as exc:
            return render(
                "signin.html",
                status=429 if isinstance(exc, TooManyAttempts) else 401,
                title="Sign in",
                email=email,
                error=exc.message,
                notice=None,
                signup_open=visit.services.signup_open,
            )
        return signed_in_response(visit, signed_in.session_token)

    @post("/signout")
    async def signout(self, visit: NamedDependency[Visit]) -> Redirect:
        session = await visit.member()
        if session is not None:
            command = SignOut(
                member_id=session.member_id, account_id=session.account_id, session_token=visit.session_token
            )
            await visit.application.execute(command, visit.metadata(session))
        response = see_other("/dashboard/signin")
        response.delete_cookie(visit.services.session_cookie, path="/")
        return response

    @get("/account")
    async def account(self, visit: NamedDependency[Visit]) -> Template:
        await visit.viewer()  # every role has this page: their own password
        session = await visit.require_member()
        member = await visit.application.member(session.member_id)
        return render(
            "account.html", title="Account", member=member, errors={}, done=False, min=MIN_PASSWORD_CHARS
        )

    @post("/account/password")
    async def change_password(
        self, visit: NamedDependency[Visit], request: Request[Any, Any, Any]
    ) -> Template | Redirect:
        await visit.viewer()
        session = await visit.require_member()
        member = await visit.application.member(session.member_id)
        form = await form_of(request)
        command = ChangePassword(
            member_id=member.member_id,
            email=member.email,
            current_password=str(form.get("current_password") or ""),
            new_password=str(form.get("new_password") or ""),
        )
        try:
            token = await visit.application.execute(command, visit.metadata(session))
        except DomainError as exc:
            field = "current_password" if exc.field in (None, "form") else exc.field
            message = "Your current password is not correct." if field == "current_password" else exc.message
            return render(
                "account.html",
                status=422,
                title="Account",
                member=member,
                errors={field: message},
                done=False,
                min=MIN_PASSWORD_CHARS,
            )
        response = render(
            "account.html", title="Account", member=member, errors={}, done=True, min=MIN_PASSWORD_CHARS
        )
        response.cookies.append(_session_cookie(visit, token))
        return response
