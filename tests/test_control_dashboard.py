"""The dashboard in a real headless Chromium (Debian's ``chromium``, driven by Playwright):
it loads, shows the book of the replay in progress and the orders going out; a risk limit
changed in the page changes the device's register (read back through the driver) and shows
in the audit log; a refused value is marked; the kill switch stops orders. Screenshots are
kept under build/artifacts/."""

import shutil
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from test_control_api import ROOT, WRITE, serving, wait_until

ARTIFACTS = ROOT / "build" / "artifacts"
CHROMIUM = next((p for p in ("/usr/bin/chromium", shutil.which("chromium") or "",
                             shutil.which("chromium-browser") or "") if p and Path(p).exists()),
                None)

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium executable (Debian: "
                                "apt-get install chromium; .ci/run installs it)")


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                              args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield b
        b.close()


def number(page, selector: str) -> int:
    return int(page.inner_text(selector).replace(",", ""))


def test_dashboard_follows_the_replay_and_operates_it(browser, tmp_path):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with serving(speed="6000", audit_path=tmp_path / "audit.jsonl") as (svc, srv):
        page = browser.new_page(viewport={"width": 1500, "height": 1000})
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"{srv.url}/?token={WRITE}&operator=dash")

        # the book of the replay in progress: levels of the chosen symbol, moving on
        expect(page.locator("#ladder tr.level.bid").first).to_be_visible(timeout=60_000)
        expect(page.locator("#ladder tr.level.ask").first).to_be_visible()
        assert page.input_value("#symbol")
        first = page.get_attribute("#position", "data-position"), \
            page.get_attribute("#position", "data-pass")
        page.wait_for_function(
            "([p, q]) => { const e = document.getElementById('position');"
            " return e.dataset.position !== p || e.dataset.pass !== q; }",
            arg=list(first), timeout=60_000)
        page.wait_for_function("() => +document.getElementById('orders-total')"
                               ".textContent.replace(/,/g, '') > 0", timeout=60_000)
        expect(page.locator("#orders tr.order").first).to_be_visible()
        assert page.locator("#counters [data-counter=frames]").count() == 1
        page.screenshot(path=str(ARTIFACTS / "control-dashboard.png"), full_page=True)

        # a risk limit changed in the page: the device's register, then the audit log
        page.fill("#risk-form input[name=max_order_qty]", "321")
        page.click("#risk-form button[type=submit]")
        expect(page.locator('#audit li[data-what="risk.max_order_qty"]')).to_be_visible(
            timeout=60_000)
        assert svc.replay.call(lambda ctx: ctx.driver.risk()["max_order_qty"]) == 321
        (e,) = [x for x in svc.audit.entries() if x["what"] == "risk.max_order_qty"]
        assert (e["who"], e["new"]) == ("dash@127.0.0.1", 321)
        expect(page.locator('#risk-form [data-cur="max_order_qty"]')).to_have_text("321")

        # a value the register cannot hold is refused, the field marked, nothing written
        page.fill("#risk-form input[name=collar_bps]", "-5")
        page.click("#risk-form button[type=submit]")
        expect(page.locator("#risk-form input[name=collar_bps].refused")).to_be_visible()
        expect(page.locator("#message")).to_contain_text("collar_bps")
        assert svc.replay.call(lambda ctx: ctx.driver.risk()["collar_bps"]) == \
            svc.replay.config.risk.collar_bps

        # the kill switch: applied, then triggers keep firing and risk rejects them all
        page.click("#kill-button")
        expect(page.locator("#kill-state")).to_have_text("ON", timeout=60_000)
        expect(page.locator('#audit li[data-what="control.kill"]')).to_be_visible()
        (k,) = [x for x in svc.audit.entries() if x["what"] == "control.kill"]
        total = number(page, "#orders-total")
        # orders the page counted are exactly those that left before the kill landed
        sent = svc.hub.snapshot(lambda st: st["orders_total"])[1]
        assert total == sent
        expect(page.locator('#alerts li[data-reason="kill"]').first).to_be_visible(
            timeout=60_000)
        wait_until(lambda: svc.hub.snapshot(lambda st: st["pass"])[1] > k["pass"],
                   "a later pass, still killed")
        expect(page.locator('#alerts li[data-reason="kill"]').first).to_be_visible()
        assert number(page, "#orders-total") == total
        assert svc.hub.snapshot(lambda st: st["orders_total"])[1] == total
        page.screenshot(path=str(ARTIFACTS / "control-dashboard-killed.png"), full_page=True)
        assert errors == []
        page.close()
