"""Sphinx extension of the jaxmlp site: links into the repository's files, and figures that open full size.

Links from README.md and the docs pages into source files and folders (`jaxmlp/show/plots.py`, `../tracer/`,
`benchmarks/README.md#...`) are not pages of the site. Each is resolved against the folder of the file that
holds the link (the README for what docs/index.md includes from it, else the page's own folder); when it
names a file or folder of the repository that is no page, the link goes to a source view written into
`_repo/` of the site: a file as highlighted text (Markdown with its headings' anchors, so `#...` links land),
a folder as a list of its entries. Links to pages are left to MyST, and one that resolves to nothing stays a
MyST warning, which `-W` makes an error.

Every figure is a link to its own full-size image, so one the content column scales down opens full size on
click.
"""

from __future__ import annotations

import html
import posixpath
import re
from pathlib import Path

from docutils import nodes
from sphinx import addnodes
from sphinx.application import Sphinx
from sphinx.util.osutil import relative_uri

REPO_VIEWS = "_repo"
SKIPPED = {".git", ".venv", "__pycache__", "build", ".pytest_cache", ".ruff_cache"}
TEXT_LIMIT = 1 << 20  # bytes: larger files get no source view


def repo_root(app: Sphinx) -> Path:
    return Path(app.srcdir).resolve().parent


def view_page(relpath: str, is_dir: bool) -> str:
    """Where the source view of repository path `relpath` goes in the site (a path relative to its root)."""
    return posixpath.join(REPO_VIEWS, relpath, "index.html") if is_dir else f"{REPO_VIEWS}/{relpath}.html"


def is_page(env, path: Path) -> bool:
    """Whether `path` is the source of a page of the site."""
    return env.path2doc(str(path)) in env.found_docs


def page_of(env, path: Path) -> str | None:
    """The page `path` is the source of, or the twin of (a notebook's MyST file and its executed .ipynb)."""
    for candidate in [path, *sorted(path.parent.glob(path.stem + ".*"))]:
        if is_page(env, candidate):
            return env.path2doc(str(candidate))
    return None


def link_target(app: Sphinx, node: nodes.Element, target: str) -> tuple[str, bool] | None:
    """The repository path (relative to its root, posix) and whether it is a folder, for a link that names a
    file or folder of the repository that is not a page of the site; None otherwise."""
    root, env = repo_root(app), app.env
    if "://" in target or target.startswith(("#", "mailto:")):
        return None
    path = target.split("#", 1)[0]
    if not path:
        return None
    bases = [Path(source).parent for source in (node.source, env.doc2path(env.docname)) if source]
    for base in bases:
        found = (base / path).resolve()
        if not found.exists() or not found.is_relative_to(root) or is_page(env, found):
            continue
        relpath = found.relative_to(root).as_posix()
        if relpath == "." or set(Path(relpath).parts) & SKIPPED:
            continue
        return relpath, found.is_dir()
    return None


def link_repo_files(app: Sphinx, doctree: nodes.document) -> None:
    """doctree-read: MyST's unresolved links and download links that name a repository path become links to
    its source view (the page-relative address is filled in at doctree-resolved)."""
    wanted = views(app.env).setdefault(app.env.docname, set())
    for node in list(doctree.findall(addnodes.pending_xref)) + list(doctree.findall(addnodes.download_reference)):
        if node.get("reftype") != "myst" or node.get("refdomain") not in (None, ""):
            continue
        found = link_target(app, node, node["reftarget"])
        if found is None:
            continue
        relpath, is_dir = found
        fragment = node["reftarget"].partition("#")[2]
        wanted.add(found)
        reference = nodes.reference("", "", internal=False, refuri="", classes=["repo-file"])
        reference["jaxmlp_view"] = view_page(relpath, is_dir) + (f"#{fragment}" if fragment else "")
        reference += node.children or [nodes.literal(relpath, relpath)]
        node.replace_self(reference)


