"""The family phone page in real Chromium (390×844): pair, add a reminder, see a dose taken, handle an SOS alert."""

import datetime as dt
import io
import time
from pathlib import Path
from typing import Any

import pytest

from assistant import app, config
from assistant.reminders import DoseDue
from voices.speaker import TextSpeaker

from .shared import free_port, launch_chromium, sync_playwright

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
TIMEOUT_MS = 10_000


def _wait_for(condition: Any, what: str, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def _shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"family_{name}.png"), full_page=True)


def test_family_page_pairs_adds_a_reminder_sees_it_taken_and_handles_an_sos(tmp_path: Path) -> None:
    start = sync_playwright()
    from playwright.sync_api import expect

    home = tmp_path / "home"
    out = io.StringIO()
    cfg = config.load(env={}, overrides={"web": {"enabled": True, "port": free_port()}})
    assistant = app.build_assistant(cfg, home, TextSpeaker(out))
    try:
        assistant.hear("绑定家人")  # the speaker says the code, digit by digit
        spoken = out.getvalue().splitlines()[-1]
        code = "".join(str("零一二三四五六七八九".index(c)) for c in spoken.split("：", 2)[-1] if c in "零一二三四五六七八九")
        assert len(code) == 6, spoken
        with start() as p:
            browser = launch_chromium(p)
            try:
                page = browser.new_page(viewport={"width": 390, "height": 844}, locale="zh-CN",
                                        is_mobile=True, has_touch=True)
                page.on("dialog", lambda dialog: dialog.accept())
                page.goto(f"{assistant.family_url}/", timeout=TIMEOUT_MS)
                expect(page.get_by_test_id("title")).to_have_text("银龄 · 家人", timeout=TIMEOUT_MS)
                font = page.get_by_test_id("pair-submit").evaluate("(element) => getComputedStyle(element).font")
                assert "WenQuanYi Micro Hei" in font
                _shot(page, "pair")

                # pair: 6-digit code + name → token kept in localStorage
                page.get_by_test_id("pair-code").fill(code)
                page.get_by_test_id("pair-name").fill("儿子")
                page.get_by_test_id("pair-submit").click()
                expect(page.get_by_test_id("app")).to_be_visible(timeout=TIMEOUT_MS)
                assert page.evaluate("() => localStorage.getItem('yinling.family.token')")
                assert page.get_by_test_id("pair-section").is_hidden()

                # every touch target is at least 48 px tall
                heights = page.eval_on_selector_all(
                    "button:not([hidden]), input:not([type=checkbox])",
                    "(els) => els.filter((e) => e.offsetParent !== null).map((e) => e.getBoundingClientRect().height)")
                assert heights and min(heights) >= 48, heights

                # add 降压药 一片 08:00 on the page
                page.get_by_test_id("tab-reminders").click()
                page.get_by_test_id("reminder-medicine").fill("降压药")
                page.get_by_test_id("reminder-dose").fill("一片")
                page.get_by_test_id("reminder-times").fill("08:00")
                page.get_by_test_id("reminder-submit").click()
                listed = page.get_by_test_id("reminder-list").locator("li.reminder")
                expect(listed).to_have_count(1, timeout=TIMEOUT_MS)
                expect(listed).to_contain_text("降压药")
                expect(listed).to_contain_text("一片")
                expect(listed).to_contain_text("08:00")
                (reminder,) = assistant.reminders.list()
                assert (reminder.medicine, reminder.dose, reminder.times) == ("降压药", "一片", ("08:00",))
                _shot(page, "reminders")

                # ring it now, the elder says 吃过了 → taken on the page
                tz = assistant.reminders.tz
                scheduled = dt.datetime.combine(dt.datetime.now(tz).date(), dt.time(8, 0), tzinfo=tz)
                assistant.reminders.fire(DoseDue(reminder.id, "降压药", "一片", "medication", scheduled))
                assistant.tick()
                assistant.hear("吃过了")
                assert "降压药记下吃过了" in out.getvalue()
                page.get_by_test_id("tab-doses").click()
                dose = page.get_by_test_id(f"dose-{reminder.id}-08:00")
                expect(dose).to_have_attribute("data-status", "taken", timeout=TIMEOUT_MS)
                expect(dose).to_contain_text("已吃")
                expect(page.get_by_test_id("adherence-7")).not_to_have_text("—")
                _shot(page, "doses")

                # a spoken SOS opens an incident; it appears by polling, 我来处理 closes it
                page.get_by_test_id("tab-alerts").click()
                assistant.hear("救命啊")
                (incident,) = _wait_for(assistant.escalation.open_incidents, "the SOS incident")
                alert = page.get_by_test_id(f"alert-{incident.id}")
                expect(alert).to_have_attribute("data-status", "open", timeout=TIMEOUT_MS)
                _shot(page, "alert")
                page.get_by_test_id(f"alert-ack-{incident.id}").click()
                expect(alert).to_have_attribute("data-status", "closed", timeout=TIMEOUT_MS)
                _wait_for(lambda: not assistant.escalation.open_incidents(), "the incident to close")
                _shot(page, "alert_handled")

                # 留言 and 家里状态 work too
                page.get_by_test_id("tab-messages").click()
                page.get_by_test_id("message-text").fill("妈，我周末回来看您")
                page.get_by_test_id("message-submit").click()
                expect(page.get_by_test_id("message-result")).to_be_visible(timeout=TIMEOUT_MS)
                page.get_by_test_id("tab-status").click()
                expect(page.get_by_test_id("status-assistant")).to_contain_text("在线", timeout=TIMEOUT_MS)
                _shot(page, "status")
            finally:
                browser.close()
        assistant.tick()
    finally:
        assistant.close()
    assert "妈，我周末回来看您" in out.getvalue()
