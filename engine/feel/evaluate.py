"""Evaluate a parsed FEEL tree over plain values: an interpreter of tuples, never Python's eval.

Values: ``Decimal`` numbers (FEEL numbers are decimals: 0.1 + 0.2 = 0.3), ``str``, ``bool``, ``None`` (null),
``datetime.date``/``datetime``, durations (``timedelta`` for days and time, ``YearsMonths``), lists, dicts
(contexts, reached by paths), and ``Range``. Type mismatches give
null, as FEEL says. Every operation is bounded: decimals in a 34-digit context with a bounded exponent, no
string or list longer than the sandbox's MAX_ITEMS, ranges never materialized, the tree depth bounded by the
parser.
"""

from __future__ import annotations

import decimal
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from engine.feel.durations import YearsMonths, add_months, iso
from engine.feel.functions import FUNCTIONS, FeelError
from engine.sandbox.limits import MAX_DECIMAL_EXPONENT, MAX_ITEMS

CONTEXT = decimal.Context(
    prec=34,
    Emax=MAX_DECIMAL_EXPONENT,
    Emin=-MAX_DECIMAL_EXPONENT,
    traps=[decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow],
)
_MISSING = object()


@dataclass(frozen=True)
class Range:
    low_closed: bool
    low: Any
    high: Any
    high_closed: bool

    def contains(self, value: Any) -> bool | None:
        try:
            above = self.low is None or (value >= self.low if self.low_closed else value > self.low)
            below = self.high is None or (value <= self.high if self.high_closed else value < self.high)
        except TypeError:
            return None
        return bool(above and below)


def from_data(value: Any) -> Any:
    """A task-data value as a FEEL value (numbers become Decimals)."""
    if isinstance(value, bool) or value is None or isinstance(value, (str, Decimal, date, timedelta,
                                                                       YearsMonths)):
        return value
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, (list, tuple)):
        return [from_data(v) for v in value]
    if isinstance(value, dict):
        return {k: from_data(v) for k, v in value.items()}
    return value


def to_data(value: Any) -> Any:
    """A FEEL value as task data the instance state can store: integral Decimals as int, others float;
    dates and durations as ISO text."""
    if isinstance(value, Decimal):
        return (
            int(value) if value == value.to_integral_value() and abs(value.adjusted()) < 30 else float(value)
        )
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (timedelta, YearsMonths)):
        return iso(value)
    if isinstance(value, list):
        return [to_data(v) for v in value]
    if isinstance(value, dict):
        return {k: to_data(v) for k, v in value.items()}
    if isinstance(value, Range):
        raise FeelError("a range cannot be stored as a value")
    return value


def equal(a: Any, b: Any) -> bool | None:
    if a is None or b is None:
        return a is b
    if isinstance(a, bool) != isinstance(b, bool):
        return None
    if type(a) is date and isinstance(b, datetime) or type(b) is date and isinstance(a, datetime):
        return None
    if (
        isinstance(a, (Decimal, str, bool, date, list, dict))
        and isinstance(b, type(a))
        or isinstance(b, type(a))
        or isinstance(a, type(b))
    ):
        return bool(a == b)
    return None


def compare(op: str, a: Any, b: Any) -> bool | None:
    if op == "=":
        return equal(a, b)
    if op == "!=":
        same = equal(a, b)
        return None if same is None else not same
    if a is None or b is None or isinstance(a, bool) or isinstance(b, bool):
        return None
    try:
        if op == "<":
            return bool(a < b)
        if op == "<=":
            return bool(a <= b)
        if op == ">":
            return bool(a > b)
        return bool(a >= b)
    except TypeError:
        return None


def _arith(op: str, a: Any, b: Any) -> Any:
    if a is None or b is None:
        return None
    if isinstance(a, str) and isinstance(b, str) and op == "+":
        if len(a) + len(b) > MAX_ITEMS:
            raise FeelError(f"the text would be longer than {MAX_ITEMS:,} characters")
        return a + b
    if not (isinstance(a, Decimal) and isinstance(b, Decimal)):
        return _temporal(op, a, b)
    try:
        if op == "+":
            return CONTEXT.add(a, b)
        if op == "-":
            return CONTEXT.subtract(a, b)
        if op == "*":
            return CONTEXT.multiply(a, b)
        if op == "/":
            return None if b == 0 else CONTEXT.divide(a, b)
        return CONTEXT.power(a, b) if b == b.to_integral_value() else None
    except (decimal.InvalidOperation, decimal.Overflow, decimal.DivisionByZero):
        return None


