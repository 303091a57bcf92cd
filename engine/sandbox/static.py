"""What the linter can see before a model runs: the code compiles under the policy, and no constant part of
it (``2**10**8``, ``Decimal('1e100000000')``, ``'x'.ljust(10**9)``) passes a limit.

A constant part is evaluated in the sandbox itself, with its guards: a limit refuses it before any work is
done. Other errors of a constant part (``1/0``) are left to the run, as before.
"""

from __future__ import annotations

import ast
from typing import Literal

from engine.errors import ScriptFailed, ScriptRejected
from engine.sandbox.environment import LIMIT_EXCEEDED, SandboxEnvironment
from engine.sandbox.guards import SAFE_BUILTINS
from engine.sandbox.policy import compiled

_BUILTIN_NAMES = frozenset(name for name in SAFE_BUILTINS if not name.startswith("_"))
_CONSTANT_NODES = (ast.Constant, ast.BinOp, ast.UnaryOp, ast.BoolOp, ast.Compare, ast.IfExp, ast.Tuple,
                   ast.List, ast.Set, ast.Dict, ast.Call, ast.Attribute, ast.Subscript, ast.Slice,
                   ast.JoinedStr, ast.FormattedValue, ast.Name, ast.keyword, ast.operator, ast.unaryop,
                   ast.boolop, ast.cmpop, ast.expr_context)


def _constant(node: ast.AST, assigned: frozenset[str]) -> bool:
    """True when ``node`` depends on no variable: only literals, operators and the sandbox's builtins."""
    for part in ast.walk(node):
        if not isinstance(part, _CONSTANT_NODES):
            return False
        if isinstance(part, ast.Name) and (part.id not in _BUILTIN_NAMES or part.id in assigned):
            return False
    return True


def _worth_running(node: ast.expr) -> bool:
    return not isinstance(node, (ast.Constant, ast.Name, ast.Attribute))


def _constant_parts(tree: ast.AST, assigned: frozenset[str]) -> list[ast.expr]:
    """The largest constant sub-expressions of ``tree``."""
    found: list[ast.expr] = []
    pending: list[ast.AST] = [tree]
    while pending:
        node = pending.pop()
        if isinstance(node, ast.expr) and _constant(node, assigned):
            if _worth_running(node):
                found.append(node)
            continue
        pending.extend(ast.iter_child_nodes(node))
    return found


MAX_SOURCE = {"eval": 10_000, "exec": 200_000}  # characters of an expression, of a script


def _check(source: str, mode: Literal["eval", "exec"], element_id: str | None, file: str | None) -> None:
    if len(source) > MAX_SOURCE[mode]:
        kind = "an expression" if mode == "eval" else "a script"
        raise ScriptRejected(f"{kind} may be at most {MAX_SOURCE[mode]:,} characters long", line=1,
                             element_id=element_id, file=file)
    try:
        compiled(source, mode)
    except ScriptRejected as err:
        raise ScriptRejected(err.message, line=err.line, element_id=element_id, file=file,
                             problems=err.context.get("problems")) from None
    tree = ast.parse(source, mode=mode)
    assigned = frozenset(n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and not isinstance(
        n.ctx, ast.Load)) | frozenset(a.arg for a in ast.walk(tree) if isinstance(a, ast.arg))
    environment = SandboxEnvironment()
    for part in _constant_parts(tree, assigned):
        try:
            environment.evaluate(ast.unparse(part), {})
        except ScriptFailed as err:
            if err.code == LIMIT_EXCEEDED:
                message = err.message.removeprefix("line 1: ")
                raise ScriptRejected(f"{message} (a constant part of the code, refused before it runs)",
                                     line=part.lineno, element_id=element_id, file=file) from None
        except ScriptRejected:
            continue


def check_expression(source: str, *, element_id: str | None = None, file: str | None = None) -> None:
    """Compile-only check for the model linter, plus the limits of its constant parts; raises
    ScriptRejected with ``line`` set."""
    _check(source, "eval", element_id, file)


def check_script(source: str, *, element_id: str | None = None, file: str | None = None) -> None:
    """Like check_expression, for a script task's statements."""
    _check(source, "exec", element_id, file)
