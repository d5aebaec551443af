"""The web dashboard in a real browser: Debian's chromium driven over WebDriver (selenium),
against the real hajimi binary with mock-gemini as the upstream.

Scenarios: log in; the overview's counts change after real requests through the proxy
(without reloading the page); three pasted keys are tested and then used; changing
FAKE_STREAMING on the settings page changes the next stream; a key the mock calls invalid
shows as invalid with its reason; English and back; a 375×812 phone screen has no horizontal
scroll. Screenshots of every page (desktop and phone, zh and en) are written to
$DASHBOARD_SCREENSHOTS (default: a temporary directory, printed).

Skipped, with the reason, only when chromium, chromedriver or selenium is missing.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import openai
import pytest

from conftest import KEYS, PASSWORD, _binary, _Process, rule, preset, text_reply

try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:  # pragma: no cover - the requirements install it
    webdriver = None

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
WEB_PASSWORD = "browser-web-password"
FLASH = "gemini-2.5-flash"
# Three keys to paste (distinct from the gateway's own), and one the mock will call invalid.
PASTED = [f"AIzaSyBROWSERKEY{i:023d}" for i in (11, 12, 13)]
PAGES = ["/", "/ui/overview", "/ui/keys", "/ui/settings", "/ui/logs", "/ui/models"]
WAIT_S = 20


def _why_unavailable() -> str | None:
    if webdriver is None:
        return "selenium is not installed in the e2e venv"
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.access(path, os.X_OK):
            return f"{path} not found: apt-get install chromium chromium-driver"
    return None


pytestmark = pytest.mark.skipif(_why_unavailable() is not None, reason=_why_unavailable() or "")


def masked(key: str) -> str:
    return f"{key[:4]}…{key[-4:]}"


@pytest.fixture(scope="module")
def dash(gateway):
    """A hajimi of its own (its keys and settings change here), on the session's mock."""
    env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "TMPDIR") if k in os.environ} | {
        "HOST": "127.0.0.1",
        "PORT": "0",
        "PASSWORD": PASSWORD,
        "WEB_PASSWORD": WEB_PASSWORD,
        "GEMINI_API_KEYS": KEYS[0],
        "GEMINI_BASE_URL": gateway.mock_url,
        "ENABLE_STORAGE": "false",
        "FAKE_STREAMING": "false",
        "RANDOM_STRING": "false",
        "API_KEY_DAILY_LIMIT": "100",
        "MAX_REQUESTS_PER_MINUTE": "100000",
        "MAX_REQUESTS_PER_DAY_PER_IP": "1000000",
    }
    with tempfile.TemporaryDirectory(prefix="hajimi-dash-") as cwd:
        proc = _Process("hajimi-dashboard", [str(_binary("HAJIMI_BIN", "hajimi"))], env, cwd)
        try:
            yield proc.wait_for_url()
        finally:
            proc.stop()


@pytest.fixture(scope="module")
def shots():
    out = Path(os.environ.get("DASHBOARD_SCREENSHOTS") or tempfile.mkdtemp(prefix="hajimi-shots-"))
    out.mkdir(parents=True, exist_ok=True)
    print(f"\ndashboard screenshots: {out}")
    return out


@pytest.fixture(scope="module")
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="hajimi-chromium-")
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=1280,900",
                 "--lang=zh-CN", "--no-proxy-server"):
        options.add_argument(flag)
    options.add_experimental_option("prefs", {"intl.accept_languages": "zh-CN,zh"})
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(WAIT_S)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=PASSWORD, max_retries=0, timeout=30,
                         http_client=openai.DefaultHttpxClient(trust_env=False))


def wait(driver, what, condition):
    # An element htmx just swapped out is stale: look again.
    ignored = (NoSuchElementException, StaleElementReferenceException)
    return WebDriverWait(driver, WAIT_S, poll_frequency=0.2, ignored_exceptions=ignored).until(
        condition, message=what)


def text(driver, element_id: str) -> str:
    return driver.find_element(By.ID, element_id).text.strip()


def phone(driver, on: bool) -> None:
    if on:
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                               {"width": 375, "height": 812, "deviceScaleFactor": 1, "mobile": True})
    else:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def no_horizontal_scroll(driver) -> tuple[int, int]:
    return driver.execute_script(
        "return [document.documentElement.scrollWidth, document.documentElement.clientWidth]")


