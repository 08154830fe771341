"""The console's and GraphiQL's pages over HTTP: served by the gateway with a strict CSP, no
asset from elsewhere, GraphiQL off in production, the console for admin keys or switched off."""

import hashlib
import json
import re
from pathlib import Path

from profilegate.api.console import STATIC
from profilegate.app import create_app
from profilegate.settings import Settings
from tests.gateway import ADMIN_KEY, running

ROOT = Path(__file__).resolve().parents[2]
HTML = {"accept": "text/html"}
# Any URL with a scheme and a host: an asset from somewhere else.
ELSEWHERE = re.compile(r"""(src|href)\s*=\s*["'](https?:)?//""", re.IGNORECASE)


async def test_the_console_shell_is_served_with_a_strict_policy(settings: Settings) -> None:
    async with running(create_app(settings)) as http:
        page = await http.get("/admin")
        assert page.status_code == 200
        policy = page.headers["content-security-policy"]
        assert "default-src 'self'" in policy
        assert "script-src 'self';" in policy
        assert "unsafe-inline" not in policy
        assert "unsafe-eval" not in policy
        assert page.headers["x-content-type-options"] == "nosniff"
        assert "<script>" not in page.text
        assert not ELSEWHERE.search(page.text)
        module = await http.get("/admin/assets/app.js")
        assert module.status_code == 200
        assert module.headers["content-type"].startswith("text/javascript")
        assert module.headers["x-content-type-options"] == "nosniff"


# The SVG namespace is a name the DOM needs to make SVG elements, never fetched.
SVG_NAMESPACE = "http://www.w3.org/2000/svg"


def test_no_console_file_names_another_origin() -> None:
    for path in (STATIC / "admin").iterdir():
        text = path.read_text().replace(f'"{SVG_NAMESPACE}"', "")
        assert not re.search(r"https?://", text), f"{path.name} names another origin"


def test_no_console_module_uses_the_browsers_own_dialogs() -> None:
    for path in (STATIC / "admin").glob("*.js"):
        called = re.search(r"(?<![\w.])(window\.)?(prompt|confirm|alert)\s*\(", path.read_text())
        assert called is None, f"{path.name} calls {called.group(0) if called else ''}"


async def test_graphiql_is_served_from_the_gateway_in_development(settings: Settings) -> None:
    async with running(create_app(settings)) as http:
        page = await http.get("/graphql", headers=HTML)
        assert page.status_code == 200
        assert "/graphiql/assets/graphiql.min.js" in page.text
        assert not ELSEWHERE.search(page.text)
        assert "script-src 'self';" in page.headers["content-security-policy"]
        for asset in re.findall(r'(?:src|href)="(/graphiql/assets/[^"]+)"', page.text):
            assert (await http.get(asset)).status_code == 200, asset


async def test_production_keeps_graphiql_off_and_the_console_for_admin_keys(settings: Settings) -> None:
    production = settings.model_copy(update={"env": "production"})
    async with running(create_app(production)) as http:
        assert (
            await http.get("/graphql", headers={**HTML, "authorization": f"Bearer {ADMIN_KEY}"})
        ).status_code == 404
        assert (await http.get("/graphiql/assets/graphiql.min.js")).status_code == 404
        assert (await http.get("/admin")).status_code == 200  # the shell holds no data
        anonymous = await http.post("/graphql", json={"query": "{ segments { key } }"})
        assert anonymous.status_code == 401
        create = 'mutation { createApiKey(name: "web", role: STOREFRONT) { ... on ApiKeyCreated { token } } }'
        created = await http.post(
            "/graphql", json={"query": create}, headers={"authorization": f"Bearer {ADMIN_KEY}"}
        )
        token = created.json()["data"]["createApiKey"]["token"]
        refused = await http.post(
            "/graphql", json={"query": "{ segments { key } }"}, headers={"authorization": f"Bearer {token}"}
        )
        assert refused.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        allowed = await http.post(
            "/graphql",
            json={"query": "{ segments { key } }"},
            headers={"authorization": f"Bearer {ADMIN_KEY}"},
        )
        assert allowed.json() == {"data": {"segments": []}}


async def test_the_console_can_be_switched_off(settings: Settings) -> None:
    switched_off = settings.model_copy(update={"env": "production", "admin_console": False})
    async with running(create_app(switched_off)) as http:
        assert (await http.get("/admin")).status_code == 404
        assert (await http.get("/admin/assets/app.js")).status_code == 404


def test_the_vendored_graphiql_is_the_pinned_packages() -> None:
    """scripts/vendor-web copied these files from the versions web/ pins, unchanged since."""
    manifest = json.loads((STATIC / "graphiql" / "VENDORED.json").read_text())
    pins = json.loads((ROOT / "web" / "package.json").read_text())["dependencies"]
    locked = json.loads((ROOT / "web" / "package-lock.json").read_text())["packages"]
    assert {entry["package"] for entry in manifest.values()} == set(pins)
    for name, entry in manifest.items():
        package = entry["package"]
        assert entry["version"] == pins[package] == locked[f"node_modules/{package}"]["version"], name
        digest = hashlib.sha256((STATIC / "graphiql" / name).read_bytes()).hexdigest()
        assert digest == entry["sha256"], f"{name} differs from what scripts/vendor-web copied"


async def test_the_shell_tells_the_console_whether_graphiql_is_served(settings: Settings) -> None:
    async with running(create_app(settings)) as http:
        development = (await http.get("/admin")).text
    async with running(create_app(settings.model_copy(update={"env": "production"}))) as http:
        production = (await http.get("/admin")).text
    assert '<html lang="en" data-graphiql="on" data-shop-zone="UTC">' in development
    assert '<html lang="en" data-graphiql="off" data-shop-zone="UTC">' in production
    assert 'id="graphiql-link" hidden' in production  # hidden even before any script runs


async def test_the_shell_names_the_shops_time_zone(settings: Settings) -> None:
    """The console shows days and times in the shop's zone, which only the gateway knows."""
    berlin = settings.model_copy(update={"shop_time_zone": "Europe/Berlin"})
    async with running(create_app(berlin)) as http:
        assert 'data-shop-zone="Europe/Berlin"' in (await http.get("/admin")).text


async def test_the_gateway_serves_its_icon_in_every_setting(settings: Settings) -> None:
    """Browsers ask for /favicon.ico on every page; a 404 is a console error on every load."""
    off = settings.model_copy(update={"env": "production", "admin_console": False})
    for each in (settings, off):
        async with running(create_app(each)) as http:
            icon = await http.get("/favicon.ico")
        assert icon.status_code == 200
        assert icon.headers["content-type"] == "image/x-icon"
        assert icon.content[:4] == b"\x00\x00\x01\x00"  # an ICO file
    assert '<link rel="icon" href="/favicon.ico">' in (STATIC / "admin" / "index.html").read_text()
    assert '<link rel="icon" href="/favicon.ico">' in (STATIC / "graphiql" / "index.html").read_text()
