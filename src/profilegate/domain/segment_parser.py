"""Segment rule text: parsed into the validated syntax tree of ``segment_rules``, and written back.

``parse_rule`` reads the language with a lark LALR grammar and then checks every clause against
a :class:`RuleContext` (metric names and types, known extensions, consent purposes and
segments, window lengths, cycles through ``in_segment``, the size limits). Anything wrong is a
:class:`RuleError` pointing at the line and column of the offending token or clause, so a bad
rule fails when it is saved, never when it is evaluated.

``render_rule`` writes a rule as canonical text on one line, with the fewest parentheses that
keep its shape: ``parse_rule(render_rule(rule), context) == rule`` for every valid rule.
"""

import difflib
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import NamedTuple

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedToken
from pydantic import ValidationError

from profilegate.domain.errors import InvalidInput
from profilegate.domain.events import Channel, EventType
from profilegate.domain.expected_forms import reason
from profilegate.domain.identities import IdentityType
from profilegate.domain.money import MAX_AMOUNT, Currencies, exponent, minor_units
from profilegate.domain.segment_rules import (
    MAX_LIST_VALUES,
    MAX_RULE_DEPTH,
    MAX_STRING_LENGTH,
    MAX_TRAIT_PATH,
    MONEY,
    WINDOWED,
    And,
    Comparison,
    HasConsent,
    HasExtension,
    HasIdentity,
    InSegment,
    Metric,
    MetricTest,
    Not,
    Or,
    RedeemedCoupon,
    Rule,
    TraitContains,
    TraitExists,
    TraitIn,
    TraitTest,
    UsedChannel,
    referenced_segments,
)
from profilegate.domain.segments import MAX_RULE_LENGTH

# Precedence: not > and > or. A chain of one operator is one node (``a and b and c``);
# parentheses keep their group, so ``(a and b) and c`` stays nested. A clause is a subject
# (``traits.a.b``, a bare name, or a call) with an optional test; names are checked after
# parsing, which gives better messages ("did you mean ...?") than keywords in the grammar.
# Keywords are reserved everywhere (the lexer does not depend on the parser state), so a
# trait key that is a keyword is written in quotes: ``traits."in"``.
GRAMMAR = r"""
start: disjunction

?disjunction: conjunction (_OR conjunction)*
?conjunction: negation (_AND negation)*
?negation: not_clause | atom
not_clause: _NOT negation
?atom: _LPAR disjunction _RPAR | clause

clause: subject COMPARATOR value    -> compare
      | subject IN list             -> member
      | subject CONTAINS value      -> contains
      | subject EXISTS              -> exists
      | subject                     -> bare

subject: _TRAITS (_DOT key)+        -> trait
       | NAME                       -> name
       | NAME _LPAR arguments? _RPAR -> call

?key: NAME | STRING
list: LSQB (value (_COMMA value)*)? _RSQB
arguments: argument (_COMMA argument)*
?argument: value | NAME | window
window: _LAST WINDOW
?value: STRING | INTEGER | DECIMAL | TRUE | FALSE

_OR: "or"
_AND: "and"
_NOT: "not"
_TRAITS: "traits"
_LAST: "last"
IN: "in"
CONTAINS: "contains"
EXISTS: "exists"
TRUE: "true"
FALSE: "false"
_LPAR: "("
_RPAR: ")"
LSQB: "["
_RSQB: "]"
_COMMA: ","
_DOT: "."
COMPARATOR: /!=|==|<=|>=|=|<|>/
NAME: /[A-Za-z_][A-Za-z0-9_]*/
STRING: /"(?:[^"\\]|\\.)*"/s
DECIMAL: /-?[0-9]+\.[0-9]+/
INTEGER: /-?[0-9]+/
WINDOW: /[0-9]+[A-Za-z]+/

%ignore /\s+/
"""

_PARSER = Lark(GRAMMAR, parser="lalr", lexer="basic", propagate_positions=True, maybe_placeholders=False)

