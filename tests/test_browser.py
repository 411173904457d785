"""The `factgpt serve` page in a real browser: headless Chromium (Debian's package) driven by
Playwright types a question, submits it, and reads the answer and the evidence off the page."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from test_serve import free_port, start_server

CHROMIUM = Path("/usr/bin/chromium")
# Chromium's own network traffic fails on machines without the internet: switched off.
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


def answer_score() -> str:
    """The score the shipped model's rule shows an answer with."""
    from factgpt.checkpoint import load_tensors
    from factgpt.fileio import shipped_model
    from factgpt.grounded import AbstentionRule

    return AbstentionRule.from_meta(load_tensors(shipped_model())[1]).answer_score


@pytest.fixture(scope="module")
def page_url():
    if not CHROMIUM.exists():
        assert not os.environ.get("FACTGPT_CI"), "/usr/bin/chromium is missing on CI"
        pytest.skip("/usr/bin/chromium is not installed")
    pytest.importorskip("playwright.sync_api")
    port = free_port()
    proc = start_server(port)
    yield f"http://127.0.0.1:{port}/"
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)


@pytest.fixture(scope="module")
def browser_page(page_url):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = browser.new_page(viewport={"width": 900, "height": 700})
        page.goto(page_url)
        yield page
        browser.close()


def test_a_known_person_gets_the_answer_and_the_recited_line(browser_page):
    page = browser_page
    page.fill("#q", "Where is Khatchig Mouradian from?")
    page.click("#go")
    page.wait_for_function("document.getElementById('answer').textContent !== '…' "
                           "&& document.getElementById('answer').textContent !== ''", timeout=60_000)
    assert page.inner_text("#answer") == "Lebanon"
    assert f"{answer_score()} " in page.inner_text("#why")  # the rule's answer score, which it cleared
    line = page.inner_text("#line")
    assert "Lebanon" in line
    assert page.inner_text("#line span.place") == "Lebanon"  # the place is marked in the evidence
    assert 'Read "Where is Khatchig Mouradian from?"' in page.inner_text("#asked")
    if os.environ.get("FACTGPT_SCREENSHOT"):
        page.screenshot(path=os.environ["FACTGPT_SCREENSHOT"], full_page=True)


def test_a_made_up_name_gets_the_refusal_and_why(browser_page):
    page = browser_page
    page.fill("#q", "Where was Zorblax Quimby born?")
    page.click("#go")
    page.wait_for_function("document.getElementById('answer').textContent === \"I don't know\"", timeout=60_000)
    why = page.inner_text("#why")
    assert "no stored line for Zorblax Quimby" in why and "line_mean" in why and "<" in why


def test_a_bad_question_shows_the_servers_error(browser_page):
    page = browser_page
    page.fill("#q", "???")
    page.click("#go")
    page.wait_for_selector("#why .error", timeout=60_000)
    assert "expected a name" in page.inner_text("#why .error")
