"""Serve the browser front end (``static/``) from the gateway, with strict security headers.

The pages are plain ES modules that talk to the public REST API and the
WebSocket push of the same origin, nothing else: the Content-Security-Policy
allows scripts, styles, images and connections from this origin only (images
also as ``data:``), no inline code and no framing. The files ship inside the
package and are read once, at start; nothing is built or fetched at run time.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources

from aiohttp import web

from ec_recommend.platform import errors

CONTENT_TYPES: Mapping[str, str] = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",  # CSP 3: 'self' covers ws:/wss: to this host
        "manifest-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS: Mapping[str, str] = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
    # Small files that change with the package: revalidate rather than go stale.
    "Cache-Control": "no-cache",
}
# The pages: each is the same document; the script picks the view from the path.
PAGES = ("/", "/seller", "/console")


def load_files() -> dict[str, tuple[bytes, str]]:
    """Every file under static/ by its name, with its content type."""
    root = resources.files("ec_recommend.edge.web").joinpath("static")
    files: dict[str, tuple[bytes, str]] = {}
    for entry in root.iterdir():
        suffix = entry.name[entry.name.rfind(".") :]
        if entry.is_file() and suffix in CONTENT_TYPES:
            files[entry.name] = (entry.read_bytes(), CONTENT_TYPES[suffix])
    return files


def add_web_routes(app: web.Application) -> None:
    files = load_files()
    index, html = files["index.html"]

    def respond(body: bytes, content_type: str) -> web.Response:
        response = web.Response(body=body, headers=SECURITY_HEADERS)
        response.content_type, _, charset = content_type.partition("; charset=")
        if charset:
            response.charset = charset
        return response

    async def page(request: web.Request) -> web.Response:
        return respond(index, html)

    async def static(request: web.Request) -> web.Response:
        found = files.get(request.match_info["name"])
        if found is None:
            raise errors.NotFound("no such file")
        return respond(*found)

    for path in PAGES:
        app.router.add_get(path, page, allow_head=False)
    app.router.add_get("/static/{name}", static, allow_head=False)
