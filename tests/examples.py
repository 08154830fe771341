"""The examples of the README and the docs, read from their Markdown as a reader sees them.

An example is a fenced block of GraphQL, shell, Python or JavaScript. How it is run is said
in an HTML comment on the line before its fence, invisible on a rendered page:

    <!-- example {"key": "storefront", "proof": "email:anna.schmidt@example.com"} -->

``key`` names the API key a GraphQL document is sent with (admin, ingest, storefront or
partner), ``proof`` the identity a shopper proof is minted for, ``variables`` the
document's variables and ``variablesFrom`` variables read from files (``{"policy":
"fixtures/tier_policy.json"}``). An example that is not run here says why: ``{"run": false,
"why": "..."}``. The answer an example prints is the fenced ``json`` or ``text`` block right
after it (only blank lines between).
"""

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).parents[1]
LANGUAGES = frozenset({"graphql", "sh", "python", "javascript"})
ANSWER_LANGUAGES = frozenset({"json", "text"})
FENCE = re.compile(r"^```(\w*)\s*$")
DIRECTIVE = re.compile(r"^<!-- example (\{.*\}) -->$")


@dataclass(frozen=True)
class Example:
    where: str  # file:line of the fence
    language: str
    source: str
    directive: dict[str, Any] = field(default_factory=dict)
    answer: str | None = None

    @property
    def runs(self) -> bool:
        return self.directive.get("run", True) is not False


@dataclass(frozen=True)
class _Block:
    line: int
    language: str
    source: str
    directive: dict[str, Any] | None
    follows_previous: bool  # only blank lines since the previous block's closing fence


def _blocks(path: Path) -> list[_Block]:
    lines = path.read_text().splitlines()
    found: list[_Block] = []
    index = 0
    last_close = -2
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        start = index
        end = start + 1
        while end < len(lines) and lines[end] != "```":
            end += 1
        previous = lines[start - 1] if start > 0 else ""
        matched = DIRECTIVE.match(previous)
        directive = None if matched is None else json.loads(matched.group(1))
        between = lines[last_close + 1 : start] if last_close >= 0 else ["not blank"]
        found.append(
            _Block(
                line=start + 1,
                language=opening.group(1),
                source="\n".join(lines[start + 1 : end]) + "\n",
                directive=directive,
                follows_previous=all(not line.strip() for line in between),
            )
        )
        last_close = end
        index = end + 1
    return found


def fenced(path: Path, language: str) -> list[tuple[str, str]]:
    """Every fenced block of ``language`` in ``path``: where it starts (file:line) and its text."""
    return [
        (f"{path.relative_to(ROOT)}:{block.line}", block.source)
        for block in _blocks(path)
        if block.language == language
    ]


def examples(path: Path) -> list[Example]:
    """Every example of ``path`` in reading order, each with its directive and printed answer."""
    blocks = _blocks(path)
    found = []
    for position, block in enumerate(blocks):
        if block.language not in LANGUAGES:
            continue
        following = blocks[position + 1] if position + 1 < len(blocks) else None
        answer = None
        if following and following.follows_previous and following.language in ANSWER_LANGUAGES:
            answer = following.source
        found.append(
            Example(
                where=f"{path.relative_to(ROOT)}:{block.line}",
                language=block.language,
                source=block.source,
                directive=block.directive or {},
                answer=answer,
            )
        )
    return found


def undirected(path: Path) -> list[str]:
    """Examples of ``path`` with no directive: each must say how it is run, or why not."""
    return [
        f"{path.relative_to(ROOT)}:{block.line}"
        for block in _blocks(path)
        if block.language in LANGUAGES and block.directive is None
    ]


ISO_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?")
ISO_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")
OPAQUE = [
    (re.compile(r"\b\d+ rows/s\b"), "<rate> rows/s"),
    (re.compile(r"(?<=secret     )\S+"), "<secret>"),
    (re.compile(r"\bpgk_[A-Za-z0-9_-]+"), "<key>"),
    (re.compile(r"\b[0-9a-f]{64}\b"), "<sha256>"),
    (re.compile(r"\b[0-9a-f]{32}\b"), "<id>"),
    (re.compile(r"\b[0-9a-f]{24}\b"), "<id>"),
    (re.compile(r"\b[0-9a-f]{16}\b"), "<key id>"),
]


def normalised(text: str, *, kept: str = "") -> str:
    """``text`` with what differs from run to run replaced: ids, keys, hashes, times, and the
    dates that ``kept`` (the example itself) does not name."""
    text = ISO_DATETIME.sub(lambda match: match.group(0) if match.group(0) in kept else "<time>", text)
    text = ISO_DATE.sub(lambda match: match.group(0) if match.group(0) in kept else "<date>", text)
    for pattern, placeholder in OPAQUE:
        text = pattern.sub(placeholder, text)
    return text
