"""The staff console in real Chromium: a spoken order appears in Chinese, staff accept it, the speaker says so."""

import io
import time
from pathlib import Path

from assistant import app, config
from assistant.platform_server import BackgroundServer, create_app
from assistant.platform_store import PlatformStore
from voices.speaker import TextSpeaker

from .shared import launch_chromium, sync_playwright

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
TIMEOUT_MS = 10_000

# Draws two different characters in the console's font; a missing font gives two identical tofu boxes.
GLYPHS_DIFFER = """(font) => {
  const draw = (text) => {
    const canvas = document.createElement("canvas");
    canvas.width = 64; canvas.height = 64;
    const context = canvas.getContext("2d");
    context.font = font;
    context.fillText(text, 4, 48);
    return Array.from(context.getImageData(0, 0, 64, 64).data);
  };
  const a = draw("银"), b = draw("龄");
  return a.some((value) => value > 0) && a.some((value, i) => value !== b[i]);
}"""


def test_a_spoken_order_appears_in_the_console_and_accepting_it_is_spoken(tmp_path: Path) -> None:
    start = sync_playwright()
    from playwright.sync_api import expect

    store = PlatformStore.in_dir(tmp_path / "platform")
    home_token = store.add_home("home-001")
    staff_token = store.add_staff()
    out = io.StringIO()
    with BackgroundServer(create_app(store)) as server:
        cfg = config.load(env={}, overrides={"platform": {"url": server.url, "token": home_token,
                                                          "poll_interval": 0.2}})
        assistant = app.build_assistant(cfg, tmp_path / "home", TextSpeaker(out))
        try:
            for line in ["帮我订午饭", "两份", "对"]:
                assistant.hear(line)
            assert assistant.outbox.drain(timeout=10)
            (order,) = store.list_orders(home_id="home-001")

            with start() as p:
                browser = launch_chromium(p)
                try:
                    page = browser.new_page(viewport={"width": 1280, "height": 800}, locale="zh-CN")
                    page.goto(f"{server.url}/#token={staff_token}", timeout=TIMEOUT_MS)
                    row = page.get_by_test_id(f"order-{order.id}")
                    expect(row).to_have_attribute("data-status", "received", timeout=TIMEOUT_MS)
                    expect(row).to_contain_text("送餐", timeout=TIMEOUT_MS)
                    expect(row).to_contain_text("午饭，2份")
                    expect(page.get_by_test_id("title")).to_have_text("银龄 · 社区服务台")

                    ARTIFACTS.mkdir(exist_ok=True)
                    page.screenshot(path=str(ARTIFACTS / "console.png"), full_page=True)
                    font = row.evaluate("(element) => getComputedStyle(element).font")
                    assert "WenQuanYi Micro Hei" in font
                    assert page.evaluate("""() => document.fonts.check('16px "WenQuanYi Micro Hei"')""")
                    assert page.evaluate(GLYPHS_DIFFER, font), "Chinese renders as tofu: install fonts-wqy-microhei."

                    page.get_by_test_id(f"accept-{order.id}").click(timeout=TIMEOUT_MS)
                    expect(row).to_have_attribute("data-status", "accepted", timeout=TIMEOUT_MS)
                    expect(page.get_by_test_id(f"status-{order.id}")).to_have_text("已接单")
                finally:
                    browser.close()

            deadline = time.monotonic() + 10
            while "接了" not in out.getvalue() and time.monotonic() < deadline:
                assistant.tick()  # the loop ticks like this; the worker polls the platform every 0.2 s
                time.sleep(0.05)
        finally:
            assistant.close()
    assert store.get_order(order.id).status == "accepted"
    lines = out.getvalue().splitlines()
    assert lines[-2] == "说：好的，午饭订好了，送到了我告诉您。"
    assert lines[-1] == "说：社区已经接了您的饭订单。"  # the console sends an ETA only with 派送
