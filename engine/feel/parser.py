"""A recursive-descent parser for gmpflow's FEEL subset: text into a tree of tuples, never into code.

Expressions: numbers, strings, ``true``/``false``/``null``, names (with spaces when known), ``?`` (the input
value of a unary test), lists ``[1, 2]``, ranges ``[1..10]`` ``(1..10]`` ``]1..10[``, paths ``a.b``, function
calls (the table in ``functions``), ``-x``, ``+ - * / **``, comparisons ``= != < <= > >=`` (a chain such as
``4 < ? < 6`` reads as SpiffWorkflow reads it), ``between .. and ..``, ``in``, ``and``, ``or``,
``if .. then .. else``. Unary tests: ``-``, comma lists of positive tests (``< 5``, a range, a value, an
expression using ``?``), ``not(...)``.

Refused by name (``FeelSyntaxError.unsupported``): contexts ``{..}``, ``for``, ``some``/``every``,
``function`` definitions, ``instance of``, filters ``list[..]``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from engine.feel.lexer import FeelSyntaxError, Token, tokenize, unquote

Node = tuple[Any, ...]
MAX_DEPTH = 60  # nesting of one cell; deeper text is refused rather than recursed into
MAX_NAME_WORDS = 8
KEYWORDS = {
    "true",
    "false",
    "null",
    "if",
    "then",
    "else",
    "and",
    "or",
    "between",
    "in",
    "instance",
    "of",
    "for",
    "some",
    "every",
    "return",
    "satisfies",
    "function",
}
UNSUPPORTED_WORDS = {
    "for": "for loops",
    "some": "some ... satisfies",
    "every": "every ... satisfies",
    "function": "function definitions",
    "instance": "instance of",
}
COMPARISONS = {"=", "!=", "<", "<=", ">", ">="}


class _Parser:
    def __init__(self, text: str, names: frozenset[str]) -> None:
        self.tokens = tokenize(text)
        self.i = 0
        self.names = names
        self.depth = 0

    # -- tokens ---------------------------------------------------------------------------------------------
    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def peek(self, ahead: int = 1) -> Token:
        return self.tokens[min(self.i + ahead, len(self.tokens) - 1)]

    def at(self, text: str) -> bool:
        return self.tok.kind in ("op", "name") and self.tok.text == text

    def take(self, text: str) -> Token:
        if not self.at(text):
            found = self.tok.text or "the end"
            raise FeelSyntaxError(f"expected '{text}' at position {self.tok.pos + 1}, found '{found}'")
        tok = self.tok
        self.i += 1
        return tok

    def expect_end(self) -> None:
        if self.tok.kind != "end":
            raise FeelSyntaxError(f"unexpected '{self.tok.text}' at position {self.tok.pos + 1}")

    def deeper(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise FeelSyntaxError(f"the expression nests deeper than {MAX_DEPTH} levels")

    # -- unary tests ----------------------------------------------------------------------------------------
    def unary_tests(self) -> Node:
        if self.tok.kind == "end":
            return ("any",)
        if self.at("-") and self.peek().kind == "end":
            self.i += 1
            return ("any",)
        if self.at("not") and self.peek().text == "(":
            start = self.i
            self.i += 2
            tests = self.positive_tests(")")
            if self.at(")") and self.peek().kind == "end":
                self.i += 1
                return ("tests", True, tests)
            self.i = start  # not(x) followed by more: an expression calling the function not
        tests = self.positive_tests(None)
        self.expect_end()
        return ("tests", False, tests)

    def positive_tests(self, closing: str | None) -> list[Node]:
        tests = [self.positive_test()]
        while self.at(","):
            self.i += 1
            tests.append(self.positive_test())
        if closing is not None and not self.at(closing):
            self.take(closing)
        return tests

    def positive_test(self) -> Node:
        if self.tok.kind == "op" and self.tok.text in COMPARISONS:
            op = self.tok.text
            self.i += 1
            return ("ut_cmp", op, self.additive())
        if self.at("null"):
            self.i += 1
            return ("ut_expr", ("null",))
        return ("ut_expr", self.expression())

    # -- expressions ----------------------------------------------------------------------------------------
    def expression(self) -> Node:
        self.deeper()
        try:
            if self.tok.kind == "name" and self.tok.text in UNSUPPORTED_WORDS:
                what = UNSUPPORTED_WORDS[self.tok.text]
                raise FeelSyntaxError(f"the FEEL construct '{what}' is not supported", unsupported=what)
            if self.at("if"):
                self.i += 1
                condition = self.expression()
                self.take("then")
                then = self.expression()
                self.take("else")
                return ("if", condition, then, self.expression())
            return self.disjunction()
        finally:
            self.depth -= 1

    def disjunction(self) -> Node:
        left = self.conjunction()
        while self.at("or"):
            self.i += 1
            left = ("or", left, self.conjunction())
        return left

    def conjunction(self) -> Node:
        left = self.comparison()
        while self.at("and"):
            self.i += 1
            left = ("and", left, self.comparison())
        return left

    def comparison(self) -> Node:
        left = self.additive()
        if self.at("between"):
            self.i += 1
            low = self.additive()
            self.take("and")
            return ("between", left, low, self.additive())
        if self.at("in"):
            self.i += 1
            return ("in", left, self.in_tests())
        if self.at("instance"):
            raise FeelSyntaxError(
                "the FEEL construct 'instance of' is not supported", unsupported="instance of"
            )
        ops, operands = [], [left]
        while self.tok.kind == "op" and self.tok.text in COMPARISONS | {"=="}:
            ops.append("=" if self.tok.text == "==" else self.tok.text)
            self.i += 1
            operands.append(self.additive())
        return ("cmp", tuple(ops), tuple(operands)) if ops else left

    def in_tests(self) -> list[Node]:
        if self.at("("):  # x in (1, 2, < 0) or x in (1..10]
            start = self.i
            try:
                return [self.positive_test()]
            except FeelSyntaxError:
                self.i = start + 1
                tests = self.positive_tests(")")
                self.take(")")
                return tests
        return [self.positive_test()]

    def additive(self) -> Node:
        left = self.multiplicative()
        while self.tok.kind == "op" and self.tok.text in ("+", "-"):
            op = self.tok.text
            self.i += 1
            left = ("arith", op, left, self.multiplicative())
        return left

    def multiplicative(self) -> Node:
        left = self.power()
        while self.tok.kind == "op" and self.tok.text in ("*", "/"):
            op = self.tok.text
            self.i += 1
            left = ("arith", op, left, self.power())
        return left

    def power(self) -> Node:
        """``**`` groups to the right (2 ** 3 ** 2 = 2 ** 9), as in mathematics and SpiffWorkflow's Python."""
        left = self.unary()
        if self.at("**"):
            self.i += 1
            self.deeper()
            try:
                return ("arith", "**", left, self.power())
            finally:
                self.depth -= 1
        return left

    def unary(self) -> Node:
        if self.at("-"):
            self.i += 1
            self.deeper()
            try:
                return ("neg", self.unary())
            finally:
                self.depth -= 1
        return self.postfix()

    def postfix(self) -> Node:
        node = self.primary()
        while True:
            if self.at(".") and self.peek().kind == "name":
                self.i += 1
                node = ("path", node, self.name())
            elif self.at("[") and self.peek().kind != "end" and self.peek().text not in (",", ")"):
                raise FeelSyntaxError(
                    "FEEL filters and indexes (list[...]) are not supported", unsupported="filter expressions"
                )
            elif self.at("(") and node[0] == "name":
                self.i += 1
                args = [] if self.at(")") else self.arguments()
                self.take(")")
                node = ("call", node[1], tuple(args))
            else:
                return node

    def arguments(self) -> list[Node]:
        if self.tok.kind == "name" and self.peek().text == ":":
            raise FeelSyntaxError("named function arguments are not supported", unsupported="named arguments")
        args = [self.expression()]
        while self.at(","):
            self.i += 1
            args.append(self.expression())
        return args

    def name(self) -> str:
        """The longest run of words that is a known name (FEEL names may hold spaces), else a run of words
        right before '(' (a function's name, known or not: lint names it), else one word."""
        words, best = [], 1
        for k in range(MAX_NAME_WORDS):
            tok = self.peek(k)
            if tok.kind not in ("name", "num"):
                break
            words.append(tok.text)
            if k and " ".join(words) in self.names:
                best = k + 1
            elif k and self.peek(k + 1).text == "(" and best == 1 and not KEYWORDS & set(words):
                best = k + 1
        self.i += best
        return " ".join(words[:best])

    def primary(self) -> Node:
        tok = self.tok
        if tok.kind == "num":
            self.i += 1
            return ("num", Decimal(tok.text))
        if tok.kind == "str":
            self.i += 1
            return ("str", unquote(tok.text))
        if tok.kind == "name":
            if tok.text in ("true", "false"):
                self.i += 1
                return ("bool", tok.text == "true")
            if tok.text == "null":
                self.i += 1
                return ("null",)
            if tok.text in KEYWORDS:
                raise FeelSyntaxError(
                    f"unexpected '{tok.text}' at position {tok.pos + 1}",
                    unsupported=UNSUPPORTED_WORDS.get(tok.text),
                )
            return ("name", self.name())
        if tok.text == "?":
            self.i += 1
            return ("input",)
        if tok.text == "{":
            raise FeelSyntaxError("FEEL contexts ({...}) are not supported", unsupported="contexts")
        if tok.text in ("(", "[", "]"):
            return self.bracketed()
        raise FeelSyntaxError(f"unexpected '{tok.text or 'end'}' at position {tok.pos + 1}")

    def bracketed(self) -> Node:
        opening = self.tok.text
        self.i += 1
        if opening == "[" and self.at("]"):
            self.i += 1
            return ("list", ())
        first = self.expression()
        if self.at(".."):
            self.i += 1
            high = self.expression()
            closing = self.tok.text
            if closing not in ("]", ")", "["):
                raise FeelSyntaxError(f"a range ends with ']', ')' or '[', not '{closing or 'the end'}'")
            self.i += 1
            return ("range", opening == "[", first, high, closing == "]")
        if opening == "(":
            self.take(")")
            return first
        if opening == "]":
            raise FeelSyntaxError("']' opens only a range such as ]1..10]")
        items = [first]
        while self.at(","):
            self.i += 1
            items.append(self.expression())
        self.take("]")
        return ("list", tuple(items))


def parse_expression(text: str, names: frozenset[str] = frozenset()) -> Node:
    """The tree of a FEEL expression; raises FeelSyntaxError."""
    parser = _Parser(text, names)
    node = parser.expression()
    parser.expect_end()
    return node


def parse_unary_tests(text: str, names: frozenset[str] = frozenset()) -> Node:
    """The tree of a DMN input entry (FEEL unary tests); raises FeelSyntaxError."""
    return _Parser(text, names).unary_tests()


def uses_input(node: Any) -> bool:
    """Whether the tree names ``?``, the value under test."""
    if isinstance(node, tuple):
        return node == ("input",) or any(uses_input(part) for part in node)
    return False
