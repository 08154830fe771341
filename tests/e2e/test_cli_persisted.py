"""``profilegate keys create --persisted-only``: a key that runs registered operations only."""

import hashlib
from pathlib import Path

import httpx

from tests.e2e.server import StartServer, run_cli
from tests.e2e.test_cli import TOKEN

VIEWER = "{ viewer { name } }"
REGISTER = "mutation($d: String!) { registerPersistedOperation(document: $d) { __typename } }"


def test_a_persisted_only_key_from_the_command_line_runs_registered_operations_only(
    start_server: StartServer, data_dir: Path
) -> None:
    server = start_server(data_dir)
    server.wait_ready()
    server.graphql(REGISTER, {"d": VIEWER})
    arguments = ["keys", "create", "--role", "storefront", "--name", "shop-web", "--persisted-only"]
    created = run_cli(*arguments, "--data-dir", str(data_dir), cwd=data_dir.parent)
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert TOKEN.match(key)
    headers = {"authorization": f"Bearer {key}"}

    ad_hoc = httpx.post(f"{server.url}/graphql", json={"query": VIEWER}, headers=headers)
    persisted = {"persistedQuery": {"version": 1, "sha256Hash": hashlib.sha256(VIEWER.encode()).hexdigest()}}
    by_hash = httpx.post(f"{server.url}/graphql", json={"extensions": persisted}, headers=headers)

    assert ad_hoc.status_code == 403
    assert ad_hoc.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_REQUIRED"
    assert by_hash.json() == {"data": {"viewer": {"name": "shop-web"}}}