# What each terminal is called in a syntax error, in the order a list of them is written.
_TERMINALS = {
    "NAME": "a name",
    "_TRAITS": "'traits'",
    "_NOT": "'not'",
    "_LPAR": "'('",
    "STRING": "a string",
    "INTEGER": "a number",
    "DECIMAL": "a number",
    "TRUE": "true",
    "FALSE": "false",
    "_LAST": "'last'",
    "WINDOW": "a number of days such as 30d",
    "COMPARATOR": "a comparison (=, !=, <, <=, >, >=)",
    "IN": "'in'",
    "CONTAINS": "'contains'",
    "EXISTS": "'exists'",
    "_AND": "'and'",
    "_OR": "'or'",
    "_DOT": "'.'",
    "LSQB": "'['",
    "_COMMA": "','",
    "_RSQB": "']'",
    "_RPAR": "')'",
    "$END": "the end of the rule",
}
_CONDITION_START = frozenset({"NAME", "_TRAITS", "_NOT", "_LPAR"})
_CONDITION_START_NAMES = frozenset(_TERMINALS[terminal] for terminal in _CONDITION_START)
_KEYWORDS = frozenset({"and", "or", "not", "in", "contains", "exists", "true", "false", "last", "traits"})
_CHARACTER_HINTS = {
    "&": "; write 'and'",
    "|": "; write 'or'",
    "!": "; write 'not', or != for 'not equal'",
    "'": "; strings are written in double quotes",
}

_PREDICATE_EXAMPLES = {
    "has_extension": 'has_extension("vip")',
    "consent": 'consent("email_marketing")',
    "has_identity": "has_identity(EMAIL)",
    "used_channel": 'used_channel("store")',
    "in_segment": 'in_segment("vip-buyers")',
    "redeemed_coupon": 'redeemed_coupon("spring", last 30d)',
}
_TRAIT_TEST_EXAMPLES = {
    "in": 'traits.country in ["DE", "AT"]',
    "contains": 'traits.interests contains "fashion"',
    "exists": "traits.birthYear exists",
}
_CAMPAIGN = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_EVENTS_EXAMPLE = 'events("product_view", last 7d)'
_COUNTS = {
    Metric.ORDERS: "a count",
    Metric.RETURNS: "a count",
    Metric.EVENTS: "a count",
    Metric.DAYS_SINCE_LAST_ORDER: "a count of days",
}
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ESCAPE = re.compile(r"\\(.)", re.S)
_INT64 = range(-(2**63), 2**63)
_MAX_LISTED_CHOICES = 12

type _Branch = Tree[Token] | Token


@dataclass(frozen=True, kw_only=True)
class RuleContext:
    """What a rule may refer to, as it stands when the rule is saved."""

    currencies: Currencies  # money literals are decimals in ``currencies.base``
    known_extensions: frozenset[str]
    consent_purposes: frozenset[str]
    segments: Mapping[str, Rule] = field(default_factory=dict)  # the other stored segments, by key
    self_key: str | None = None  # the key of the segment being saved, for cycle detection
    max_window_days: int  # profiles keep this many days of daily buckets


class RuleError(InvalidInput):
    """A rule that does not parse or validate; ``line`` and ``column`` are 1-based."""

    def __init__(self, problem: str, line: int, column: int) -> None:
        super().__init__("rule", f"line {line}, column {column}: {problem}")
        self.problem = problem
        self.line = line
        self.column = column


def parse_rule(text: str, context: RuleContext) -> Rule:
    """The validated syntax tree of ``text``; raises :class:`RuleError` on the first problem."""
    if len(text) > MAX_RULE_LENGTH:
        raise RuleError(f"a rule has at most {MAX_RULE_LENGTH} characters, this one {len(text)}", 1, 1)
    if not text.strip():
        raise RuleError("the rule is empty", 1, 1)
    root = _tree(_syntax_tree(text).children[0])
    _check_depth(root)
    return _RuleBuilder(context).rule(root)


def render_rule(rule: Rule, currencies: Currencies | None = None) -> str:
    """Canonical text for ``rule``; money is written in ``currencies.base`` (EUR by default)."""
    return _text(rule, currencies or Currencies())


# -- syntax ------------------------------------------------------------------------------------


def _syntax_tree(text: str) -> Tree[Token]:
    try:
        return _PARSER.parse(text)
    except UnexpectedCharacters as error:
        raise RuleError(_unexpected_character(error.char), error.line, error.column) from error
    except UnexpectedToken as error:  # the LALR parser reports the end of the text as a $END token
        expected = error.accepts or set(error.expected)
        if error.token.type == "$END":
            raise _unexpected_end(text, expected) from error
        problem = f"unexpected {_shown(error.token)}; expected {_one_of(expected)}"
        raise RuleError(problem + _token_hint(error.token, expected), error.line, error.column) from error


