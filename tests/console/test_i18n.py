"""French first, English when asked for (query or browser), nothing left untranslated."""

from __future__ import annotations

import html
import re
from pathlib import Path

import httpx

from console import i18n
from console.messages import EN, FR
from console.session import LANG_COOKIE

TEMPLATES = Path(__file__).resolve().parents[2] / "console" / "templates"


async def test_pages_are_in_french_by_default(signed_in: httpx.AsyncClient) -> None:
    page = await signed_in.get("/clients")
    assert '<html lang="fr">' in page.text
    assert "Recherche de clients" in page.text
    assert "Client lookup" not in page.text


async def test_the_browser_language_is_honoured(signed_in: httpx.AsyncClient) -> None:
    page = await signed_in.get("/clients", headers={"Accept-Language": "en-GB,en;q=0.9"})
    assert '<html lang="en">' in page.text
    assert "Client lookup" in page.text


async def test_lang_query_is_remembered_in_a_cookie(signed_in: httpx.AsyncClient) -> None:
    first = await signed_in.get("/sagas?lang=en")
    assert "Saga monitor" in first.text
    assert signed_in.cookies.get(LANG_COOKIE) == "en"
    again = await signed_in.get("/sagas", headers={"Accept-Language": "fr"})
    assert "Saga monitor" in again.text
    back = await signed_in.get("/sagas?lang=fr")
    assert "Suivi des sagas" in back.text


async def test_the_login_page_is_translated_too(browser_client: httpx.AsyncClient) -> None:
    fr = await browser_client.get("/login")
    en = await browser_client.get("/login?lang=en")
    assert "Jeton d'opérateur" in html.unescape(fr.text)
    assert "Operator token" in en.text


def test_both_catalogues_have_the_same_messages() -> None:
    assert set(FR) == set(EN)
    for key in EN:
        assert set(re.findall(r"{(\w+)}", FR[key])) == set(re.findall(r"{(\w+)}", EN[key])), key


def test_every_literal_message_key_in_the_templates_exists() -> None:
    used: set[str] = set()
    for path in TEMPLATES.glob("*.html"):
        used |= set(re.findall(r"""\bt\(\s*["']([a-z_.]+)["']\s*[,)]""", path.read_text()))
    assert used, "no message keys found"
    assert not used - set(EN), sorted(used - set(EN))


def test_a_missing_french_message_falls_back_to_english(monkeypatch: object) -> None:
    t = i18n.translator("fr")
    assert t("nav.portfolio") == "Portefeuille"
    assert i18n.translator("en")("nav.portfolio") == "Portfolio"
    assert t("no.such.key") == "no.such.key"
    FR.pop("common.none")
    try:
        assert t("common.none") == EN["common.none"]
    finally:
        FR["common.none"] = "Rien à afficher."


def test_language_negotiation() -> None:
    assert i18n.negotiate(None, None, None) == "fr"
    assert i18n.negotiate("en", "fr", "fr") == "en"
    assert i18n.negotiate(None, "en", "fr") == "en"
    assert i18n.negotiate(None, None, "de-DE,en;q=0.8,fr;q=0.5") == "en"
    assert i18n.negotiate(None, None, "ar-MA,fr-FR;q=0.9") == "fr"
    assert i18n.negotiate("xx", None, "es") == "fr"


def test_amounts_and_dates_follow_the_language() -> None:
    assert i18n.money("1234567.5", "fr") == "1\u202f234\u202f567,50 MAD"
    assert i18n.money("1234567.5", "en") == "1,234,567.50 MAD"
    assert i18n.percent("0.0523", "fr") == "5,23\u00a0%"
    assert i18n.percent("0.0523", "en") == "5.23%"
    assert i18n.date("2026-11-29", "fr") == "29/11/2026"
    assert i18n.date("2026-11-29T10:05:00+00:00", "en") == "2026-11-29 10:05"
    assert i18n.money(None, "fr") == "—"