def login(driver, url: str) -> None:
    driver.get(f"{url}/")
    driver.find_element(By.ID, "password").send_keys(WEB_PASSWORD)
    driver.find_element(By.ID, "login-button").click()
    wait(driver, "the overview after logging in", lambda d: d.current_url.endswith("/ui/overview"))


@pytest.fixture
def session(browser, dash):
    """The browser, logged in (each test can run alone: `-k`)."""
    browser.get(f"{dash}/ui/overview")
    if browser.current_url.endswith("/login"):
        login(browser, dash)
    return browser


def test_logged_out_sees_the_status_card_and_other_pages_ask_to_log_in(browser, dash):
    browser.get(f"{dash}/")
    assert browser.find_element(By.ID, "status-card").is_displayed()
    assert browser.find_element(By.ID, "base-url").get_attribute("value") == f"{dash}/v1"
    assert KEYS[0] not in browser.page_source
    browser.get(f"{dash}/ui/keys")
    assert browser.current_url.endswith("/login")


def page_transfer(driver) -> int:
    """Bytes the browser fetched for the page and everything it loaded (Resource Timing)."""
    return driver.execute_script("""
        var nav = performance.getEntriesByType('navigation')[0];
        var total = nav ? nav.transferSize : 0;
        performance.getEntriesByType('resource').forEach(function (r) { total += r.transferSize; });
        return total;""")


def test_the_first_page_weighs_under_250_kb_in_the_browser(browser, dash):
    browser.execute_cdp_cmd("Network.enable", {})
    browser.execute_cdp_cmd("Network.clearBrowserCache", {})
    browser.get(f"{dash}/")
    wait(browser, "loaded", lambda d: d.execute_script("return document.readyState") == "complete")
    first = page_transfer(browser)
    print(f"\nfirst page (/, cold cache): {first} bytes transferred")
    assert 0 < first < 250 * 1024
    browser.get(f"{dash}/")
    wait(browser, "loaded", lambda d: d.execute_script("return document.readyState") == "complete")
    again = page_transfer(browser)
    print(f"again (assets cached): {again} bytes")
    assert again < first, "the assets come from the cache"
    # The heaviest page: the overview with htmx and uPlot.
    login(browser, dash)
    browser.execute_cdp_cmd("Network.clearBrowserCache", {})
    browser.get(f"{dash}/ui/overview")
    wait(browser, "loaded", lambda d: d.execute_script("return document.readyState") == "complete")
    overview = page_transfer(browser)
    print(f"overview (cold cache): {overview} bytes")
    assert overview < 250 * 1024
    browser.delete_all_cookies()  # logged out again for the login test


def test_a_wrong_password_is_refused_then_logging_in_opens_the_overview(browser, dash):
    browser.get(f"{dash}/login")
    browser.find_element(By.ID, "password").send_keys("wrong")
    browser.find_element(By.ID, "login-button").click()
    wait(browser, "the login error", lambda d: d.find_elements(By.ID, "login-error"))
    login(browser, dash)
    assert browser.find_element(By.CSS_SELECTOR, "nav a[aria-current=page]").get_attribute("href").endswith("/ui/overview")


def test_the_overview_counts_real_requests_without_a_reload(session, browser, dash, gateway):
    browser.get(f"{dash}/ui/overview")
    before = int(text(browser, "calls-day"))
    marker = browser.execute_script("window.__same_page = 1; return 1")
    with client(dash) as c:
        for i in range(3):
            c.chat.completions.create(model=FLASH, messages=[{"role": "user", "content": f"hi {i}"}])
    wait(browser, "the overview's live refresh", lambda d: int(text(d, "calls-day")) >= before + 3)
    assert browser.execute_script("return window.__same_page") == marker, "refreshed in place"
    assert FLASH in text(browser, "per-model")
    assert browser.find_element(By.CSS_SELECTOR, "#chart-hourly canvas"), "the uPlot chart is drawn"


