"""GET/POST /optin: the hosted opt-in page (C28). Thin: the wording, the form, the guard and
the recording each live in their own module."""

from __future__ import annotations

from flask import Response, redirect, render_template, request, url_for

from bot.web import bp, form, wording
from bot.web.guard import Guard, TokenProblem
from bot.web.submit import Submission, record_choice
from bot.wiring.services import services
from storage.db import session_scope


def _guard() -> Guard:
    app_services = services()
    return Guard(app_services.settings.secret_key, app_services.store)


def _language(asked: str | None) -> str:
    offered = wording.page_languages(services().catalog)
    if asked in offered:
        return asked  # type: ignore[return-value]
    return request.accept_languages.best_match(offered) or offered[0]


def _render(
    language: str,
    entry: str | None,
    *,
    answers: form.Answers | None = None,
    problems: tuple[str, ...] = (),
    status: int = 200,
) -> tuple[str, int]:
    catalog = services().catalog
    page = wording.page(catalog, language)
    others = [lang for lang in wording.page_languages(catalog) if lang != language]
    return render_template(
        "optin/page.html",
        page=page,
        said=wording.words(language),
        other_languages=[(lang, wording.words(lang)["language_name"]) for lang in others],
        entry=entry,
        answers=answers or form.Answers(),
        problems=problems or (answers.problems if answers else ()),
        token=_guard().new_token(),
    ), status


def _closed() -> tuple[str, int]:
    language = _language(request.args.get("lang"))
    return render_template(
        "optin/message.html",
        language=language,
        direction="rtl" if language in wording.RTL else "ltr",
        company=services().catalog.company.name,
        title=wording.words(language)["closed"],
        body=None,
    ), 404


@bp.get("")
def show() -> tuple[str, int]:
    if not services().catalog.web_optin.enabled:
        return _closed()
    return _render(
        _language(request.args.get("lang")), form.entry_point(request.args.get("source"))
    )


@bp.post("")
def submit() -> Response | tuple[str, int]:
    app_services = services()
    catalog = app_services.catalog
    if not catalog.web_optin.enabled:
        return _closed()
    language = _language(request.form.get("lang"))
    entry = form.entry_point(request.form.get("source"))
    guard = _guard()
    try:
        guard.spend_token(request.form.get("csrf_token"))
    except TokenProblem:
        return _render(language, entry, problems=("expired",), status=400)
    client = guard.client_hash(request.remote_addr)
    if guard.address_over_limit(client):
        return _render(language, entry, problems=("too_many",), status=429)
    answers = form.read(request.form, request.form.getlist("categories"), catalog)
    page = wording.page(catalog, language)
    if request.form.get("version") != page.version:
        # What the person read is not what the ledger would quote (C19's rule, on the web).
        return _render(language, entry, answers=answers, problems=("changed",), status=409)
    if answers.problems:
        return _render(language, entry, answers=answers, status=422)
    assert answers.wa_id is not None
    if guard.number_over_limit(answers.wa_id):
        return _render(language, entry, answers=answers, problems=("too_many",), status=429)
    if app_services.settings.phone_number_id is None:
        return _render(language, entry, answers=answers, problems=("unavailable",), status=503)
    choice = Submission(answers.wa_id, answers.categories, page, entry, client)
    with session_scope(app_services.engine) as session:
        queued = record_choice(session, app_services, choice)
    if queued:
        app_services.outbox_wake.set()
    return redirect(url_for("optin.sent", lang=language, source=entry), 303)


@bp.get("/sent")
def sent() -> tuple[str, int]:
    catalog = services().catalog
    language = _language(request.args.get("lang"))
    said = wording.words(language)
    return render_template(
        "optin/message.html",
        language=language,
        direction="rtl" if language in wording.RTL else "ltr",
        company=catalog.company.name,
        title=said["sent_title"],
        body=said["sent_body"].format(company=catalog.company.name),
    ), 200


@bp.after_request
def protect(response: Response) -> Response:
    """Not cached (a form token is in it); framed only by the origins the business named."""
    ancestors = " ".join(("'self'", *services().catalog.web_optin.embed_origins))
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        f"frame-ancestors {ancestors}; base-uri 'none'"
    )
    return response
