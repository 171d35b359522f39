"""Drive the FiftyOne App in headless Chromium: its server, a browser and
the gestures FIXER's end-to-end tests and README screenshots use.

The server is FiftyOne's own (``fiftyone/server/main.py``, what
``fo.launch_app`` starts), run as a subprocess that inherits the caller's
``FIFTYONE_*`` environment (database, plugins dir) and logs to a file.
Selectors are the App's ``data-cy`` attributes, roles and visible text.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1400, "height": 900}
TIMEOUT_MS = 30_000  # default wait for any element


def find_chromium() -> str | None:
    """Path of the Chromium binary (``FIXER_CHROMIUM`` overrides)."""
    for path in (
        os.environ.get("FIXER_CHROMIUM"),
        shutil.which("chromium"),
        "/usr/bin/chromium",
    ):
        if path and os.access(path, os.X_OK):
            return path
    return None


def missing_browser() -> str | None:
    """Why the App cannot be driven here, or None when it can."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -e '.[dev]')"
    if find_chromium() is None:
        return "Chromium is not installed (apt-get install -y chromium)"
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AppServer:
    """FiftyOne's App server on a free local port, logging to ``log_path``.

    Start it after the ``FIFTYONE_*`` environment is set (it is read by the
    subprocess). Use as a context manager, or call :meth:`start` and
    :meth:`stop`.
    """

    def __init__(self, log_path: Path, *, port: int | None = None) -> None:
        self.log_path = Path(log_path)
        self.port = port or _free_port()
        self.address = "127.0.0.1"
        self._proc: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.address}:{self.port}"

    def url(self, dataset: str) -> str:
        """The App's URL of a dataset."""
        return f"{self.base_url}/datasets/{dataset}"

    def start(self, timeout: float = 60.0) -> AppServer:
        import fiftyone.constants as foc

        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(
                [sys.executable, "main.py", "--port", str(self.port)]
                + ["--address", self.address],
                cwd=foc.SERVER_DIR,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=dict(os.environ),
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(
                    f"the App server exited ({self._proc.returncode}); "
                    f"log: {self.log_path}\n{self.log_tail()}"
                )
            try:
                with urllib.request.urlopen(
                    f"{self.base_url}/fiftyone", timeout=2
                ):
                    return self
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise RuntimeError(
            f"the App server did not answer within {timeout:.0f}s; "
            f"log: {self.log_path}\n{self.log_tail()}"
        )

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> AppServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


@contextlib.contextmanager
def chromium() -> Iterator:
    """A headless Chromium (Debian's) driven by Playwright."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        pw.selectors.set_test_id_attribute("data-cy")
        browser = pw.chromium.launch(
            executable_path=find_chromium(), args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


class App:
    """One browser page on the App, with the gestures a user makes."""

    def __init__(self, page, server: AppServer) -> None:
        self.page = page
        self.server = server
        page.set_default_timeout(TIMEOUT_MS)

    # -- navigation ----------------------------------------------------------

    def open(self, dataset: str) -> None:
        """Loads a dataset and waits for its grid. (The server remembers
        each dataset's last view: pick views with :meth:`open_saved_view`.)
        """
        self.page.goto(self.server.url(dataset))
        self.page.get_by_test_id("fo-grid").wait_for()
        self.page.get_by_test_id("looker").first.wait_for()
        self.dismiss_popups()
        # The server remembers the last sample opened, for every client
        if self.page.get_by_test_id("modal").is_visible():
            self.close_modal()

    def dismiss_popups(self) -> None:
        """Closes the "Explore Enterprise" pop-up if it is showing."""
        dismiss = self.page.get_by_role("button", name="Dismiss", exact=True)
        with contextlib.suppress(Exception):
            dismiss.wait_for(timeout=3_000)
            dismiss.click()

    def grid_count(self) -> int:
        """The sample count the grid's header shows."""
        text = self.page.get_by_test_id("entry-counts").inner_text()
        match = re.search(r"([\d,]+)\s+samples?", text)
        if match is None:
            raise AssertionError(f"no sample count in {text!r}")
        return int(match.group(1).replace(",", ""))

    def open_saved_view(self, name: str) -> None:
        """Picks a saved view in the selector above the sidebar."""
        self.page.get_by_test_id("saved-views-selection").click()
        self.page.get_by_test_id(
            f"saved-views-{name}-selection-option"
        ).click()
        self.page.wait_for_url(re.compile(rf"[?&]view={re.escape(name)}"))

    def saved_view_names(self) -> list[str]:
        """Names listed by the saved-views selector (left closed)."""
        self.page.get_by_test_id("saved-views-selection").click()
        options = self.page.locator(
            '[data-cy^="saved-views-"][data-cy$="-selection-option"]'
        )
        options.first.wait_for()
        names = [
            re.sub(r"^saved-views-|-selection-option$", "", cy)
            for cy in options.evaluate_all(
                "els => els.map(e => e.getAttribute('data-cy'))"
            )
        ]
        # The menu's invisible backdrop closes it
        self.page.locator(".MuiMenu-root .MuiBackdrop-root").click(
            position={"x": 5, "y": 5}
        )
        options.first.wait_for(state="hidden")
        return [n for n in names if n != "unsaved-view"]

    def open_sample(self, index: int = 0) -> None:
        """Opens the ``index``-th grid sample in the modal."""
        self.page.get_by_test_id("looker").nth(index).click()
        self.page.get_by_test_id("modal-looker-container").wait_for()

    def hover_label(self, bounding_box: list[float], metadata):
        """Hovers the centre of a label's box (normalized ``[x, y, w, h]``)
        in the modal's image; returns the label's tooltip."""
        frame = self.page.get_by_test_id("modal-looker-container")
        frame.locator("canvas[canvas-loaded=true]").wait_for()
        box = frame.bounding_box()
        width, height = metadata.width, metadata.height
        scale = min(box["width"] / width, box["height"] / height)
        left = box["x"] + (box["width"] - width * scale) / 2
        top = box["y"] + (box["height"] - height * scale) / 2
        x, y, w, h = bounding_box
        self.page.mouse.move(
            left + (x + w / 2) * width * scale,
            top + (y + h / 2) * height * scale,
        )
        return self.page.get_by_test_id("sample-canvas-tooltip-content")

    def close_modal(self) -> None:
        self.page.keyboard.press("Escape")
        self.page.get_by_test_id("modal").wait_for(state="hidden")

    def open_panel(self, name: str) -> None:
        """Opens a panel from the "+" menu next to the Samples tab."""
        self.page.get_by_test_id("new-panel-btn").click()
        self.page.get_by_test_id(f"new-panel-option-{name}").click()

    # -- operators -----------------------------------------------------------

    def open_operator(self, label: str):
        """Finds an operator by label in the operator browser (backtick)
        and opens its form; returns the form's modal."""
        self.page.keyboard.press("`")
        search = self.page.get_by_test_id("operators-browser-search")
        search.wait_for()
        search.fill(label)
        browser = self.page.get_by_test_id("operators-browser")
        found = browser.get_by_text(label, exact=True).first
        none = browser.get_by_text("No matching operators")
        found.or_(none).wait_for()
        if none.is_visible():
            raise AssertionError(
                f"operator {label!r} not found; plugin errors: "
                + self._plugin_errors()
            )
        self.page.keyboard.press("Enter")
        modal = self.page.get_by_test_id("operators-prompt-modal")
        modal.wait_for()
        return modal

    def _plugin_errors(self) -> str:
        """The plugin errors the operator browser lists, expanded."""
        errors = self.page.get_by_text(re.compile(r"^\d+ errors?$"))
        if not errors.is_visible():
            return "none"
        errors.click()
        browser = self.page.get_by_test_id("operators-browser")
        for summary in browser.locator("summary").all():
            summary.click()
        return browser.inner_text()

    @property
    def form(self):
        """The open operator form (or its output, or its progress)."""
        return self.page.get_by_test_id("operators-prompt-modal")

    def form_input(self, label: str):
        """The text or number input of the form field labelled ``label``."""
        return self.form.locator(
            f'xpath=//p[normalize-space()="{label}"]/following::input[1]'
        )

    def form_select(self, label: str):
        """The dropdown of the form field labelled ``label``."""
        return self.form.locator(
            f'xpath=//p[normalize-space()="{label}"]'
            "/following::*[@role='combobox'][1]"
        )

    def fill(self, label: str, value: str) -> None:
        """Types ``value`` into a form field and waits for the form to be
        resolved again (forms are dynamic)."""
        self.form_input(label).fill(value)
        self.page.wait_for_timeout(700)

    def execute(self) -> None:
        """Clicks the form's Execute button."""
        self.form.get_by_role("button", name="Execute", exact=True).click()

    def finish_progress(self, message: str, timeout_ms: int = 120_000) -> None:
        """Waits for a generator operator's progress to reach 100% and its
        final ``message`` (a notification) to show, then closes the
        progress dialog with its Done button."""
        from playwright.sync_api import expect

        bar = self.page.get_by_role("progressbar").first
        expect(bar).to_have_attribute(
            "aria-valuenow", "100", timeout=timeout_ms
        )
        expect(self.page.get_by_text(message).first).to_be_visible(
            timeout=timeout_ms
        )
        done = self.page.get_by_role("button", name="Done", exact=True)
        done.click()
        expect(done).to_have_count(0)

    # -- checks and artifacts ------------------------------------------------

    def traceback_shown(self) -> str | None:
        """A Python traceback or error shown anywhere on the page."""
        text = self.page.locator("body").inner_text()
        for marker in ("Traceback (most recent call last)", "Error:"):
            if marker in text:
                start = text.index(marker)
                return text[start : start + 500]
        return None

    def save_artifacts(self, folder: Path) -> list[Path]:
        """A screenshot, the page's HTML and the server log, in ``folder``."""
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        with contextlib.suppress(Exception):
            png = folder / "screenshot.png"
            self.page.screenshot(path=str(png))
            paths.append(png)
        with contextlib.suppress(Exception):
            html = folder / "page.html"
            html.write_text(self.page.content())
            paths.append(html)
        if self.server.log_path.exists():
            log = folder / "server.log"
            shutil.copyfile(self.server.log_path, log)
            paths.append(log)
        return paths
