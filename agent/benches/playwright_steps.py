"""The bench's 10 steps in Python Playwright, as a user would write them instead of a job: launch
the same Chromium, sign in, go to the invoices, pull values out, take the final screenshot and
write the values, then close. Usage: playwright_steps.py CHROMIUM ORIGIN PASSWORD OUT_DIR"""

import json
import sys

from playwright.sync_api import sync_playwright


def main() -> None:
    chromium, origin, password, out = sys.argv[1:5]
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=chromium,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(f"{origin}/portal")
        page.fill("#user", "ada")
        page.fill("#password", password)
        page.select_option("#plan", "team")
        page.click("#go")
        page.wait_for_selector("#welcome")
        plan = page.inner_text("#plan")
        page.click("#invoices")
        page.wait_for_url("**page=1**")
        numbers = page.locator(".number").all_inner_texts()
        page.screenshot(path=f"{out}/screenshot.png")
        with open(f"{out}/result.json", "w") as f:
            json.dump({"title": page.title(), "extracted": {"plan": plan, "numbers": numbers}}, f)
        browser.close()


if __name__ == "__main__":
    main()
