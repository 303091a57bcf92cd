"""FEEL text into tokens. Names may contain spaces in FEEL ("Applicant Age"); the lexer yields single words
and the parser joins them when the joined words are a name it knows (the decision's inputs, the functions)."""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_TEXT = 10_000  # characters of one FEEL expression or unary test (a cell, not a program)


class FeelSyntaxError(ValueError):
    """The text is not FEEL that gmpflow understands; ``unsupported`` names a construct it refuses by name."""

    def __init__(self, message: str, *, unsupported: str | None = None) -> None:
        super().__init__(message)
        self.unsupported = unsupported


@dataclass(frozen=True)
class Token:
    kind: str  # num, str, name, op, end
    text: str
    pos: int


_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<num>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|\.\d+)
  | (?P<str>"(?:[^"\\]|\\.)*")
  | (?P<name>[A-Za-z_\u00C0-\uFFFF][A-Za-z0-9_\u00C0-\uFFFF']*)
  | (?P<op>\.\.|<=|>=|!=|==|\*\*|[-+*/<>=(),\[\]{}.:?!])
""",
    re.VERBOSE,
)

_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "t": "\t", "r": "\r", "'": "'"}


def unquote(text: str) -> str:
    out, i = [], 1
    while i < len(text) - 1:
        ch = text[i]
        if ch == "\\" and i + 1 < len(text) - 1:
            nxt = text[i + 1]
            if nxt == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", text[i + 2 : i + 6]):
                out.append(chr(int(text[i + 2 : i + 6], 16)))
                i += 6
                continue
            out.append(_ESCAPES.get(nxt, "\\" + nxt))
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def tokenize(text: str) -> list[Token]:
    if len(text) > MAX_TEXT:
        raise FeelSyntaxError(f"the FEEL text is longer than {MAX_TEXT:,} characters")
    tokens, pos = [], 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            if text[pos] == "'":
                raise FeelSyntaxError('FEEL strings are written in double quotes ("..."), not single quotes')
            raise FeelSyntaxError(f"unexpected character {text[pos]!r} at position {pos + 1}")
        kind = match.lastgroup or ""
        if kind != "space":
            tokens.append(Token(kind, match.group(), pos))
        pos = match.end()
    tokens.append(Token("end", "", len(text)))
    return tokens
