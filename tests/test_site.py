"""The docs site in a real browser, with the network blocked: every page served on 127.0.0.1 and opened in
headless Chromium, which can reach nothing else (every host name resolves to nothing, and every request goes to a
proxy on a closed local port, except those to the local server).

On every page: no request leaves the machine; no raw TeX (`\\(`, `\\[`, `$$`) outside code; every formula
rendered by MathJax (an `mjx-container` in each, no MathJax error); every image loaded, and none shown at less
than half its natural width unless it links to its full-size file; no JavaScript exception. Every `href` on
every page, and on the pages they lead to, is followed: its file is served, and its `#anchor` is an id there.
Each notebook page shows every figure its notebook holds and no error output, and the optimizer notebook's
page holds rendered math. One full-page screenshot per notebook page is kept in build/screenshots/.

Chromium is driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`, standard library only).
The site is the one in $JAXMLP_SITE (CI points it at `make docs`'s build/html) or one conftest.py builds. Without
Chromium the test skips, unless REQUIRE_BROWSER=1 (as in CI), which turns a missing browser into a failure.
"""

from __future__ import annotations

import base64
import fcntl
import functools
import html.parser
import http.server
import json
import os
import select
import shutil
import subprocess
import threading
import time
import urllib.parse
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "docs" / "notebooks").glob("[0-9][0-9]_*.md"))
SCREENSHOTS = ROOT / "build" / "screenshots"
OUTSIDE = "https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-chtml.js"  # where MathJax comes from when not vendored
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    # Offline by construction: no host name resolves, and every request but the local server's goes to a proxy
    # on the discard port, where nothing listens.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--proxy-server=http://127.0.0.1:9",
    "--proxy-bypass-list=127.0.0.1",
    "--remote-debugging-pipe",
]
# What one page shows once its images have loaded and MathJax has typeset it: its text outside code, its
# formulas, images, links and ids, and the outputs that signal an error (tracebacks, and stderr that names one).
INSPECT = """(async () => {
  const images = [...document.querySelectorAll('img')];
  images.forEach(i => { i.loading = 'eager'; });
  await Promise.all(images.map(i => i.complete ? null : new Promise(r => { i.onload = i.onerror = r; })));
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) { await MathJax.startup.promise; }
  const prose = document.body.cloneNode(true);
  prose.querySelectorAll('pre, code, script, style, textarea, mjx-container, .highlight').forEach(e => e.remove());
  const math = [...document.querySelectorAll('.math')];
  return JSON.stringify({
    title: document.title,
    prose: prose.textContent,
    math: math.length,
    unrendered: math.filter(m => !m.querySelector('mjx-container')).map(m => m.textContent.slice(0, 80)),
    math_errors: [...document.querySelectorAll('mjx-merror, [data-mjx-error]')].map(e => e.textContent),
    rendered: document.querySelectorAll('mjx-container').length,
    images: images.map(i => ({
      src: i.src, cell: !!i.closest('.cell_output'), loaded: i.complete && i.naturalWidth > 0,
      natural: i.naturalWidth, shown: i.getBoundingClientRect().width, displayed: i.getClientRects().length > 0,
      link: i.closest('a[href]') ? i.closest('a[href]').href : null})),
    links: [...document.querySelectorAll('a[href]')].map(a => a.href),
    ids: [...document.querySelectorAll('[id], a[name]')].map(e => e.id || e.getAttribute('name')),
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
        for domain in ("Page", "Runtime", "Network"):
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
        page["requests"] = [
            e["params"]["request"]["url"] for e in self.events if e.get("method") == "Network.requestWillBeSent"
        ]
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
def server(site):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    handler.log_message = lambda *args: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    chromium = Chromium(chromium_binary(), tmp_path_factory.mktemp("chromium-profile"))
    yield chromium
    chromium.close()


def site_pages(site: Path) -> list[str]:
    """Every page of the site, as a path relative to its root; not the source views of repository files
    (`_repo/`, plain generated HTML), whose links are followed anyway."""
    skipped = ("_static", "_sources", "_images", "_downloads", "_repo")
    pages = (p.relative_to(site).as_posix() for p in site.rglob("*.html"))
    return sorted(p for p in pages if not p.startswith(skipped))


@pytest.fixture(scope="module")
def pages(site, server, browser) -> dict[str, dict]:
    """What the browser finds on every page of the site, by its path."""
    found = {}
    for page in site_pages(site):
        found[page] = browser.open(server + page)
        if page.startswith("notebooks/"):
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            browser.screenshot(SCREENSHOTS / (Path(page).stem + ".png"))
    return found


def figures_in(notebook: Path) -> int:
    """How many figures the executed notebook holds: its image outputs."""
    cells = nbformat.read(notebook.with_suffix(".ipynb"), as_version=4).cells
    outputs = [o for c in cells if c.cell_type == "code" for o in c.outputs]
    return sum(any(k.startswith("image/") for k in o.get("data", {})) for o in outputs)


def test_there_are_notebooks_to_check():
    assert NOTEBOOKS and all(p.with_suffix(".ipynb").is_file() for p in NOTEBOOKS)


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_page_shows_its_figures_and_no_errors(notebook, pages):
    page = pages[f"notebooks/{notebook.stem}.html"]
    assert page["cells"] > 0, f"{notebook.stem}: no notebook cells on the page ({page['title']})"
    assert len([i for i in page["images"] if i["cell"]]) == figures_in(notebook) > 0
    assert [i["src"] for i in page["images"] if not i["loaded"]] == []
    assert page["errors"] == []


def test_the_browser_reaches_nothing_but_the_local_server(server, browser):
    browser.open(server)
    probe = f"fetch({json.dumps(OUTSIDE)}, {{mode: 'no-cors'}}).then(() => 'reached', () => 'blocked')"
    found = browser.call("Runtime.evaluate", session=True, expression=probe, awaitPromise=True, returnByValue=True)
    assert found["result"]["value"] == "blocked"


def test_no_page_requests_anything_from_outside(pages, server):
    outside = {
        page: [u for u in found["requests"] if not u.startswith((server, "data:", "blob:", "about:"))]
        for page, found in pages.items()
    }
    assert {page: urls for page, urls in outside.items() if urls} == {}


def test_every_page_renders_its_math_offline(pages):
    raw = {page: [t for t in ("\\(", "\\[", "$$") if t in found["prose"]] for page, found in pages.items()}
    assert {page: found for page, found in raw.items() if found} == {}, "raw TeX outside code"
    assert {page: found["unrendered"] for page, found in pages.items() if found["unrendered"]} == {}
    assert {page: found["math_errors"] for page, found in pages.items() if found["math_errors"]} == {}
    assert sum(found["math"] for found in pages.values()) > 0, "no page has a formula: the check checks nothing"


def test_the_optimizer_notebook_shows_rendered_math(pages):
    (page,) = [p for p in pages if p.startswith("notebooks/03_")]
    assert pages[page]["math"] > 0 and pages[page]["rendered"] >= pages[page]["math"]


def test_no_figure_is_shrunk_without_a_link_to_its_full_size(pages):
    shrunk = {
        page: [
            i["src"]
            for i in found["images"]
            if i["displayed"] and i["shown"] < i["natural"] / 2 and i["link"] != i["src"]
        ]
        for page, found in pages.items()
    }
    assert {page: images for page, images in shrunk.items() if images} == {}
    assert [i["src"] for found in pages.values() for i in found["images"] if not i["loaded"]] == []


def test_no_javascript_exception(pages):
    assert {page: found["exceptions"] for page, found in pages.items() if found["exceptions"]} == {}


class _Anchors(html.parser.HTMLParser):
    """The ids and link targets of one HTML file, read without a browser."""

    def __init__(self):
        super().__init__()
        self.ids, self.links = set(), []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.ids.update(v for k, v in attrs.items() if k == "id" or (tag == "a" and k == "name"))
        if tag == "a" and attrs.get("href"):
            self.links.append(attrs["href"])


def served_file(site: Path, server: str, url: str) -> Path | None:
    """The file of the site that `url` (on the local server) names, or None when there is none."""
    path = urllib.parse.unquote(urllib.parse.urlsplit(url).path)
    target = (site / path.lstrip("/")).resolve()
    if target.is_dir():
        target = target / "index.html"
    return target if target.is_file() and target.is_relative_to(site.resolve()) else None


def test_every_link_leads_somewhere(site, server, pages):
    """Every href of every page, and of the pages they lead to, names a file of the site and an id in it."""
    ids = {server + page: set(found["ids"]) for page, found in pages.items()}
    todo = [(server + page, link) for page, found in pages.items() for link in found["links"]]
    dead, seen = [], set()
    while todo:
        source, link = todo.pop()
        url, _, fragment = link.partition("#")
        if not url.startswith(server) or (source, link) in seen:
            continue  # a page outside cannot be followed offline
        seen.add((source, link))
        target = served_file(site, server, url)
        if target is None:
            dead.append(f"{source} -> {link}")
            continue
        if target.suffix != ".html":
            continue
        if url not in ids:
            parsed = _Anchors()
            parsed.feed(target.read_text(encoding="utf-8"))
            ids[url] = parsed.ids
            todo.extend((url, urllib.parse.urljoin(url, href)) for href in parsed.links)
        if fragment and urllib.parse.unquote(fragment) not in ids[url]:
            dead.append(f"{source} -> {link} (no such anchor)")
    assert dead == []
    assert len(seen) > len(pages), "hardly any links followed: the check checks nothing"