def _unexpected_character(char: str) -> str:
    if char == '"':
        return 'a string is not closed: the closing " is missing'
    if char.isalpha():  # a letter outside A-Z: fine in a string, not in a name
        return f'unexpected character {char!r}; names are plain ASCII; quote trait keys, e.g. traits."größe"'
    return f"unexpected character {char!r}{_CHARACTER_HINTS.get(char, '')}"


def _unexpected_end(text: str, expected: Iterable[str]) -> RuleError:
    body = text.rstrip()
    line = body.count("\n") + 1
    column = len(body) - body.rfind("\n")
    return RuleError(f"unexpected end of rule; expected {_one_of(expected)}", line, column)


def _shown(token: Token) -> str:
    text = str(token)
    return f"'{text[:40]}...'" if len(text) > 40 else f"'{text}'"


def _one_of(terminals: Iterable[str]) -> str:
    wanted = set(terminals)
    names = list(dict.fromkeys(name for key, name in _TERMINALS.items() if key in wanted))
    if wanted >= _CONDITION_START:  # the start of a clause: say so rather than list its tokens
        names = ["a condition", *(name for name in names if name not in _CONDITION_START_NAMES)]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def _token_hint(token: Token, expected: set[str]) -> str:
    if token.type == "NAME" and token.lower() in _KEYWORDS:
        return f"; keywords are lower-case: {token.lower()}"
    if token.type == "NAME" and "STRING" in expected:
        return f'; strings are written in double quotes: "{token}"'
    if token in _KEYWORDS and "STRING" in expected:
        return f'; {token} is a keyword: write it in double quotes, "{token}"'
    return ""


def _check_depth(root: Tree[Token]) -> None:
    """Refuse nesting over MAX_RULE_DEPTH, without recursion: the parse tree may be far deeper."""
    pending: list[tuple[Tree[Token], int]] = [(root, 1)]
    while pending:
        node, depth = pending.pop()
        if depth > MAX_RULE_DEPTH:
            raise _error(node, f"conditions nest deeper than {MAX_RULE_DEPTH} levels")
        if node.data in ("disjunction", "conjunction", "not_clause"):
            pending.extend((_tree(child), depth + 1) for child in reversed(node.children))


# -- validation: from the parse tree to the syntax tree ------------------------------------------


class _Measured(NamedTuple):
    """What a metric clause measures: the left side of ``orders(last 30d) >= 3``."""

    metric: Metric
    window_days: int | None = None
    event_type: EventType | None = None