def test_three_pasted_keys_are_reported_tested_and_used(session, browser, dash, gateway):
    browser.get(f"{dash}/ui/keys")
    box = browser.find_element(By.ID, "paste")
    box.send_keys(f"{PASTED[0]}\n{PASTED[1]}, {PASTED[2]}; {KEYS[0]}")
    browser.find_element(By.ID, "add-keys").click()
    wait(browser, "the paste report", lambda d: d.find_elements(By.ID, "added-new"))
    assert text(browser, "added-new") == "3"
    assert text(browser, "added-dup") == "1"
    # The new keys are tested at once, with live progress.
    wait(browser, "the new keys' test to finish",
         lambda d: d.find_elements(By.ID, "progress-count") and text(d, "progress-count") == "3/3"
         and "not checked" not in d.find_element(By.ID, "keys-live").text
         and "未检测" not in d.find_element(By.ID, "keys-live").text)
    browser.find_element(By.ID, "test-all").click()
    wait(browser, "the key test to finish",
         lambda d: d.find_elements(By.ID, "progress-count") and text(d, "progress-count") == "4/4")
    with client(dash) as c:
        for i in range(12):
            c.chat.completions.create(model=FLASH, messages=[{"role": "user", "content": f"rotate {i}"}])
    used = {call["api_key"] for call in gateway.upstream_calls()}
    assert set(PASTED) <= used, "every pasted key served a request"
    browser.get(f"{dash}/ui/keys?sort=key")
    rows = browser.find_elements(By.CSS_SELECTOR, "#keys-table tbody tr")
    assert len(rows) == 4
    for key in PASTED:
        row = next(r for r in rows if masked(key) in r.text)
        assert row.get_attribute("data-status") == "usable"
        calls = int(row.find_element(By.CSS_SELECTOR, ".num").text.split("/")[0])
        assert calls >= 1, f"{masked(key)} used today"
    assert all(k not in browser.page_source for k in PASTED), "keys are masked"
    browser.find_element(By.ID, "select-all").click()
    boxes = browser.find_elements(By.CSS_SELECTOR, "input[name=ids]")
    assert len(boxes) == 4 and all(b.is_selected() for b in boxes), "select all"
    browser.find_element(By.ID, "select-all").click()
    assert not any(b.is_selected() for b in boxes)


def test_changing_fake_streaming_changes_the_next_stream(session, browser, dash, gateway):
    def stream_once():
        gateway.reset()
        with client(dash) as c:
            list(c.chat.completions.create(model=FLASH, messages=[{"role": "user", "content": "s"}], stream=True))
        return [call["action"] for call in gateway.upstream_calls()]

    assert stream_once() == ["streamGenerateContent"], "a real stream first"
    browser.get(f"{dash}/ui/settings")
    row = browser.find_element(By.ID, "s-fake_streaming")
    row.find_element(By.CSS_SELECTOR, "select option[value=true]").click()
    row.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait(browser, "the applied mark",
         lambda d: d.find_element(By.ID, "s-fake_streaming").find_elements(By.CSS_SELECTOR, ".applied"))
    assert stream_once() == ["generateContent"], "faked from a complete answer"
    # A bad value is refused inline.
    time.sleep(0.2)  # let htmx settle the swapped row before typing into the next one
    row = browser.find_element(By.ID, "s-max_retry_num")
    field = row.find_element(By.NAME, "value")
    field.clear()
    field.send_keys("-3")
    row.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait(browser, "the inline error",
         lambda d: d.find_element(By.ID, "s-max_retry_num").find_elements(By.CSS_SELECTOR, "[role=alert]"))


def test_a_key_the_mock_calls_invalid_shows_invalid_with_its_reason(session, browser, dash, gateway):
    gateway.add_rules(rule(preset("api_key_invalid"), key=PASTED[1]))
    with client(dash) as c:
        for i in range(8):
            c.chat.completions.create(model=FLASH, messages=[{"role": "user", "content": f"x {i}"}])
    browser.get(f"{dash}/ui/keys?state=invalid")
    rows = browser.find_elements(By.CSS_SELECTOR, "#keys-table tbody tr")
    assert len(rows) == 1 and masked(PASTED[1]) in rows[0].text
    assert rows[0].get_attribute("data-status") == "invalid"
    assert "API_KEY_INVALID" in rows[0].find_element(By.CSS_SELECTOR, ".reason").text


