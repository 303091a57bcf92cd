"""Layer 1, compile time: RestrictedPython plus our policy refuses what a model's code may not say, and
rewrites size-prone operations into calls of the run-time guards (``engine.sandbox.guards``)."""

from __future__ import annotations

import ast
import functools
from types import CodeType
from typing import Any, Literal

from RestrictedPython import RestrictingNodeTransformer
from RestrictedPython.transformer import INSPECT_ATTRIBUTES

from engine.errors import ScriptRejected

FILENAME = "<gmpflow-sandbox>"  # marks the frames of model code (traced, and named in errors)

# Names refused wherever they appear, and names refused when called (a data field may be called "type").
# 'locals' is refused too, except in a call locals() with no arguments: that becomes a copy of the script's
# data variables (engine.sandbox.variables). globals(), vars() and dir() stay refused: the globals hold the
# guards and builtins, vars(x) and dir(x) read any object's attributes.
FORBIDDEN_NAMES = frozenset({
    "eval", "exec", "compile", "open", "getattr", "setattr", "delattr", "hasattr", "globals", "locals",
    "vars", "breakpoint", "dir", "memoryview", "super", "builtins", "exit", "quit", "printed",
    "classmethod", "staticmethod", "property",
})
FORBIDDEN_CALLS = frozenset({"type", "input", "help", "object", "id", "format", "iter", "next"})
FORBIDDEN_ATTRIBUTES = INSPECT_ATTRIBUTES | {"mro", "format", "format_map"}


class _Policy(RestrictingNodeTransformer):
    """RestrictedPython's policy with our refusals, our messages and our size guards."""

    def error(self, node: ast.AST, info: str) -> None:
        self.errors.append((getattr(node, "lineno", None), info))  # type: ignore[arg-type]

    def check_name(self, node: Any, name: str | None, allow_magic_methods: bool = False) -> None:
        if name is None:
            return
        if name.startswith("_") and name != "_":
            self.error(node, f"names starting with '_' are not allowed: {name}")
        elif name == "locals":
            self.error(node, "'locals' may only be called, as locals(): a copy of the script's variables")
        elif name in FORBIDDEN_NAMES:
            self.error(node, f"'{name}' is not available in scripts")

    def visit_Name(self, node: ast.Name) -> Any:
        if node.id.startswith("_") or node.id in FORBIDDEN_NAMES:
            self.check_name(node, node.id)
            return node
        if node.id == "print":  # our discarding builtin, not RestrictedPython's print collector
            return node
        return super().visit_Name(node)

    def visit_Import(self, node: ast.Import) -> None:
        self.error(node, "imports are not allowed in scripts")

    visit_ImportFrom = visit_Import  # type: ignore[assignment]

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.error(node, "class definitions are not allowed in scripts")

    def visit_With(self, node: ast.With) -> None:
        self.error(node, "'with' statements are not allowed in scripts")

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> Any:
        if node.type is None:
            self.error(node, "a bare 'except:' is not allowed; name the error, e.g. 'except ValueError:'")
        return super().visit_ExceptHandler(node)

    def visit_Attribute(self, node: ast.Attribute) -> Any:
        if node.attr.startswith("_"):
            self.error(node, f"names starting with '_' are not allowed: {node.attr}")
            return node
        if node.attr in FORBIDDEN_ATTRIBUTES:
            hint = "; use an f-string" if node.attr.startswith("format") else ""
            self.error(node, f"the attribute '{node.attr}' is not allowed in scripts{hint}")
            return node
        return super().visit_Attribute(node)

    def visit_Call(self, node: ast.Call) -> Any:
        if isinstance(node.func, ast.Name) and node.func.id == "locals":  # engine.sandbox.variables
            if node.args or node.keywords:
                self.error(node, "'locals()' takes no arguments: it returns a copy of the script's variables")
                return node
            return _call("_locals_", like=node)
        if isinstance(node.func, ast.Name) and node.func.id in FORBIDDEN_CALLS | FORBIDDEN_NAMES:
            self.error(node, f"'{node.func.id}()' is not available in scripts")
            return node
        if isinstance(node.func, ast.Name) and node.func.id == "print" and any(
                k.arg in (None, "file") for k in node.keywords):
            self.error(node, "print() writes nowhere: it takes no 'file' (nor '**' arguments)")
            return node
        return super().visit_Call(node)

    def visit_BinOp(self, node: ast.BinOp) -> Any:
        node = self.node_contents_visit(node)
        if type(node.op) not in _GUARDED_OPS:
            return node
        return _call("_binop_", ast.Constant(_GUARDED_OPS[type(node.op)]), node.left, node.right, like=node)

    def visit_JoinedStr(self, node: ast.JoinedStr) -> Any:
        return _call("_sized_", self.node_contents_visit(node), like=node)

    def visit_FormattedValue(self, node: ast.FormattedValue) -> Any:
        node = self.node_contents_visit(node)
        spec = node.format_spec or ast.Constant("")
        value = _call("_format_", node.value, ast.Constant(node.conversion), spec, like=node)
        return ast.copy_location(ast.FormattedValue(value=value, conversion=-1, format_spec=None), node)

    def _sized_display(self, node: ast.List | ast.Tuple | ast.Set) -> Any:
        node = self.node_contents_visit(node)
        if isinstance(getattr(node, "ctx", ast.Load()), ast.Load) and any(
                isinstance(e, ast.Starred) for e in node.elts):
            return _call("_sized_", node, like=node)
        return node

    visit_List = visit_Tuple = _sized_display  # type: ignore[assignment]

    # Comparing or hashing nested values walks all of them in C: the operands of a comparison and the
    # keys of a dict or set go through a guard that sizes the containers among them.
    def visit_Compare(self, node: ast.Compare) -> Any:
        node = self.node_contents_visit(node)
        operands = [node.left, *node.comparators]
        # beside a literal (x > 5, x in ('a', 'b')) an operand is compared with scalars only: no guard
        guarded = [o if _literal(o) or all(_literal(n) for n in operands[max(i - 1, 0):i + 2] if n is not o)
                   else _compared(o) for i, o in enumerate(operands)]
        node.left, node.comparators = guarded[0], guarded[1:]
        return node

    def visit_Set(self, node: ast.Set) -> Any:
        node = self._sized_display(node)
        if isinstance(node, ast.Set):
            node.elts = [_compared(e) for e in node.elts]
        return node

    def visit_Dict(self, node: ast.Dict) -> Any:
        node = self.node_contents_visit(node)
        node.keys = [k if k is None else _compared(k) for k in node.keys]
        return node

    def visit_DictComp(self, node: ast.DictComp) -> Any:
        visited = super().visit_DictComp(node)
        visited.key = _compared(visited.key)  # type: ignore[union-attr]
        return visited

    def visit_SetComp(self, node: ast.SetComp) -> Any:
        visited = super().visit_SetComp(node)
        visited.elt = _compared(visited.elt)  # type: ignore[union-attr]
        return visited