class _RuleBuilder:
    """Builds a ``Rule`` from the parse tree, checking names and types against the context."""

    def __init__(self, context: RuleContext) -> None:
        self.context = context

    def rule(self, node: Tree[Token]) -> Rule:
        match node.data:
            case "disjunction":
                return Or(clauses=tuple(self.rule(_tree(child)) for child in node.children))
            case "conjunction":
                return And(clauses=tuple(self.rule(_tree(child)) for child in node.children))
            case "not_clause":
                return Not(clause=self.rule(_tree(node.children[0])))
            case _:
                return self._clause(node)

    def _clause(self, node: Tree[Token]) -> Rule:
        try:
            return self._test(node)
        except ValidationError as error:  # a bound of segment_rules this module does not check itself
            raise _error(node, reason(error.errors())) from error

    def _test(self, node: Tree[Token]) -> Rule:
        subject, *rest = node.children
        subject = _tree(subject)
        match node.data, rest:
            case "compare", [Token() as operator, Token() as value]:
                return self._compare(subject, operator, value)
            case "member", [Token() as keyword, Tree() as values]:
                return TraitIn(path=_tested_trait(subject, keyword), values=_list_values(values))
            case "contains", [Token() as keyword, Token() as value]:
                return TraitContains(path=_tested_trait(subject, keyword), value=_scalar(value))
            case "exists", [Token() as keyword]:
                return TraitExists(path=_tested_trait(subject, keyword))
            case _:
                return self._bare(subject)

    def _compare(self, subject: Tree[Token], operator: Token, value: Token) -> Rule:
        if subject.data == "trait":
            path = _trait_path(subject)
            return TraitTest(path=path, op=_comparison(operator), value=_compared_scalar(operator, value))
        measured = self._measured(subject, operator)
        op = _comparison(operator)
        amount = _metric_value(measured.metric, value, self.context.currencies.base)
        return MetricTest(
            metric=measured.metric,
            window_days=measured.window_days,
            event_type=measured.event_type,
            op=op,
            value=amount,
        )

    def _bare(self, subject: Tree[Token]) -> Rule:
        if subject.data == "trait":
            raise _error(subject, "a trait needs a test: a comparison, in [...], contains or exists")
        name = _token(subject.children[0])
        if name in _PREDICATE_EXAMPLES and subject.data == "call":
            return self._predicate(name, _arguments(subject))
        if name in _PREDICATE_EXAMPLES:
            raise _error(name, f"{name} needs an argument, e.g. {_PREDICATE_EXAMPLES[name]}")
        metric = _metric(name, subject)
        example = _EVENTS_EXAMPLE if metric is Metric.EVENTS else metric
        raise _error(subject, f"{metric} needs a comparison, e.g. {example} >= 1")

    # -- metrics

    def _measured(self, subject: Tree[Token], operator: Token) -> _Measured:
        name = _token(subject.children[0])
        if name in _PREDICATE_EXAMPLES:
            raise _error(operator, f"{name}(...) is a condition by itself; it cannot be compared")
        metric = _metric(name, subject)
        if subject.data == "name":
            if metric is Metric.EVENTS:
                raise _error(name, f"events needs an event type, e.g. {_EVENTS_EXAMPLE} > 0")
            return _Measured(metric)
        if metric not in WINDOWED:
            raise _error(name, f"{metric} has no window; write it without parentheses")
        if metric is Metric.EVENTS:
            return self._events(name, _arguments(subject))
        window = _only_argument(name, _arguments(subject), f"{metric}(last 30d)")
        return _Measured(metric, window_days=self._window(window, f"{metric}(last 30d)"))

    def _events(self, name: Token, arguments: list[_Branch]) -> _Measured:
        if not arguments or len(arguments) > 2:
            at = name if not arguments else arguments[2]
            raise _error(at, f"events takes an event type and an optional window, e.g. {_EVENTS_EXAMPLE}")
        first = f"events takes an event type first, e.g. {_EVENTS_EXAMPLE}"
        event_type = _known(_string_argument(arguments[0], first), arguments[0], EventType, "event type")
        window = self._window(arguments[1], _EVENTS_EXAMPLE) if len(arguments) == 2 else None
        return _Measured(Metric.EVENTS, window_days=window, event_type=EventType(event_type))

    def _window(self, argument: _Branch, example: str) -> int:
        if not (isinstance(argument, Tree) and argument.data == "window"):
            raise _error(argument, f"expected a window such as last 30d, e.g. {example}")
        token = _token(argument.children[0])
        unit = token.lstrip("0123456789")
        digits = token[: len(token) - len(unit)]
        if unit != "d":
            raise _error(token, f"a window is a number of days, e.g. last {int(digits)}d")
        days = int(digits)
        if days < 1:
            raise _error(token, "a window is at least 1 day")
        if days > self.context.max_window_days:
            limit = self.context.max_window_days
            raise _error(token, f"a window of {days} days is longer than the {limit} days profiles keep")
        return days

    # -- predicates

    def _predicate(self, name: Token, arguments: list[_Branch]) -> Rule:
        example = _PREDICATE_EXAMPLES[name]
        if name == "redeemed_coupon":
            return self._redeemed_coupon(name, arguments, example)
        argument = _only_argument(name, arguments, example)
        if name == "has_identity":
            return HasIdentity(identity_type=_identity_type(argument))
        value = _string_argument(argument, f"{name} takes a string in double quotes, e.g. {example}")
        match name:
            case "has_extension":
                return HasExtension(name=_known(value, argument, self.context.known_extensions, "extension"))
            case "consent":
                purpose = _known(value, argument, self.context.consent_purposes, "consent purpose")
                return HasConsent(purpose=purpose)
            case "used_channel":
                return UsedChannel(channel=Channel(_known(value, argument, Channel, "channel")))
            case _:
                return InSegment(key=self._segment_key(value, argument))

    def _redeemed_coupon(self, name: Token, arguments: list[_Branch], example: str) -> Rule:
        if len(arguments) != 2:
            at = arguments[2] if len(arguments) > 2 else (arguments[-1] if arguments else name)
            raise _error(at, f"redeemed_coupon takes a campaign and a window, e.g. {example}")
        campaign = _string_argument(arguments[0], f"redeemed_coupon takes a campaign first, e.g. {example}")
        if not _CAMPAIGN.fullmatch(campaign):
            raise _error(arguments[0], "a campaign is lower-case letters, digits, '_' and '-', up to 64")
        return RedeemedCoupon(campaign=campaign, window_days=self._window(arguments[1], example))

    def _segment_key(self, key: str, argument: _Branch) -> str:
        if key == self.context.self_key:
            raise _error(argument, f"segment '{key}' cannot be in its own rule")
        _known(key, argument, self.context.segments, "segment")
        cycle = self._cycle_through(key)
        if cycle:
            raise _error(argument, f'in_segment("{key}") makes a cycle: {" -> ".join(cycle)}')
        return key

    def _cycle_through(self, start: str) -> list[str] | None:
        """The path from the segment being saved through ``start`` back to itself, if any."""
        target = self.context.self_key
        pending, seen = [[start]], {start}
        while target is not None and pending:
            path = pending.pop()
            rule = self.context.segments.get(path[-1])
            references = referenced_segments(rule) if rule is not None else set()
            for key in sorted(references):
                if key == target:
                    return [target, *path, target]
                if key not in seen:
                    seen.add(key)
                    pending.append([*path, key])
        return None


