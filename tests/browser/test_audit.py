"""A label audit in a real headless Chromium: started from the Train page on a small subset, watched while it runs,
then one of its suspects opened and judged on Explore."""

from __future__ import annotations

import json
import time

from mnist_core.runs import RunStore
from tests.browser.conftest import assert_no_exception, screenshot, wait_for_app

AUDIT_IMAGES = 600
FOLDS = 2
AUDIT_TIMEOUT_S = 600  # generous: a shared 2-core machine can be many times slower than an idle one


def _open(page, url: str, timeout_ms: int = 30_000) -> None:
    page.goto(url)
    wait_for_app(page, timeout_ms)
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stSkeleton\"]')", timeout=30_000)


def _fill(page, key: str, value: int) -> None:
    field = page.locator(f".st-key-{key} input")
    field.fill(str(value))
    field.press("Tab")


def test_an_audit_started_from_the_page_shows_progress_and_its_suspects_can_be_judged(page, app_server):
    app_url, runs_dir = app_server
    _open(page, f"{app_url}/train")
    page.locator('[data-testid="stExpander"] summary').filter(has_text="Audit the labels").click()
    _fill(page, "audit_form_folds", FOLDS)
    _fill(page, "audit_form_train_subset", AUDIT_IMAGES)
    page.get_by_role("button", name="Audit the labels").click()

    page.get_by_text("Fold 1 of 2").or_(page.get_by_text("Queued: starting the audit")).first.wait_for(timeout=60_000)
    (run,) = [run for run in RunStore(runs_dir).list() if run.kind == "audit"]
    assert run.audit_config().folds == FOLDS and run.audit_config().train_subset == AUDIT_IMAGES
    screenshot(page, "audit-running")
    seen_folds = set()
    deadline = time.monotonic() + AUDIT_TIMEOUT_S
    # The outcome replaces the bars once the audit ends (the run id in its heading renders as code).
    while not page.get_by_text(f"Audited {AUDIT_IMAGES} training images").is_visible():
        assert time.monotonic() < deadline, f"audit not finished after {AUDIT_TIMEOUT_S}s: {run.progress()}"
        assert_no_exception(page)
        seen_folds |= {fold for fold in (1, 2) if page.get_by_text(f"Fold {fold} of 2").is_visible()}
        page.wait_for_timeout(250)
    assert seen_folds, "never saw the fold bar"
    assert run.status() == "finished"
    screenshot(page, "audit-finished")

    _open(page, f"{app_url}/explore", timeout_ms=300_000)  # Explore first analyses the bundled model's 10,000 images
    page.get_by_role("heading", name="Label audit").wait_for(timeout=60_000)
    first = page.locator('[class*="st-key-audit_test_"] button').first
    first.wait_for(timeout=60_000)
    index = int(first.inner_text().strip().lstrip("#"))
    first.click()
    page.get_by_text(f"Audit sample #{index} of the test split").wait_for(timeout=60_000)
    page.get_by_text("Each fold model's probabilities").wait_for()
    page.locator(f".st-key-audit_verdict_test_{index}").get_by_text("label wrong").click()
    page.get_by_text("Saved: label wrong").wait_for(timeout=30_000)
    assert_no_exception(page)
    screenshot(page, "audit-verdict")
    verdicts = json.loads((run.path / "verdicts.json").read_text())["verdicts"]
    assert [(v["split"], v["index"], v["verdict"]) for v in verdicts] == [("test", index, "wrong")]