_GUARDED_OPS: dict[type[ast.operator], str] = {
    ast.Mult: "*", ast.Pow: "**", ast.LShift: "<<", ast.Add: "+", ast.Mod: "%"}


def _literal(node: ast.expr) -> bool:
    """A constant, or a tuple/list/set display of constants."""
    return isinstance(node, ast.Constant) or (isinstance(node, (ast.Tuple, ast.List, ast.Set))
                                              and all(isinstance(e, ast.Constant) for e in node.elts))


def _compared(node: ast.expr) -> ast.expr:
    return node if isinstance(node, ast.Constant) else _call("_compared_", node, like=node)


def _call(name: str, *args: ast.expr, like: ast.AST) -> ast.Call:
    node = ast.Call(func=ast.Name(name, ast.Load()), args=list(args), keywords=[])
    return ast.fix_missing_locations(ast.copy_location(node, like))


@functools.lru_cache(maxsize=4096)
def compiled(source: str, mode: Literal["eval", "exec"]) -> CodeType:
    """Compile once per distinct source; raise ScriptRejected (without element or file) on refusal."""
    kind = "expression" if mode == "eval" else "script"
    try:
        return _compile(source, mode, kind)
    except (RecursionError, MemoryError):  # the parser's and compiler's own limits on nesting
        raise ScriptRejected(f"the {kind} is nested too deeply", line=1) from None


def _compile(source: str, mode: Literal["eval", "exec"], kind: str) -> CodeType:
    try:
        tree = ast.parse(source, FILENAME, mode)
    except SyntaxError as err:
        raise ScriptRejected(f"the {kind} is not valid Python: {err.msg}", line=err.lineno) from None
    errors: list[tuple[int | None, str]] = []
    tree = _Policy(errors, [], {}).visit(tree)  # type: ignore[arg-type]
    if errors:
        problems = [{"line": line, "message": message} for line, message in errors]
        line, message = errors[0]
        raise ScriptRejected(message, line=line, problems=problems if len(problems) > 1 else None)
    return compile(tree, FILENAME, mode)