def _temporal(op: str, a: Any, b: Any) -> Any:
    """Dates and durations: a date (and time) moved by a duration, the duration between two, durations added,
    scaled and divided. Anything else (a date plus a number, a month plus a day) is null."""
    try:
        if op in "+-" and isinstance(a, date) and isinstance(b, timedelta):
            return a + b if op == "+" else a - b
        if op == "+" and isinstance(a, timedelta) and isinstance(b, date):
            return b + a
        if op in "+-" and isinstance(a, date) and isinstance(b, YearsMonths):
            return add_months(a, b.months if op == "+" else -b.months)
        if op == "+" and isinstance(a, YearsMonths) and isinstance(b, date):
            return add_months(b, a.months)
        if op == "-" and isinstance(a, datetime) and isinstance(b, datetime):
            return a - b  # TypeError (one with an offset, one without): null
        if op == "-" and type(a) is date and type(b) is date:
            return timedelta(days=(a - b).days)
        if op in "+-" and type(a) is type(b) and isinstance(a, timedelta):
            return a + b if op == "+" else a - b
        if op in "+-" and isinstance(a, YearsMonths) and isinstance(b, YearsMonths):
            return YearsMonths(a.months + b.months if op == "+" else a.months - b.months)
        if op == "*" and isinstance(a, Decimal):
            a, b = b, a
        if op in "*/" and isinstance(a, timedelta) and isinstance(b, Decimal):
            seconds = Decimal(str(a.total_seconds()))
            scaled = seconds * b if op == "*" else (None if b == 0 else seconds / b)
            return None if scaled is None else timedelta(seconds=float(scaled))
        if op in "*/" and isinstance(a, YearsMonths) and isinstance(b, Decimal):
            months = a.months * b if op == "*" else (None if b == 0 else a.months / b)
            return None if months is None else YearsMonths(int(months))
        if op == "/" and type(a) is type(b) and isinstance(a, (timedelta, YearsMonths)):
            total = a.total_seconds() if isinstance(a, timedelta) else a.months
            by = b.total_seconds() if isinstance(b, timedelta) else b.months
            return None if not by else CONTEXT.divide(Decimal(str(total)), Decimal(str(by)))
    except (OverflowError, ValueError, TypeError, decimal.InvalidOperation):
        return None
    return None


class Evaluator:
    """Evaluates trees over ``variables`` (FEEL values by name); ``?`` is the value under test."""

    def __init__(self, variables: dict[str, Any]) -> None:
        self.variables = variables

    def value(self, node: tuple[Any, ...], tested: Any = _MISSING) -> Any:
        kind = node[0]
        if kind in ("num", "str", "bool"):
            return node[1]
        if kind == "null":
            return None
        if kind == "name":
            return self.variables.get(node[1])
        if kind == "input":
            if tested is _MISSING:
                raise FeelError("'?' (the input value) is only defined in an input entry")
            return tested
        if kind == "path":
            base = self.value(node[1], tested)
            return base.get(node[2]) if isinstance(base, dict) else None
        if kind == "list":
            return [self.value(item, tested) for item in node[1]]
        if kind == "range":
            return Range(node[1], self.value(node[2], tested), self.value(node[3], tested), node[4])
        if kind == "neg":
            operand = self.value(node[1], tested)
            if isinstance(operand, timedelta):
                return -operand
            if isinstance(operand, YearsMonths):
                return YearsMonths(-operand.months)
            return CONTEXT.minus(operand) if isinstance(operand, Decimal) else None
        if kind == "arith":
            return _arith(node[1], self.value(node[2], tested), self.value(node[3], tested))
        if kind == "cmp":
            return self._chain(node[1], node[2], tested)
        if kind in ("and", "or"):
            return self._logic(kind, node[1], node[2], tested)
        if kind == "if":
            return self.value(node[2] if self.value(node[1], tested) is True else node[3], tested)
        if kind == "between":
            x, low, high = (self.value(n, tested) for n in node[1:])
            above, below = compare(">=", x, low), compare("<=", x, high)
            return None if above is None or below is None else above and below
        if kind == "in":
            return self.matches_any(node[2], self.value(node[1], tested))
        if kind == "call":
            function = FUNCTIONS.get(node[1])
            if function is None:
                raise FeelError(f"the FEEL function '{node[1]}' is not supported")
            return function(*(self.value(arg, tested) for arg in node[2]))
        raise FeelError(f"unknown FEEL node {kind}")

    def _chain(self, ops: tuple[str, ...], operands: tuple[Any, ...], tested: Any) -> bool | None:
        left = self.value(operands[0], tested)
        result: bool | None = True
        for op, node in zip(ops, operands[1:], strict=True):
            right = self.value(node, tested)
            step = compare(op, left, right)
            if step is None:
                return None
            result = result and step
            left = right
        return result

    def _logic(self, kind: str, a: Any, b: Any, tested: Any) -> bool | None:
        left = self.value(a, tested)
        if kind == "and" and left is False or kind == "or" and left is True:
            return left
        right = self.value(b, tested)
        if kind == "and":
            if right is False:
                return False
            return True if left is True and right is True else None
        if right is True:
            return True
        return False if left is False and right is False else None

    # -- unary tests ----------------------------------------------------------------------------------------
    def matches(self, tests: tuple[Any, ...], tested: Any) -> bool:
        """Whether an input entry (``parse_unary_tests``' tree) accepts ``tested``."""
        if tests[0] == "any":
            return True
        hit = self.matches_any(tests[2], tested)
        return (not hit) if tests[1] else hit

    def matches_any(self, positives: list[Any], tested: Any) -> bool:
        return any(self._positive(test, tested) is True for test in positives)

    def _positive(self, test: tuple[Any, ...], tested: Any) -> bool | None:
        if test[0] == "ut_cmp":
            return compare(test[1], tested, self.value(test[2], tested))
        from engine.feel.parser import uses_input

        expected = self.value(test[1], tested)
        if uses_input(test[1]) and isinstance(expected, bool):
            return expected
        if isinstance(expected, Range):
            return expected.contains(tested)
        if isinstance(expected, list) and not isinstance(tested, list):
            return any(equal(tested, item) is True for item in expected)
        return equal(tested, expected)
