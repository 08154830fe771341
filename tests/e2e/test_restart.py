"""A profile written through one ``serve`` survives a graceful stop and a restart with two workers."""

from pathlib import Path
from typing import Any

from tests.e2e.server import (
    ADDRESS_FILE,
    Server,
    StartServer,
    StoreAddress,
    accepts_connections,
    process_exists,
)

DEFINE = """
mutation {
  defineExtension(input: {name: "vip", description: "Very important person"}) {
    __typename
    ... on ExtensionDefined { outcome }
  }
}
"""
UPSERT = """
mutation Upsert($input: UpsertProfileInput!) {
  upsertProfile(input: $input) { __typename ... on ProfileUpserted { created profile { id } } }
}
"""
SET_VIP = """
mutation SetVip($ref: ProfileRef!) {
  setExtension(ref: $ref, name: "vip", reason: "top customer 2026") {
    __typename
    ... on ExtensionChanged { changed }
  }
}
"""
READ = """
query Read($ref: ProfileRef!) {
  profile(ref: $ref) {
    id
    identities { type value }
    traits
    consents { purpose granted at source }
    extensions { name at by reason expiresAt }
  }
}
"""
REF = {"identity": {"type": "EMAIL", "value": "ann.schmidt@example.com"}}
TRAITS = {"firstName": "Ann", "address": {"city": "Berlin", "zip": "10115"}, "orders": 7}


def read_profile(server: Server) -> dict[str, Any]:
    profile = server.graphql(READ, {"ref": REF})["profile"]
    assert isinstance(profile, dict)
    return profile


def write_profile(server: Server) -> None:
    assert server.graphql(DEFINE)["defineExtension"] == {
        "__typename": "ExtensionDefined",
        "outcome": "CREATED",
    }
    upserted = server.graphql(
        UPSERT,
        {
            "input": {
                "ref": REF,
                "identities": [{"type": "EMAIL", "value": "Ann.Schmidt@Example.com"}],
                "traits": TRAITS,
                "consents": [{"purpose": "email_marketing", "granted": True, "source": "checkout"}],
            }
        },
    )["upsertProfile"]
    assert upserted["__typename"] == "ProfileUpserted", upserted
    assert upserted["created"] is True, upserted
    assert server.graphql(SET_VIP, {"ref": REF})["setExtension"] == {
        "__typename": "ExtensionChanged",
        "changed": True,
    }


def stop_and_check_store_is_gone(server: Server, data_dir: Path) -> None:
    store = StoreAddress.read(data_dir)
    assert process_exists(store.pid)
    assert accepts_connections(store.host, store.port)

    assert server.stop() == 0, server.logs()

    assert not (data_dir / ADDRESS_FILE).exists(), "the store's address outlived it"
    assert not process_exists(store.pid), f"the embedded store (pid {store.pid}) is still running"
    assert not accepts_connections(store.host, store.port)


def test_a_profile_survives_a_restart_with_more_workers(start_server: StartServer, data_dir: Path) -> None:
    first = start_server(data_dir)
    first.wait_ready()
    write_profile(first)
    before = read_profile(first)
    assert before["identities"] == [{"type": "EMAIL", "value": "ann.schmidt@example.com"}]
    assert before["traits"] == TRAITS
    assert [(c["purpose"], c["granted"], c["source"]) for c in before["consents"]] == [
        ("email_marketing", True, "checkout")
    ]
    assert [(e["name"], e["by"], e["reason"], e["expiresAt"]) for e in before["extensions"]] == [
        ("vip", "admin-key", "top customer 2026", None)
    ]

    stop_and_check_store_is_gone(first, data_dir)
    assert (data_dir / "profilegate.sqlite").is_file()

    second = start_server(data_dir, workers=2)
    second.wait_ready()
    # Several reads, so that both workers are likely to answer one.
    for _ in range(6):
        assert read_profile(second) == before

    stop_and_check_store_is_gone(second, data_dir)
