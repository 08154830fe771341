"""The README's shopper-proof examples, run as printed: the Python and the Node function mint a
proof that the gateway (on the real clock) accepts for the README's checkout query."""

import os
import re
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator

import pytest

from profilegate.app import create_app
from profilegate.settings import Settings
from tests.gateway import GatewayClient, StorefrontKey, running
from tests.test_docs import blocks

SHOPPER = "anna.schmidt@example.com"
RUNNERS = {
    "python": lambda source: [sys.executable, "-c", f"{source}\nprint(shopper_proof({SHOPPER!r}))"],
    "javascript": lambda source: ["node", "-e", f"{source}\nconsole.log(shopperProof({SHOPPER!r}));"],
}


def readme_block(language: str, marker: str) -> str:
    (found,) = [
        source for where, source in blocks(language) if where.startswith("README") and marker in source
    ]
    return found


CHECKOUT = readme_block("graphql", "query Checkout {\n  profile(")


@pytest.fixture
async def real_clock_gateway(settings: Settings) -> AsyncIterator[GatewayClient]:
    """Proofs minted with the machine's time need a gateway on the machine's time."""
    async with running(create_app(settings)) as http:
        yield GatewayClient(http)


def minted(language: str, key: StorefrontKey) -> str:
    source = readme_block(language, "shopper_proof" if language == "python" else "shopperProof")
    assert key.secret is not None
    env = {**os.environ, "PROFILEGATE_PROOF_AUDIENCE": key.key_id, "PROFILEGATE_PROOF_SECRET": key.secret}
    ran = subprocess.run(
        RUNNERS[language](source), env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert ran.returncode == 0, ran.stderr
    return ran.stdout.strip()


@pytest.mark.parametrize("language", ["python", "javascript"])
async def test_a_proof_minted_by_the_readme_example_opens_the_checkout(
    real_clock_gateway: GatewayClient, language: str
) -> None:
    assert shutil.which("node"), "the JavaScript example runs on Node.js"
    gateway = real_clock_gateway
    defined = await gateway.execute(
        'mutation { defineExtension(input: {name: "no-reward", description: "No rewards",'
        " shownToShopper: true}) { __typename } }"
    )
    assert defined.data["defineExtension"]["__typename"] == "ExtensionDefined"
    created = await gateway.execute(
        'mutation { upsertProfile(input: {ref: {identity: {type: EMAIL, value: "anna.schmidt@example.com"}}})'
        " { ... on ProfileUpserted { profile { id } } } }"
    )
    anna = created.data["upsertProfile"]["profile"]["id"]
    key = await gateway.create_storefront_key()
    proof = minted(language, key)
    assert re.fullmatch(r"[\w-]+\.[\w-]+\.[\w-]+", proof), proof

    with_proof = await gateway.execute(CHECKOUT, key=key.token, headers={"shopper-proof": proof})
    without = await gateway.execute(CHECKOUT, key=key.token)

    assert with_proof.data["profile"]["id"] == anna
    assert without.body["errors"][0]["extensions"]["missing"] == "no_proof"
