"""How far ``in_segment`` reaches: chains of segments, checked whenever a rule is saved.

A segment's rule may use other segments, which may use others: a chain such as
``vip -> big-spenders -> recent``. Both interpreters of a rule (the predicate and the compiler
to a MongoDB query) replace each ``in_segment`` by the rule it names, so a chain must end and
stay shallow:

- no cycle: a segment never reaches itself;
- at most ``MAX_SEGMENT_CHAIN`` segments in one chain;
- with every ``in_segment`` replaced by its rule, conditions nest at most ``MAX_RULE_DEPTH``
  levels, as one rule's own may.

The compiled query nests about two BSON levels per condition level plus up to 27 for the
deepest condition, and MongoDB refuses documents nested deeper than 100 levels
(https://www.mongodb.com/docs/manual/reference/limits/#mongodb-limit-Nested-Depth-for-BSON-Documents);
these limits keep the deepest rule allowed well under it (a test measures it).

Saving a segment changes the chains of every segment that uses it, so those are checked too.
"""

from collections.abc import Mapping

from profilegate.domain.errors import InvalidInput
from profilegate.domain.segment_rules import (
    MAX_RULE_DEPTH,
    And,
    InSegment,
    Not,
    Or,
    Rule,
    referenced_segments,
)

MAX_SEGMENT_CHAIN = 8


class SegmentChainRefused(InvalidInput):
    """A segment chain loops or reaches too deep; ``chain`` lists its segments in order."""

    def __init__(self, chain: tuple[str, ...], problem: str) -> None:
        super().__init__("input.rule", f"{problem}: {' -> '.join(chain)}")
        self.chain = chain


def check_chains(key: str, rule: Rule, segments: Mapping[str, Rule]) -> None:
    """Refuse saving ``rule`` as segment ``key`` (beside the stored ``segments``) if it makes a
    cycle, a chain of more than MAX_SEGMENT_CHAIN segments, or nesting past MAX_RULE_DEPTH,
    for itself or for any segment that uses it."""
    catalogue = {**segments, key: rule}
    walk = _Walk(catalogue)
    for start in [key, *sorted(_users(key, catalogue))]:
        chain = walk.longest(start, ())
        if len(chain) > MAX_SEGMENT_CHAIN:
            raise SegmentChainRefused(
                chain,
                f"a chain of in_segment holds at most {MAX_SEGMENT_CHAIN} segments, this one {len(chain)}",
            )
        depth, deepest = walk.depth(start, ())
        if depth > MAX_RULE_DEPTH:
            raise SegmentChainRefused(
                deepest,
                f"with in_segment replaced by its rule, conditions nest {depth} levels, "
                f"at most {MAX_RULE_DEPTH}",
            )


def _users(key: str, catalogue: Mapping[str, Rule]) -> set[str]:
    """Every segment whose chains pass through ``key``."""
    found: set[str] = set()
    pending = [key]
    while pending:
        target = pending.pop()
        for user, rule in catalogue.items():
            if user not in found and user != key and target in referenced_segments(rule):
                found.add(user)
                pending.append(user)
    return found


class _Walk:
    """Longest chains and deepest nesting from each segment, remembered across starts."""

    def __init__(self, catalogue: Mapping[str, Rule]) -> None:
        self.catalogue = catalogue
        self._chains: dict[str, tuple[str, ...]] = {}
        self._depths: dict[str, tuple[int, tuple[str, ...]]] = {}

    def _enter(self, key: str, path: tuple[str, ...]) -> tuple[str, ...]:
        here = (*path, key)
        if key in path:
            raise SegmentChainRefused(here[path.index(key) :], "in_segment makes a cycle")
        return here

    def longest(self, key: str, path: tuple[str, ...]) -> tuple[str, ...]:
        """The longest chain of segments from ``key`` on, ``key`` first."""
        if key not in self._chains:
            here = self._enter(key, path)
            rule = self.catalogue.get(key)
            used = sorted(referenced_segments(rule)) if rule is not None else []
            below = max((self.longest(u, here) for u in used), key=len, default=())
            self._chains[key] = (key, *below)
        return self._chains[key]

    def depth(self, key: str, path: tuple[str, ...]) -> tuple[int, tuple[str, ...]]:
        """How deep the segment's conditions nest with in_segment expanded, and the chain that
        reaches that depth."""
        if key not in self._depths:
            here = self._enter(key, path)
            rule = self.catalogue.get(key)
            levels, chain = self._nesting(rule, here) if rule is not None else (0, ())
            self._depths[key] = (levels, (key, *chain))
        return self._depths[key]

    def _nesting(self, rule: Rule, path: tuple[str, ...]) -> tuple[int, tuple[str, ...]]:
        match rule:
            case InSegment(key=key):
                return self.depth(key, path)
            case Not(clause=clause):
                levels, chain = self._nesting(clause, path)
                return levels + 1, chain
            case And(clauses=clauses) | Or(clauses=clauses):
                levels, chain = max((self._nesting(c, path) for c in clauses), key=lambda found: found[0])
                return levels + 1, chain
            case _:
                return 1, ()