# -- validation of names, values and paths --------------------------------------------------------


def _metric(name: Token, subject: Tree[Token]) -> Metric:
    if name in Metric:
        return Metric(name)
    if subject.data == "call":
        choices = sorted([*_PREDICATE_EXAMPLES, *WINDOWED])
        raise _error(name, _unknown("function", name, choices))
    close = _closest(name, [*Metric, *_PREDICATE_EXAMPLES])
    hint = f"did you mean '{close}'?" if close else f"a trait is written traits.{name}"
    raise _error(name, f"unknown metric '{name}'; {hint}")


def _metric_value(metric: Metric, value: Token, base: str) -> int | float:
    if metric in MONEY:
        return _money(metric, value, base)
    if metric is Metric.RETURN_RATE:
        return _rate(value)
    return _count(metric, value)


def _count(metric: Metric, value: Token) -> int:
    expected = f"{metric} is {_COUNTS[metric]}: expected a whole number of 0 or more"
    if value.type != "INTEGER":
        raise _error(value, f"{expected}, not {_described(value)}")
    count = _integer(value)
    if count < 0:
        raise _error(value, f"{expected}, not {value}")
    return count


def _money(metric: Metric, value: Token, base: str) -> int:
    places = exponent(base)
    if value.type not in ("INTEGER", "DECIMAL"):
        example = f"an amount such as {Decimal(500):.{places}f}"
        raise _error(value, f"{metric} is money in {base}: expected {example}, not {_described(value)}")
    decimals = len(value.partition(".")[2])
    if decimals > places:
        allowed = f"{places} decimals" if places else "no decimals"
        raise _error(value, f"{metric} is money in {base}, which has {allowed}; {value} has {decimals}")
    amount = Decimal(str(value))
    if abs(amount) > MAX_AMOUNT:
        raise _error(value, f"{value} is out of range: amounts are at most {MAX_AMOUNT} {base}")
    return minor_units(amount, base)


def _rate(value: Token) -> float:
    meaning = "return_rate is the share of orders returned, from 0 to 1 (0.3 is 30%)"
    if value.type not in ("INTEGER", "DECIMAL"):
        raise _error(value, f"{meaning}: expected a number, not {_described(value)}")
    rate = float(value)
    if not 0 <= rate <= 1:
        raise _error(value, f"{meaning}; {value} is outside it")
    return rate


def _comparison(operator: Token) -> Comparison:
    if operator == "==":
        raise _error(operator, "write = to test equality, not ==")
    return Comparison(str(operator))


def _compared_scalar(operator: Token, value: Token) -> str | bool | int | float:
    scalar = _scalar(value)
    if isinstance(scalar, bool) and operator not in ("=", "!="):
        raise _error(operator, "true and false compare only with = and !=")
    return scalar


def _scalar(value: Token) -> str | bool | int | float:
    match value.type:
        case "STRING":
            return _string(value)
        case "TRUE" | "FALSE":
            return value.type == "TRUE"
        case "INTEGER":
            return _integer(value)
        case _:
            number = float(value)
            if not math.isfinite(number):
                raise _error(value, "the number is out of range")
            return number