def test_the_log_tails_new_requests_live(session, browser, dash):
    browser.get(f"{dash}/ui/logs")
    before = len(browser.find_elements(By.CSS_SELECTOR, "#log-rows tr"))
    marker = browser.execute_script("window.__same_page = 2; return 2")
    time.sleep(1.5)  # the stream's first tick marks where the tail starts
    with client(dash) as c:
        c.chat.completions.create(model=FLASH, messages=[{"role": "user", "content": "tail me"}])
    wait(browser, "the new log row", lambda d: len(d.find_elements(By.CSS_SELECTOR, "#log-rows tr")) > before)
    assert browser.execute_script("return window.__same_page") == marker, "no reload"
    first = browser.find_element(By.CSS_SELECTOR, "#log-rows tr").text
    assert "/v1/chat/completions" in first and FLASH in first
    assert all(k not in browser.page_source for k in KEYS + PASTED + [PASSWORD, WEB_PASSWORD])


def test_the_theme_toggle_switches_and_is_remembered(session, browser, dash, shots):
    browser.get(f"{dash}/ui/overview")
    html = browser.find_element(By.TAG_NAME, "html")
    start = browser.execute_script("return getComputedStyle(document.body).backgroundColor")
    browser.find_element(By.ID, "theme-toggle").click()
    theme = html.get_attribute("data-theme")
    assert theme in ("dark", "light")
    assert browser.execute_script("return getComputedStyle(document.body).backgroundColor") != start
    browser.get(f"{dash}/ui/keys")
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("data-theme") == theme, "remembered"
    if theme == "light":  # the system is light: toggle once more for the dark picture
        browser.find_element(By.ID, "theme-toggle").click()
    browser.get(f"{dash}/ui/overview")
    time.sleep(0.3)  # the chart draws after load; only for the picture
    browser.save_screenshot(str(shots / "overview-desktop-dark.png"))
    browser.execute_script("localStorage.removeItem('hajimi-theme')")


def test_english_and_back(session, browser, dash):
    browser.get(f"{dash}/ui/keys")
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "zh-CN"
    browser.find_element(By.ID, "lang-switch").click()
    wait(browser, "English", lambda d: d.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en")
    assert browser.current_url.endswith("/ui/keys")
    assert "Add keys" in browser.page_source
    browser.get(f"{dash}/ui/overview")
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en", "remembered"
    browser.find_element(By.ID, "lang-switch").click()
    wait(browser, "Chinese", lambda d: d.find_element(By.TAG_NAME, "html").get_attribute("lang") == "zh-CN")


def test_phone_screens_scroll_only_vertically_and_screenshots(session, browser, dash, shots):
    browser.get_log("browser")  # earlier tests' messages (the refused login's 401)
    for lang in ("zh", "en"):
        browser.get(f"{dash}/lang/{lang}?next=/")
        for device in ("desktop", "phone"):
            phone(browser, device == "phone")
            try:
                for path in PAGES:
                    browser.get(f"{dash}{path}")
                    wait(browser, f"{path} loaded", lambda d: d.execute_script("return document.readyState") == "complete")
                    time.sleep(0.3)  # the chart draws after load; only for the picture
                    if device == "phone":
                        width, client_width = no_horizontal_scroll(browser)
                        assert width <= client_width, f"{path} ({lang}) scrolls sideways: {width} > {client_width}"
                    errors = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]
                    assert not errors, f"{path}: console errors {errors}"
                    name = (path.strip("/").replace("ui/", "") or "status")
                    browser.save_screenshot(str(shots / f"{name}-{device}-{lang}.png"))
            finally:
                phone(browser, False)
    browser.get(f"{dash}/lang/zh?next=/")


def test_keyboard_reaches_the_login_form(browser, dash):
    """Logged out, Tab moves through the skip link, the switches and into the password field."""
    browser.delete_all_cookies()
    browser.get(f"{dash}/")
    body = browser.find_element(By.TAG_NAME, "body")
    seen = []
    for _ in range(12):
        body = browser.switch_to.active_element
        body.send_keys("\t")
        seen.append(browser.switch_to.active_element.get_attribute("id"))
        if seen[-1] == "password":
            break
    assert "password" in seen, seen


