"""The docs site in a real browser: every notebook page served on 127.0.0.1 and opened in headless Chromium.

Each page must show every figure its notebook holds (images loaded, naturalWidth > 0), no error output and
no JavaScript exception; one full-page screenshot per page is kept in build/screenshots/. Chromium is
driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`, standard library only). The site is
the one in $JAXMLP_SITE (CI points it at `make docs`'s build/html) or one built here. Without Chromium the
test skips, unless REQUIRE_BROWSER=1 (as in CI), which turns a missing browser into a failure.
"""

from __future__ import annotations

import base64
import fcntl
import functools
import http.server
import json
import os
import select
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "docs" / "notebooks").glob("[0-9][0-9]_*.md"))
SCREENSHOTS = ROOT / "build" / "screenshots"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",  # offline by construction: only the local server
    "--remote-debugging-pipe",
]
# Every image in a cell's output, whether it loaded, and the outputs that signal an error (tracebacks, and
# stderr that names an error).
INSPECT = """(async () => {
  const images = [...document.querySelectorAll('.cell_output img')];
  images.forEach(i => { i.loading = 'eager'; });
  await Promise.all(images.map(i => i.complete ? null : new Promise(r => { i.onload = i.onerror = r; })));
  return JSON.stringify({
    title: document.title,
    images: images.map(i => ({src: i.getAttribute('src'), loaded: i.complete && i.naturalWidth > 0})),
    errors: [...document.querySelectorAll('.cell_output .traceback')].map(e => e.innerText).concat(
      [...document.querySelectorAll('.cell_output .stderr')].map(e => e.innerText)
        .filter(t => /Traceback|Error/.test(t))),  // a warning on stderr is not an error
    cells: document.querySelectorAll('.cell').length,
  });
})()"""


def chromium_binary() -> str:
    found = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)
    if found is None:
        message = "no chromium on PATH (apt-get install -y chromium)"
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail(message + "; REQUIRE_BROWSER=1 makes this a failure")
        pytest.skip(message)
    return found


class Chromium:
    """A headless Chromium and one page, driven over the DevTools protocol on fds 3 (in) and 4 (out)."""

    def __init__(self, binary: str, profile: Path):
        to_browser, self._write = os.pipe()
        self._read, from_browser = os.pipe()
        # The browser's ends, moved to fds >= 10 so that the redirections onto 3 and 4 cannot collide
        # (bash, not sh: dash redirects only fds 0-9).
        ends = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_browser, from_browser)]
        onto_3_and_4 = f'exec "$@" 3<&{ends[0]} 4>&{ends[1]} {ends[0]}<&- {ends[1]}>&-'
        args = ["bash", "-c", onto_3_and_4, "bash", binary, *FLAGS, f"--user-data-dir={profile}", "about:blank"]
        self.process = subprocess.Popen(args, pass_fds=ends, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for fd in (to_browser, from_browser, *ends):
            os.close(fd)
        self._buffer, self._next_id, self.events = b"", 0, []
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Page", "Runtime"):
            self.call(f"{domain}.enable", session=True)
        self.call(
            "Emulation.setDeviceMetricsOverride",
            session=True,
            width=1280,
            height=900,
            deviceScaleFactor=1,
            mobile=False,
        )

    def _receive(self, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._read], [], [], left)[0]:
                raise TimeoutError("Chromium did not answer")
            chunk = os.read(self._read, 1 << 20)
            if not chunk:
                raise RuntimeError("Chromium closed its DevTools pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method: str, session: bool = False, timeout: float = 60, **params) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = self.session
        os.write(self._write, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._receive(timeout)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]
            self.events.append(reply)

    def wait_for(self, event: str, timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            for i, message in enumerate(self.events):
                if message.get("method") == event:
                    return self.events.pop(i)
            self.events.append(self._receive(deadline - time.monotonic()))

    def open(self, url: str) -> dict:
        """Load `url`, wait for its load event and its images, and return what INSPECT finds."""
        self.events.clear()
        self.call("Page.navigate", session=True, url=url)
        self.wait_for("Page.loadEventFired")
        found = self.call("Runtime.evaluate", session=True, expression=INSPECT, awaitPromise=True, returnByValue=True)
        page = json.loads(found["result"]["value"])
        page["exceptions"] = [e["params"] for e in self.events if e.get("method") == "Runtime.exceptionThrown"]
        return page

    def screenshot(self, path: Path) -> None:
        """The whole page, at half scale."""
        size = self.call("Page.getLayoutMetrics", session=True)["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 0.5}
        shot = self.call("Page.captureScreenshot", session=True, format="png", clip=clip, captureBeyondViewport=True)
        path.write_bytes(base64.b64decode(shot["data"]))

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)
        os.close(self._write)
        os.close(self._read)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    if os.environ.get("JAXMLP_SITE"):
        return Path(os.environ["JAXMLP_SITE"])
    out = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "sphinx", "-b", "html", "-q", str(ROOT / "docs"), str(out)], check=True)
    return out


@pytest.fixture(scope="module")
def server(site):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    handler.log_message = lambda *args: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    chromium = Chromium(chromium_binary(), tmp_path_factory.mktemp("chromium-profile"))
    yield chromium
    chromium.close()


def figures_in(notebook: Path) -> int:
    """How many figures the executed notebook holds: its image outputs."""
    cells = nbformat.read(notebook.with_suffix(".ipynb"), as_version=4).cells
    outputs = [o for c in cells if c.cell_type == "code" for o in c.outputs]
    return sum(any(k.startswith("image/") for k in o.get("data", {})) for o in outputs)


def test_there_are_notebooks_to_check():
    assert NOTEBOOKS and all(p.with_suffix(".ipynb").is_file() for p in NOTEBOOKS)


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_page_shows_its_figures_and_no_errors(notebook, site, server, browser):
    page = browser.open(f"{server}/notebooks/{notebook.stem}.html")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    browser.screenshot(SCREENSHOTS / f"{notebook.stem}.png")
    assert page["cells"] > 0, f"{notebook.stem}: no notebook cells on the page ({page['title']})"
    assert len(page["images"]) == figures_in(notebook) > 0
    assert [i["src"] for i in page["images"] if not i["loaded"]] == []
    assert page["errors"] == []
    assert page["exceptions"] == []