def resolve_links(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    """doctree-resolved: source-view links get their address relative to the page; every image not already in a
    link becomes a link to its full-size file in _images/."""
    here = app.builder.get_target_uri(docname)
    for reference in doctree.findall(nodes.reference):
        if "jaxmlp_view" in reference:
            view, hash_, fragment = reference["jaxmlp_view"].partition("#")  # relative_uri drops a fragment
            reference["refuri"] = relative_uri(here, view) + hash_ + fragment
    for image in list(doctree.findall(nodes.image)):
        if isinstance(image.parent, nodes.reference):
            continue
        candidates = image.get("candidates", {})
        uris = [image["uri"], *candidates.values()] if "*" in candidates else [*candidates.values(), image["uri"]]
        stored = next((app.env.images[uri][1] for uri in uris if uri in app.env.images), None)
        if stored is None:  # a remote image: leave it alone
            continue
        reference = nodes.reference("", "", internal=True, classes=["full-size-image"])
        reference["refuri"] = relative_uri(here, f"_images/{stored}")
        reference["reftitle"] = "open the full-size image"
        image.replace_self(reference)
        reference.append(image)


def slug(heading: str) -> str:
    """GitHub's (and MyST's) anchor of a Markdown heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"\s", "-", re.sub(r"[^\w\s-]", "", heading.strip().lower()))


def markdown_view(text: str) -> str:
    """Markdown shown as its text, each heading line carrying its anchor."""
    lines = []
    for line in text.splitlines():
        heading = re.match(r"#{1,6}\s+(.*)", line)
        escaped = html.escape(line)
        lines.append(f'<span id="{slug(heading.group(1))}">{escaped}</span>' if heading else escaped)
    return '<pre style="white-space: pre-wrap">' + "\n".join(lines) + "</pre>"


def file_view(path: Path) -> str | None:
    """The highlighted text of a file, or None for a binary or very large one."""
    from pygments import highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import TextLexer, get_lexer_for_filename
    from pygments.util import ClassNotFound

    if path.stat().st_size > TEXT_LIMIT:
        return None
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return None
    if path.suffix == ".md":
        return markdown_view(text)
    try:
        lexer = get_lexer_for_filename(path.name, stripnl=False)
    except ClassNotFound:
        lexer = TextLexer(stripnl=False)
    return highlight(text, lexer, HtmlFormatter(noclasses=True, nobackground=True))


def page(app: Sphinx, here: str, title: str, body: str) -> str:
    home = relative_uri(here, app.builder.get_target_uri(app.config.root_doc))
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<style>body{font-family:sans-serif;margin:1.5em auto;max-width:60em;padding:0 1em}"
        "pre{overflow-x:auto;font-size:0.85em;line-height:1.4}li{font-family:monospace}</style></head>"
        f'<body><p><a href="{home}">{html.escape(app.config.project)}</a> / source view</p>'
        f"<h1><code>{html.escape(title)}</code></h1>\n{body}\n</body></html>\n"
    )


def folder_view(app: Sphinx, relpath: str, todo: list[tuple[str, bool]]) -> str:
    """A folder's entries, each linked to its page (a site page, a source view, a sub-folder's list)."""
    root, here = repo_root(app), view_page(relpath, True)
    items = []
    for entry in sorted((root / relpath).iterdir(), key=lambda p: (not p.is_dir(), p.name)):
        if entry.name.startswith(".") or entry.name in SKIPPED:
            continue
        child = entry.relative_to(root).as_posix()
        docname = page_of(app.env, entry)
        if docname is not None:
            target = app.builder.get_target_uri(docname)
        elif entry.is_dir() or file_view(entry) is not None:
            target = view_page(child, entry.is_dir())
            todo.append((child, entry.is_dir()))
        else:
            items.append(f"<li>{html.escape(entry.name)}</li>")
            continue
        name = entry.name + ("/" if entry.is_dir() else "")
        items.append(f'<li><a href="{relative_uri(here, target)}">{html.escape(name)}</a></li>')
    return "<ul>\n" + "\n".join(items) + "\n</ul>"


def write_repo_views(app: Sphinx, exception: Exception | None) -> None:
    """build-finished: the source view of every repository path a page links to, and of what those folders hold."""
    if exception is not None or app.builder.format != "html":
        return
    todo = sorted(set().union(*views(app.env).values()))
    done: set[tuple[str, bool]] = set()
    while todo:
        relpath, is_dir = todo.pop()
        if (relpath, is_dir) in done:
            continue
        done.add((relpath, is_dir))
        here = view_page(relpath, is_dir)
        path = repo_root(app) / relpath
        body = folder_view(app, relpath, todo) if is_dir else file_view(path)
        if body is None:  # a binary file linked directly: name it, as a folder's list would
            body = f"<p>{html.escape(path.name)} is not text ({path.stat().st_size} bytes).</p>"
        out = Path(app.outdir) / here
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(page(app, here, relpath + ("/" if is_dir else ""), body), encoding="utf-8")


def views(env) -> dict[str, set[tuple[str, bool]]]:
    """Per page, the repository paths it links to (kept in the environment, so incremental builds keep them)."""
    if not hasattr(env, "jaxmlp_repo_views"):
        env.jaxmlp_repo_views = {}
    return env.jaxmlp_repo_views


def purge(app: Sphinx, env, docname: str) -> None:
    views(env).pop(docname, None)


def merge(app: Sphinx, env, docnames, other) -> None:
    for docname in docnames:
        views(env)[docname] = views(other).get(docname, set())


def setup(app: Sphinx) -> dict:
    app.connect("env-purge-doc", purge)
    app.connect("env-merge-info", merge)
    app.connect("doctree-read", link_repo_files)
    app.connect("doctree-resolved", resolve_links)
    app.connect("build-finished", write_repo_views)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True, "env_version": 1}
