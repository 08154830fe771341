"""The README's examples, run in order as a new user runs them, with the answers it prints.

A directory of its own stands for a fresh checkout (its ``.venv`` and ``fixtures`` are the
project's). The README's first block starts the gateway there: ``./scripts/serve`` installs,
then runs ``.venv/bin/profilegate serve``, which is what runs here, on a free port instead of
8000 (every ``localhost:8000`` in a command is read with that port). Then every example runs
in reading order: shell blocks in bash, with what earlier blocks exported; GraphQL documents
over HTTP with the key their directive names (tests/examples.py). Each printed answer is
compared with the real one, ids, keys, times and dates the example does not name replaced on
both sides. Every mismatch is reported, with the answer the gateway gave.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from graphql import OperationDefinitionNode, parse

from tests.e2e.server import Server, environment, free_port
from tests.examples import ROOT, Example, examples, normalised, undirected

README = ROOT / "README.md"
DOCUMENTS = [README, *sorted((ROOT / "docs").glob("*.md")), ROOT / "bench" / "README.md"]
KEYS = {
    "admin": "ADMIN_KEY",
    "ingest": "INGEST_KEY",
    "storefront": "STOREFRONT_KEY",
    "partner": "PARTNER_KEY",
}
OPAQUE_FIELDS = frozenset({"cursor", "nextCursor", "after", "secret", "proofSecret", "token"})
COMMAND_TIMEOUT_SECONDS = 180.0


@dataclass
class Walk:
    """A fresh checkout, its gateway once started, and what the shell blocks exported."""

    home: Path
    port: int
    exported: dict[str, str] = field(default_factory=dict)
    server: Server | None = None
    answers: list[tuple[Example, str]] = field(default_factory=list)

    def shell(self, example: Example) -> str:
        """Run a shell example; what it printed, stdout then stderr, as a terminal shows it."""
        script = example.source.replace("localhost:8000", f"127.0.0.1:{self.port}")
        saved = self.home / ".exported"
        ran = subprocess.run(
            ["bash", "-c", f"set -eo pipefail\n{script}\nenv -0 > {saved}"],
            cwd=self.home,
            env={**environment(), **self.exported},
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_SECONDS,
            check=False,
        )
        status = example.directive.get("status", 0)
        assert ran.returncode == status, f"{example.where}: exit {ran.returncode}\n{ran.stdout}\n{ran.stderr}"
        if status == 0:
            after = dict(item.split("=", 1) for item in saved.read_text().split("\0") if "=" in item)
            self.exported.update(
                {name: value for name, value in after.items() if os.environ.get(name) != value}
            )
        return ran.stdout + ran.stderr

    def serve(self, source: str) -> None:
        (line,) = [line for line in source.splitlines() if "scripts/serve" in line]
        assignments = dict(re.findall(r"(\w+)=(\S+)", line.split("./scripts/serve")[0]))
        self.server = Server(
            self.home / "data", port=self.port, workers=None, logs=self.home / "logs", env=assignments
        )
        self.server.wait_ready()

    def graphql(self, example: Example) -> str:
        directive = example.directive
        headers = {"authorization": f"Bearer {self.exported[KEYS[directive['key']]]}"}
        if "proof" in directive:
            headers["shopper-proof"] = self.proof(directive["proof"])
        variables = dict(directive.get("variables", {}))
        for name, path in directive.get("variablesFrom", {}).items():
            variables[name] = json.loads((self.home / path).read_text())
        operations = [
            node for node in parse(example.source).definitions if isinstance(node, OperationDefinitionNode)
        ]
        assert len(operations) == 1, f"{example.where}: one operation per example, so its answer is one"
        response = httpx.post(
            f"http://127.0.0.1:{self.port}/graphql",
            json={"query": example.source, "variables": variables},
            headers=headers,
            timeout=30.0,
        )
        return json.dumps(response.json(), indent=2, ensure_ascii=False)

    def proof(self, subject: str) -> str:
        """A shopper proof for ``email:<address>``, minted by the README's own Python function
        with the secret and audience the first steps exported."""
        kind, _, address = subject.partition(":")
        assert kind == "email", "the README's proof function takes an e-mail address"
        (function,) = [item.source for item in examples(README) if "def shopper_proof" in item.source]
        ran = subprocess.run(
            [sys.executable, "-c", f"{function}\nprint(shopper_proof({address!r}))"],
            env={**environment(), **self.exported},
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_SECONDS,
            check=True,
        )
        return ran.stdout.strip()


def canonical(answer: str, example: Example) -> str:
    """The answer with what differs from run to run replaced, JSON in one layout; lines in
    sorted order where the example says their order is not kept."""
    try:
        value = json.loads(answer)
    except json.JSONDecodeError:
        lines = [normalised(line.rstrip(), kept=example.source) for line in answer.strip().splitlines()]
        if example.directive.get("unordered"):
            lines.sort()
        return "\n".join(lines)
    return normalised(json.dumps(_masked(value), indent=2, sort_keys=True), kept=example.source)


def _masked(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            key: "<opaque>" if key in OPAQUE_FIELDS and item else _masked(item) for key, item in value.items()
        }
    if isinstance(value, list):
        return [_masked(item) for item in value]
    return value


def run(walk: Walk, example: Example) -> str | None:
    if not example.runs:
        return None
    if example.directive.get("serve"):
        walk.serve(example.source)
        return None
    if example.language == "sh":
        return walk.shell(example)
    if example.language == "graphql":
        return walk.graphql(example)
    raise AssertionError(f"{example.where}: no way to run a {example.language} example")


@pytest.fixture(scope="module")
def walk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Walk]:
    home = tmp_path_factory.mktemp("checkout")
    (home / ".venv").symlink_to(ROOT / ".venv")
    shutil.copytree(ROOT / "fixtures", home / "fixtures")
    walked = Walk(home=home, port=free_port())
    try:
        for document in DOCUMENTS:
            for example in examples(document):
                answer = run(walked, example)
                if answer is not None:
                    walked.answers.append((example, answer))
        yield walked
    finally:
        if walked.server is not None:
            walked.server.kill()


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_example_says_how_it_is_run_or_why_not(document: Path) -> None:
    assert undirected(document) == []
    for example in examples(document):
        if not example.runs:
            assert example.directive.get("why"), f"{example.where}: an example not run says why"


def test_every_example_answers_as_printed(walk: Walk) -> None:
    mismatches = [
        f"{example.where}: printed\n{example.answer}\nbut the gateway answered\n{answer}"
        for example, answer in walk.answers
        if example.answer is not None and canonical(answer, example) != canonical(example.answer, example)
    ]
    assert not mismatches, "\n\n".join(mismatches)


def test_an_example_edited_to_answer_differently_fails(walk: Walk) -> None:
    printed = [(example, answer) for example, answer in walk.answers if example.answer is not None]
    assert len(printed) >= 10, "most examples print their answer"
    for example, answer in printed:
        edited = _edited(answer)
        assert canonical(edited, example) != canonical(answer, example), f"{example.where}: {edited}"


def _edited(answer: str) -> str:
    """``answer`` with its first figure, flag or word that is the same on every run changed."""
    try:
        value = json.loads(answer)
    except json.JSONDecodeError:
        return answer + "\none more line"
    changed, done = _changed(value)
    return json.dumps(changed if done else {"edited": value})


def _changed(value: Any) -> tuple[Any, bool]:
    if isinstance(value, bool):
        return not value, True
    if isinstance(value, int | float):
        return value + 1, True
    if isinstance(value, str) and normalised(value) == value:
        return value + "!", True
    if isinstance(value, dict):
        for key, item in value.items():
            if key in OPAQUE_FIELDS:
                continue
            changed, done = _changed(item)
            if done:
                return {**value, key: changed}, True
    if isinstance(value, list):
        for index, item in enumerate(value):
            changed, done = _changed(item)
            if done:
                return [*value[:index], changed, *value[index + 1 :]], True
    return value, False