def _integer(value: Token) -> int:
    number = int(value)
    if number not in _INT64:
        raise _error(value, "the number is out of range: whole numbers have at most 64 bits")
    return number


def _string(value: Token) -> str:
    """The text of a STRING token: quotes removed, ``\\"`` and ``\\\\`` unescaped, length checked."""

    def unescape(escape: re.Match[str]) -> str:
        if escape[1] not in '"\\':
            line, column = _offset(value, escape.start() + 1)
            raise RuleError(f"unknown escape '\\{escape[1]}'; strings allow only \\\" and \\\\", line, column)
        return escape[1]

    text = _ESCAPE.sub(unescape, value[1:-1])
    if len(text) > MAX_STRING_LENGTH:
        raise _error(value, f"a string has at most {MAX_STRING_LENGTH} characters, this one {len(text)}")
    return text


def _list_values(values: Tree[Token]) -> tuple[str | bool | int | float, ...]:
    bracket, *items = (_token(child) for child in values.children)
    if not items:
        raise _error(bracket, "an 'in' list needs at least one value")
    if len(items) > MAX_LIST_VALUES:
        raise _error(items[MAX_LIST_VALUES], f"an 'in' list has at most {MAX_LIST_VALUES} values")
    return tuple(_scalar(item) for item in items)


def _tested_trait(subject: Tree[Token], keyword: Token) -> tuple[str, ...]:
    """The path of the trait before ``in``, ``contains`` or ``exists``: only traits take these."""
    if subject.data != "trait":
        raise _error(keyword, f"'{keyword}' tests a trait, e.g. {_TRAIT_TEST_EXAMPLES[keyword]}")
    return _trait_path(subject)


def _trait_path(subject: Tree[Token]) -> tuple[str, ...]:
    keys = [_token(key) for key in subject.children]
    if len(keys) > MAX_TRAIT_PATH:
        raise _error(keys[MAX_TRAIT_PATH], f"a trait path has at most {MAX_TRAIT_PATH} keys")
    return tuple(_trait_key(key) for key in keys)


def _trait_key(key: Token) -> str:
    name = _string(key) if key.type == "STRING" else str(key)
    if not name:
        raise _error(key, "a trait key cannot be empty")
    if len(name) > 64:
        raise _error(key, "a trait key has at most 64 characters")
    if name.startswith("$") or "." in name or "\x00" in name:
        raise _error(key, "a trait key cannot start with '$' or contain '.'")
    return name


def _arguments(call: Tree[Token]) -> list[_Branch]:
    return [argument for child in call.children[1:] for argument in _tree(child).children]


def _only_argument(name: Token, arguments: list[_Branch], example: str) -> _Branch:
    if len(arguments) != 1:
        raise _error(arguments[1] if arguments else name, f"{name} takes one argument, e.g. {example}")
    return arguments[0]


def _string_argument(argument: _Branch, problem: str) -> str:
    if not (isinstance(argument, Token) and argument.type == "STRING"):
        raise _error(argument, problem)
    return _string(argument)


def _identity_type(argument: _Branch) -> IdentityType:
    problem = "has_identity takes an identity type without quotes, e.g. has_identity(EMAIL)"
    if not (isinstance(argument, Token) and argument.type == "NAME"):
        raise _error(argument, problem)
    return IdentityType[_known(argument, argument, IdentityType.__members__, "identity type")]


def _known(name: str, at: _Branch, choices: Iterable[str], what: str) -> str:
    options = sorted(choices)
    if name not in options:
        raise _error(at, _unknown(what, name, options))
    return name


def _unknown(what: str, name: str, options: list[str]) -> str:
    problem = f"unknown {what} '{name}'"
    close = _closest(name, options)
    if close:
        return f"{problem}; did you mean '{close}'?"
    if not options:
        return f"{problem}; none are defined"
    if len(options) <= _MAX_LISTED_CHOICES:
        return f"{problem}; expected one of: {', '.join(options)}"
    return problem


def _closest(name: str, options: Iterable[str]) -> str | None:
    candidates = list(options)
    same_letters = [option for option in candidates if option.lower() == name.lower()]
    close = same_letters or difflib.get_close_matches(name, candidates, n=1)
    longer = [option for option in candidates if option.startswith(name)]
    close = close or (longer if len(longer) == 1 else [])
    return close[0] if close else None


def _described(value: Token) -> str:
    return "a string" if value.type == "STRING" else str(value)


# -- positions ----------------------------------------------------------------------------------


