"""A small OData ``$filter`` parser and evaluator for the simulated Graph endpoints.

Supports comparisons (``eq ne gt lt ge le``), ``and``/``or``/``not``, parentheses, the functions
``contains``, ``startswith`` and ``tolower``, quoted strings (``''`` escapes a quote), unquoted
ISO 8601 date/times, numbers, ``true``/``false``/``null``. Each endpoint passes the properties and
operators it accepts; anything else is a ``FilterError``
(Graph answers 400 "Invalid filter clause").
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

Value = str | int | float | bool | datetime | None
Predicate = Callable[[Mapping[str, Any]], bool]

_TOKEN = re.compile(
    r"""\s*(?:
    (?P<str>'(?:[^']|'')*')
    |(?P<dt>\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})?)?)
    |(?P<num>-?\d+(?:\.\d+)?)
    |(?P<name>[A-Za-z_@][A-Za-z0-9_/.]*)
    |(?P<punct>[(),])
    )""",
    re.VERBOSE,
)
COMPARISONS = ("eq", "ne", "gt", "lt", "ge", "le")


class FilterError(ValueError):
    """The filter is malformed or uses a property/operator the endpoint does not support."""


@dataclass(frozen=True, slots=True)
class Token:
    kind: str
    text: str


@dataclass(frozen=True, slots=True)
class Bound:
    """A time bound found at the top level of an ``and`` chain."""

    path: str
    op: str
    value: datetime


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise FilterError(f"Invalid filter clause: unexpected text at {pos}")
        kind = match.lastgroup or ""
        tokens.append(Token(kind, match.group(kind)))
        pos = match.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return tokens


def parse_datetime(text: str) -> datetime:
    """An OData date or date-time literal as an aware UTC datetime."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)


class _Parser:
    def __init__(self, text: str, allowed: Mapping[str, frozenset[str]]) -> None:
        self.tokens = tokenize(text)
        self.pos = 0
        self.allowed = allowed
        self.bounds: list[Bound] = []
        self.depth = 0

    def peek(self) -> Token | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, text: str | None = None) -> Token:
        token = self.peek()
        if token is None or (text is not None and token.text != text):
            raise FilterError(f"Invalid filter clause: expected {text or 'more input'}")
        self.pos += 1
        return token

    def parse(self) -> Predicate:
        predicate = self.or_expr()
        if self.peek() is not None:
            raise FilterError(f"Invalid filter clause: unexpected '{self.peek().text}'")  # type: ignore[union-attr]
        return predicate

    def or_expr(self) -> Predicate:
        mark = len(self.bounds)
        parts = [self.and_expr()]
        while self._at_word("or"):
            self.take()
            parts.append(self.and_expr())
        if len(parts) == 1:
            return parts[0]
        del self.bounds[mark:]  # a bound under "or" does not narrow the whole filter
        return lambda item: any(p(item) for p in parts)

    def and_expr(self) -> Predicate:
        parts = [self.unary()]
        while self._at_word("and"):
            self.take()
            parts.append(self.unary())
        if len(parts) == 1:
            return parts[0]
        return lambda item: all(p(item) for p in parts)

    def _at_word(self, word: str) -> bool:
        token = self.peek()
        return token is not None and token.kind == "name" and token.text == word

    def unary(self) -> Predicate:
        if self._at_word("not"):
            self.take()
            self.depth += 1
            inner = self.unary()
            self.depth -= 1
            return lambda item: not inner(item)
        token = self.peek()
        if token is not None and token.text == "(":
            self.take("(")
            inner = self.or_expr()
            self.take(")")
            return inner
        if token is not None and token.text in ("contains", "startswith"):
            return self.bool_function()
        return self.comparison()

    def bool_function(self) -> Predicate:
        name = self.take().text
        self.take("(")
        path, getter = self.operand_path()
        self._check(path, name)
        self.take(",")
        literal = self.literal()
        self.take(")")
        if not isinstance(literal, str):
            raise FilterError(f"Invalid filter clause: {name} needs a string")
        if name == "contains":
            return lambda item: literal in str(getter(item) or "")
        return lambda item: str(getter(item) or "").startswith(literal)

    def operand_path(self) -> tuple[str, Callable[[Mapping[str, Any]], Any]]:
        token = self.take()
        if token.text == "tolower":
            self.take("(")
            path, inner = self.operand_path()
            self.take(")")
            return path, lambda item: str(inner(item) or "").lower()
        if token.kind != "name" or token.text in ("true", "false", "null"):
            raise FilterError(f"Invalid filter clause: expected a property, got '{token.text}'")
        parts = token.text.split("/")
        return token.text, lambda item: _lookup(item, parts)

    def literal(self) -> Value:
        token = self.take()
        if token.kind == "str":
            return token.text[1:-1].replace("''", "'")
        if token.kind == "dt":
            return parse_datetime(token.text)
        if token.kind == "num":
            return float(token.text) if "." in token.text else int(token.text)
        if token.text in ("true", "false"):
            return token.text == "true"
        if token.text == "null":
            return None
        raise FilterError(f"Invalid filter clause: expected a literal, got '{token.text}'")

    def comparison(self) -> Predicate:
        path, getter = self.operand_path()
        op_token = self.take()
        if op_token.text not in COMPARISONS:
            raise FilterError(f"Invalid filter clause: unknown operator '{op_token.text}'")
        op = op_token.text
        self._check(path, op)
        literal = self.literal()
        if isinstance(literal, datetime) and op in ("gt", "lt", "ge", "le") and self.depth == 0:
            self.bounds.append(Bound(path, op, literal))
        return _compare(getter, op, literal)

    def _check(self, path: str, op: str) -> None:
        ops = self.allowed.get(path)
        if ops is None:
            raise FilterError(f"Invalid filter clause: property '{path}' is not supported")
        if op not in ops:
            raise FilterError(
                f"Invalid filter clause: operator '{op}' is not supported on '{path}'"
            )


def _lookup(item: Mapping[str, Any], parts: list[str]) -> Any:
    value: Any = item
    for part in parts:
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _coerce(value: Any, literal: Value) -> Any:
    if isinstance(literal, datetime) and isinstance(value, str) and value:
        try:
            return parse_datetime(value)
        except ValueError:
            return None
    return value


def _compare(getter: Callable[[Mapping[str, Any]], Any], op: str, literal: Value) -> Predicate:
    def predicate(item: Mapping[str, Any]) -> bool:
        value = _coerce(getter(item), literal)
        if op == "eq":
            return bool(value == literal)
        if op == "ne":
            return bool(value != literal)
        if value is None or literal is None:
            return False
        try:
            return bool(
                {
                    "gt": value > literal,
                    "lt": value < literal,
                    "ge": value >= literal,
                    "le": value <= literal,
                }[op]
            )
        except TypeError:
            return False

    return predicate


def compile_filter(
    text: str, allowed: Mapping[str, frozenset[str]]
) -> tuple[Predicate, list[Bound]]:
    """Parse ``text``; return the predicate and the top-level date/time bounds."""
    parser = _Parser(text, allowed)
    return parser.parse(), parser.bounds
