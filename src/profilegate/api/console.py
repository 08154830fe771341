"""The admin console at ``/admin`` and GraphiQL's page, both served with every asset from the
gateway itself (no other origin) under a strict Content-Security-Policy.

The console is plain ES modules and CSS in ``static/admin``; it talks to ``/graphql`` with the
admin's key like any other client, so every permission and audit rule applies to it. GraphiQL
and React are copied from the npm packages web/package-lock.json pins (scripts/vendor-web).
"""

import html
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Message, Receive, Scope, Send

STATIC = Path(__file__).parent / "static"
CONSOLE_PATH = "/admin"
ASSETS_PATH = "/admin/assets"
GRAPHIQL_ASSETS_PATH = "/graphiql/assets"
# Nothing from another origin, no inline script, no eval, no plugins, no framing.
CONSOLE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
# GraphiQL's stylesheet carries its fonts and icons as data: URLs, and its editors set styles
# inline; its scripts still come from this gateway only.
GRAPHIQL_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; object-src 'none'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
HARDENING = {"x-content-type-options": "nosniff", "referrer-policy": "no-referrer"}
# The shell says whether this gateway serves GraphiQL, so the console links to it only then;
# the file itself says "off", and only a gateway serving GraphiQL turns it on.
GRAPHIQL_OFF = 'data-graphiql="off"'
GRAPHIQL_ON = 'data-graphiql="on"'
# The shell names the shop's time zone: the console shows times and days in it.
SHOP_ZONE_UTC = 'data-shop-zone="UTC"'
FAVICON = STATIC / "favicon.ico"


class PolicedFiles(StaticFiles):
    """Static files answered with the hardening headers."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                hardening = [(k.encode(), v.encode()) for k, v in HARDENING.items()]
                message["headers"] = [*message.get("headers", []), *hardening]
            await send(message)

        await super().__call__(scope, receive, with_headers)


def console_shell(graphiql: bool, shop_zone: str = "UTC") -> str:
    """The console's page, telling its script whether GraphiQL is served next to it and the
    shop's time zone."""
    page = (STATIC / "admin" / "index.html").read_text()
    for marker in (GRAPHIQL_OFF, SHOP_ZONE_UTC):
        if marker not in page:
            raise RuntimeError(f"the console's index.html lost its {marker} attribute")
    page = page.replace(SHOP_ZONE_UTC, f'data-shop-zone="{html.escape(shop_zone)}"')
    return page.replace(GRAPHIQL_OFF, GRAPHIQL_ON) if graphiql else page


def console_page(shell: str) -> Route:
    """The console's shell; it holds no data, every figure comes from ``/graphql`` with a key."""
    headers = {"content-security-policy": CONSOLE_POLICY, "cache-control": "no-cache", **HARDENING}

    async def page(request: Request) -> Response:
        return HTMLResponse(shell, headers=headers)

    return Route(CONSOLE_PATH, page, methods=["GET"])


def graphiql_page() -> HTMLResponse:
    headers = {"content-security-policy": GRAPHIQL_POLICY, "cache-control": "no-cache", **HARDENING}
    html = (STATIC / "graphiql" / "index.html").read_text()
    return HTMLResponse(html, headers=headers)


def console_routes(graphiql: bool, shop_zone: str = "UTC") -> list[Route | Mount]:
    """The console's page and assets; ``graphiql``: whether this gateway serves GraphiQL."""
    return [
        console_page(console_shell(graphiql, shop_zone)),
        Mount(ASSETS_PATH, PolicedFiles(directory=STATIC / "admin")),
    ]


def graphiql_routes() -> list[Route | Mount]:
    return [Mount(GRAPHIQL_ASSETS_PATH, PolicedFiles(directory=STATIC / "graphiql"))]


def favicon_route() -> Route:
    """The icon a browser asks every page of the gateway for (a 404 each time otherwise)."""
    headers = {"cache-control": "public, max-age=86400", **HARDENING}

    async def favicon(request: Request) -> Response:
        return FileResponse(FAVICON, media_type="image/x-icon", headers=headers)

    return Route("/favicon.ico", favicon, methods=["GET"])