def test_inside_a_frame_logging_in_opens_a_new_tab(browser, dash):
    """The Space page of Hugging Face shows hajimi in a frame, where browsers keep no session
    cookie of the framed site: the login form then opens the dashboard in a tab of its own."""
    browser.delete_all_cookies()
    browser.get(f"{dash}/")
    form = browser.find_element(By.CSS_SELECTOR, "#login form")
    assert form.get_attribute("target") in (None, ""), "not framed: the same tab"
    assert not browser.find_element(By.ID, "login-new-tab").is_displayed()
    browser.execute_script(
        "var f = document.createElement('iframe'); f.id = 'space'; f.src = '/';"
        "f.style.width = '600px'; f.style.height = '700px'; document.body.prepend(f);")
    wait(browser, "the framed page", lambda d: d.execute_script(
        "var f = document.getElementById('space');"
        "return f && f.contentDocument && f.contentDocument.getElementById('password') !== null"))
    browser.switch_to.frame(browser.find_element(By.ID, "space"))
    try:
        wait(browser, "the framed form to open a new tab",
             lambda d: d.find_element(By.CSS_SELECTOR, "#login form").get_attribute("target") == "_blank")
        assert browser.find_element(By.ID, "login-new-tab").is_displayed()
        before = set(browser.window_handles)
        browser.find_element(By.ID, "password").send_keys(WEB_PASSWORD)
        browser.find_element(By.ID, "login-button").click()
    finally:
        browser.switch_to.default_content()
    wait(browser, "a new tab", lambda d: len(set(d.window_handles) - before) == 1)
    first = browser.current_window_handle
    (tab,) = set(browser.window_handles) - before
    browser.switch_to.window(tab)
    try:
        wait(browser, "the overview in the new tab", lambda d: d.current_url.endswith("/ui/overview"))
        assert browser.find_element(By.ID, "calls-day").is_displayed()
    finally:
        browser.close()
        browser.switch_to.window(first)


LONG_EMAIL = "hajimi-roleplay-vertex-account-01@my-long-project-id-123456.iam.gserviceaccount.com"


@pytest.fixture(scope="module")
def vertex_dash(gateway):
    """A hajimi in Vertex mode with one long-named service account and no AI Studio key."""
    key_file = gateway._control("POST", "vertex/accounts",
                                {"client_email": LONG_EMAIL, "project_id": "my-long-project-id-123456"})
    env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "TMPDIR") if k in os.environ} | {
        "HOST": "127.0.0.1",
        "PORT": "0",
        "PASSWORD": PASSWORD,
        "WEB_PASSWORD": WEB_PASSWORD,
        "ENABLE_VERTEX": "true",
        "GOOGLE_CREDENTIALS_JSON": json.dumps(key_file),
        "VERTEX_BASE_URL": gateway.mock_url,
        "ENABLE_STORAGE": "false",
    }
    with tempfile.TemporaryDirectory(prefix="hajimi-dash-vertex-") as cwd:
        proc = _Process("hajimi-dashboard-vertex", [str(_binary("HAJIMI_BIN", "hajimi"))], env, cwd)
        try:
            yield proc.wait_for_url()
        finally:
            proc.stop()


def test_vertex_credentials_are_listed_and_fit_a_phone(browser, vertex_dash, gateway):
    """A service account's long e-mail is shown with the keys and still fits 375 px."""
    gateway.add_rules(rule(text_reply("from Vertex"), key=LONG_EMAIL))
    done = client(vertex_dash).chat.completions.create(
        model=FLASH, messages=[{"role": "user", "content": "hi"}])
    assert done.choices[0].message.content == "from Vertex"
    browser.delete_all_cookies()
    login(browser, vertex_dash)
    try:
        assert text(browser, "calls-day") == "1"
        phone(browser, True)
        for path in ("/ui/keys", "/ui/overview", "/"):
            browser.get(f"{vertex_dash}{path}")
            wait(browser, f"{path} loaded", lambda d: d.execute_script("return document.readyState") == "complete")
            width, client_width = no_horizontal_scroll(browser)
            assert width <= client_width, f"{path} scrolls sideways: {width} > {client_width}"
        browser.get(f"{vertex_dash}/ui/keys")
        assert LONG_EMAIL in browser.page_source
    finally:
        phone(browser, False)
        browser.delete_all_cookies()