def _error(at: _Branch, problem: str) -> RuleError:
    if isinstance(at, Token):
        return RuleError(problem, at.line or 1, at.column or 1)
    return RuleError(problem, at.meta.line, at.meta.column)


def _offset(token: Token, offset: int) -> tuple[int, int]:
    """The line and column of the character ``offset`` characters into ``token``."""
    before = token[:offset]
    newlines = before.count("\n")
    if not newlines:
        return token.line or 1, (token.column or 1) + offset
    return (token.line or 1) + newlines, offset - before.rfind("\n")


def _tree(branch: _Branch) -> Tree[Token]:
    assert isinstance(branch, Tree), f"the grammar puts a subtree here, not {branch!r}"
    return branch


def _token(branch: _Branch) -> Token:
    assert isinstance(branch, Token), f"the grammar puts a token here, not {branch!r}"
    return branch


# -- rendering ----------------------------------------------------------------------------------


def _text(rule: Rule, currencies: Currencies) -> str:
    match rule:
        case Or(clauses=clauses):
            return " or ".join(_grouped(clause, currencies, Or) for clause in clauses)
        case And(clauses=clauses):
            return " and ".join(_grouped(clause, currencies, And, Or) for clause in clauses)
        case Not(clause=clause):
            return "not " + _grouped(clause, currencies, And, Or)
        case MetricTest():
            return f"{_measured_text(rule)} {rule.op} {_amount_text(rule, currencies)}"
        case _:
            return _leaf_text(rule)


def _grouped(rule: Rule, currencies: Currencies, *grouped: type[And] | type[Or]) -> str:
    """The text of a clause under an operator, in parentheses where its own operator would
    otherwise merge into or bind looser than the one it is under."""
    text = _text(rule, currencies)
    return f"({text})" if isinstance(rule, grouped) else text


def _leaf_text(rule: Rule) -> str:
    match rule:
        case TraitTest(path=path, op=op, value=value):
            return f"{_path_text(path)} {op} {_scalar_text(value)}"
        case TraitIn(path=path, values=values):
            return f"{_path_text(path)} in [{', '.join(_scalar_text(v) for v in values)}]"
        case TraitContains(path=path, value=value):
            return f"{_path_text(path)} contains {_scalar_text(value)}"
        case TraitExists(path=path):
            return f"{_path_text(path)} exists"
        case HasExtension(name=name):
            return f"has_extension({_quoted(name)})"
        case HasConsent(purpose=purpose):
            return f"consent({_quoted(purpose)})"
        case HasIdentity(identity_type=identity_type):
            return f"has_identity({identity_type.name})"
        case UsedChannel(channel=channel):
            return f"used_channel({_quoted(channel)})"
        case InSegment(key=key):
            return f"in_segment({_quoted(key)})"
        case RedeemedCoupon(campaign=campaign, window_days=days):
            return f"redeemed_coupon({_quoted(campaign)}, last {days}d)"
        case _:
            raise TypeError(f"not a leaf clause: {rule!r}")


def _measured_text(rule: MetricTest) -> str:
    arguments = [] if rule.event_type is None else [_quoted(rule.event_type)]
    if rule.window_days is not None:
        arguments.append(f"last {rule.window_days}d")
    return f"{rule.metric}({', '.join(arguments)})" if arguments else str(rule.metric)


def _amount_text(rule: MetricTest, currencies: Currencies) -> str:
    if rule.metric in MONEY:
        return currencies.format(int(rule.value))
    if rule.metric is Metric.RETURN_RATE:
        return _float_text(float(rule.value))
    return str(rule.value)


def _path_text(path: tuple[str, ...]) -> str:
    return "traits." + ".".join(key if _bare_key(key) else _quoted(key) for key in path)


def _bare_key(key: str) -> bool:
    return _IDENTIFIER.fullmatch(key) is not None and key not in _KEYWORDS


def _scalar_text(value: str | bool | int | float) -> str:
    match value:
        case bool():
            return "true" if value else "false"
        case int():
            return str(value)
        case float():
            return _float_text(value)
        case _:
            return _quoted(value)


def _float_text(value: float) -> str:
    """A decimal literal that reads back as exactly ``value`` (no exponent, always a point)."""
    if not math.isfinite(value):
        raise ValueError(f"{value} cannot be written in a rule")
    text = format(Decimal(repr(value)), "f")
    return text if "." in text else f"{text}.0"


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
