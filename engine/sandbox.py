"""The sandbox in which every expression and script of an uploaded model runs.

Models arrive through a browser, so an expression must never become code
execution on the server. Three layers, each of which would stop most escapes
on its own:

1. Compile time (RestrictedPython plus our policy): no imports, no names or
   attributes starting with ``_``, no introspection attributes (``gi_frame``,
   ``f_back``, ``mro``...), no ``str.format``, no ``eval``/``open``/``getattr``...
2. Run time guards: attribute, item and iteration access go through guard
   functions; ``*``, ``**``, ``<<``, ``+``, ``%``, f-strings and the string
   methods that can grow text refuse results past ``MAX_ITEMS``.
3. A deadline: a ``sys.settrace`` hook (thread-safe, no signals) stops the
   code after ``max_seconds``; the previous trace function is restored.

Compile-time refusals raise ``ScriptRejected``; anything that goes wrong while
the code runs raises ``ScriptFailed``. Both carry ``line`` when it is known.
"""

from __future__ import annotations

import ast
import functools
import operator
import re
import sys
import time
from datetime import date, datetime, timedelta
from decimal import Decimal
from types import CodeType, FrameType, TracebackType
from typing import Any, Callable, Literal

from RestrictedPython import RestrictingNodeTransformer
from RestrictedPython.Guards import guarded_iter_unpack_sequence, guarded_unpack_sequence, full_write_guard
from RestrictedPython.transformer import INSPECT_ATTRIBUTES
from SpiffWorkflow.bpmn.script_engine import BasePythonScriptEngineEnvironment, PythonScriptEngine

from engine.errors import ConnectorError, GmpflowError, ScriptFailed, ScriptRejected

FILENAME = "<gmpflow-sandbox>"
MAX_ITEMS = 1_000_000  # longest string / sequence / range a script may build
MAX_INT_BITS = 100_000  # largest integer (about 30,000 digits)
MAX_FORMAT_WIDTH = 1_000  # largest width or precision in a format spec
DEFAULT_MAX_SECONDS = 1.0

# Names refused wherever they appear, and names refused when called (a data field may be called "type").
FORBIDDEN_NAMES = frozenset({
    "eval", "exec", "compile", "open", "getattr", "setattr", "delattr", "hasattr", "globals", "locals",
    "vars", "breakpoint", "dir", "memoryview", "super", "builtins", "exit", "quit", "print", "printed",
    "classmethod", "staticmethod", "property",
})
FORBIDDEN_CALLS = frozenset({"type", "input", "help", "object", "id", "format", "iter", "next"})
FORBIDDEN_ATTRIBUTES = INSPECT_ATTRIBUTES | {"mro", "format", "format_map"}


class _Refused(BaseException):
    """A runtime guard refused an operation. A BaseException so that user ``except`` cannot swallow it."""


class _Timeout(BaseException):
    pass


# --------------------------------------------------------------------------- compile time

class _Policy(RestrictingNodeTransformer):
    """RestrictedPython's policy with our refusals, our messages and our size guards."""

    def error(self, node: ast.AST, info: str) -> None:
        self.errors.append((getattr(node, "lineno", None), info))  # type: ignore[arg-type]

    def check_name(self, node: Any, name: str | None, allow_magic_methods: bool = False) -> None:
        if name is None:
            return
        if name.startswith("_") and name != "_":
            self.error(node, f"names starting with '_' are not allowed: {name}")
        elif name in FORBIDDEN_NAMES:
            self.error(node, f"'{name}' is not available in scripts")

    def visit_Name(self, node: ast.Name) -> Any:
        if node.id.startswith("_") or node.id in FORBIDDEN_NAMES:
            self.check_name(node, node.id)
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
        if isinstance(node.func, ast.Name) and node.func.id in FORBIDDEN_CALLS | FORBIDDEN_NAMES:
            self.error(node, f"'{node.func.id}()' is not available in scripts")
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

    visit_List = visit_Tuple = visit_Set = _sized_display  # type: ignore[assignment]


_GUARDED_OPS: dict[type[ast.operator], str] = {
    ast.Mult: "*", ast.Pow: "**", ast.LShift: "<<", ast.Add: "+", ast.Mod: "%"}


def _call(name: str, *args: ast.expr, like: ast.AST) -> ast.Call:
    node = ast.Call(func=ast.Name(name, ast.Load()), args=list(args), keywords=[])
    return ast.fix_missing_locations(ast.copy_location(node, like))


@functools.lru_cache(maxsize=4096)
def _compile(source: str, mode: Literal["eval", "exec"]) -> CodeType:
    """Compile once per distinct source; raise ScriptRejected (without element or file) on refusal."""
    kind = "expression" if mode == "eval" else "script"
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


def _check(source: str, mode: Literal["eval", "exec"], element_id: str | None, file: str | None) -> None:
    try:
        _compile(source, mode)
    except ScriptRejected as err:
        raise ScriptRejected(err.message, line=err.line, element_id=element_id, file=file,
                             problems=err.context.get("problems")) from None


def check_expression(source: str, *, element_id: str | None = None, file: str | None = None) -> None:
    """Compile-only check for the model linter; raises ScriptRejected with ``line`` set."""
    _check(source, "eval", element_id, file)


def check_script(source: str, *, element_id: str | None = None, file: str | None = None) -> None:
    """Like check_expression, for a script task's statements."""
    _check(source, "exec", element_id, file)


# --------------------------------------------------------------------------- run time guards

_SIZED = (str, bytes, list, tuple, dict, set, frozenset)
_SPEC_NUMBER = re.compile(r"\d+")
_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")


def _refuse_size(size: int, what: str) -> None:
    if size > MAX_ITEMS:
        raise _Refused(f"{what} would create more than {MAX_ITEMS:,} items or characters")


def _sized(value: Any) -> Any:
    if isinstance(value, _SIZED):
        _refuse_size(len(value), "this value")
    return value


def _check_int_bits(bits: int, what: str) -> None:
    if bits > MAX_INT_BITS:
        raise _Refused(f"{what} would create an integer of more than {MAX_INT_BITS:,} bits")


def _binop(op: str, a: Any, b: Any) -> Any:
    if op == "*":
        if isinstance(a, int) and isinstance(b, int):
            _check_int_bits(a.bit_length() + b.bit_length(), "'*'")
        elif isinstance(a, _SIZED) and isinstance(b, int):
            _refuse_size(len(a) * b, "'*'")
        elif isinstance(b, _SIZED) and isinstance(a, int):
            _refuse_size(len(b) * a, "'*'")
        return a * b
    if op == "**":
        if isinstance(a, int) and isinstance(b, int) and b > 0 and abs(a) > 1:
            _check_int_bits(b * a.bit_length(), "'**'")
        return a ** b
    if op == "<<":
        if isinstance(a, int) and isinstance(b, int) and a and b > 0:
            _check_int_bits(a.bit_length() + b, "'<<'")
        return a << b
    if op == "+":
        if isinstance(a, _SIZED) and isinstance(b, _SIZED):
            _refuse_size(len(a) + len(b), "'+'")
        return a + b
    if isinstance(a, (str, bytes)):  # '%' formatting
        for width, precision in _PERCENT_SPEC.findall(a if isinstance(a, str) else a.decode("latin-1")):
            _check_width(width, "'%' formatting")
            _check_width(precision, "'%' formatting")
        return _sized(a % b)
    return a % b


def _check_width(number: str, what: str) -> None:
    if number == "*" or (number and int(number) > MAX_FORMAT_WIDTH):
        raise _Refused(f"{what}: widths and precisions above {MAX_FORMAT_WIDTH} are not allowed")


def _format(value: Any, conversion: int, spec: str) -> str:
    for number in _SPEC_NUMBER.findall(spec):
        _check_width(number, "f-string")
    if conversion == ord("r"):
        value = repr(value)
    elif conversion == ord("a"):
        value = ascii(value)
    elif conversion == ord("s"):
        value = str(value)
    return format(value, spec)


_INPLACE = {"+=": "+", "*=": "*", "**=": "**", "<<=": "<<", "%=": "%"}
_OTHER_INPLACE: dict[str, Callable[[Any, Any], Any]] = {
    "-=": operator.isub, "/=": operator.itruediv, "//=": operator.ifloordiv, ">>=": operator.irshift,
    "&=": operator.iand, "|=": operator.ior, "^=": operator.ixor, "@=": operator.imatmul}


def _inplacevar(op: str, a: Any, b: Any) -> Any:
    if op in _INPLACE:
        if op == "+=" and isinstance(a, list):  # in place, like Python
            _refuse_size(len(a) + len(b) if isinstance(b, _SIZED) else len(a), "'+='")
            a += b
            return a
        return _binop(_INPLACE[op], a, b)
    return _OTHER_INPLACE[op](a, b)


def _text_method(name: str, method: Callable[..., Any], obj: Any) -> Callable[..., Any]:
    """Wrap the str/bytes/list methods that can grow their result far past their input."""

    def guarded(*args: Any, **kwargs: Any) -> Any:
        if name in ("ljust", "rjust", "center", "zfill") and args and isinstance(args[0], int):
            _refuse_size(args[0], f"{name}()")
        elif name == "expandtabs":
            tab = args[0] if args else kwargs.get("tabsize", 8)
            _refuse_size(len(obj) + obj.count("\t" if isinstance(obj, str) else b"\t") * tab, name + "()")
        elif name == "replace" and len(args) >= 2:
            old, new = args[0], args[1]
            hits = len(obj) + 1 if not old else obj.count(old)
            _refuse_size(len(obj) + hits * len(new), "replace()")
        elif name == "extend" and args and isinstance(args[0], _SIZED):
            _refuse_size(len(obj) + len(args[0]), "extend()")
        elif name == "translate" and args and isinstance(args[0], dict):
            longest = max((len(v) for v in args[0].values() if isinstance(v, (str, bytes))), default=1)
            _refuse_size(len(obj) * longest, "translate()")
        elif name == "join" and args:
            items = list(args[0])
            _refuse_size(sum(len(i) for i in items if isinstance(i, _SIZED)) + len(obj) * len(items), "join()")
            return _sized(method(items))
        return _sized(method(*args, **kwargs))

    return guarded


_GROWING_METHODS = frozenset({"ljust", "rjust", "center", "zfill", "expandtabs", "replace", "translate", "join",
                              "extend", "hex", "encode", "decode", "upper", "lower", "title", "swapcase",
                              "casefold", "capitalize"})


def _getattr(obj: Any, name: str) -> Any:
    if not isinstance(name, str) or name.startswith("_") or name in FORBIDDEN_ATTRIBUTES:
        raise _Refused(f"the attribute '{name}' is not allowed in scripts")
    value = getattr(obj, name)
    if name in _GROWING_METHODS:
        if isinstance(obj, (str, bytes, list)):
            return _text_method(name, value, obj)
        if obj in (str, bytes, list):  # unbound, e.g. str.join(",", items)
            return lambda self, *args, **kwargs: _text_method(name, getattr(self, name), self)(*args, **kwargs)
    return value


def _getitem(obj: Any, index: Any) -> Any:
    return obj[index]


def _write(obj: Any) -> Any:
    return full_write_guard(obj)


def _range(*args: int) -> range:
    result = range(*args)
    try:
        size = len(result)
    except OverflowError:
        size = MAX_ITEMS + 1
    _refuse_size(size, "range()")
    return result


def _sum(values: Any, start: Any = 0) -> Any:
    if not isinstance(start, (int, float, Decimal, timedelta)):
        raise _Refused("sum() adds numbers only; its start value must be a number")
    return sum(values, start)


def _apply(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return func(*args, **kwargs)


_EXCEPTIONS = (Exception, ArithmeticError, LookupError, ValueError, TypeError, KeyError, IndexError,
               ZeroDivisionError)
SAFE_BUILTINS: dict[str, Any] = {
    **{f.__name__: f for f in (len, min, max, abs, round, sorted, any, all, enumerate, zip, str, int, float,
                               bool, list, dict, set, tuple, isinstance, *_EXCEPTIONS)},
    "True": True, "False": False, "None": None,
    "range": _range, "sum": _sum,
    "datetime": datetime, "timedelta": timedelta, "date": date, "Decimal": Decimal,
    # RestrictedPython's hooks; user code cannot name them (they start with '_').
    "_getattr_": _getattr, "_getitem_": _getitem, "_getiter_": iter, "_write_": _write,
    "_iter_unpack_sequence_": guarded_iter_unpack_sequence, "_unpack_sequence_": guarded_unpack_sequence,
    "_inplacevar_": _inplacevar, "_apply_": _apply,
    "_binop_": _binop, "_format_": _format, "_sized_": _sized,
}


# --------------------------------------------------------------------------- running

def _namespace(*sources: dict[str, Any] | None) -> dict[str, Any]:
    """The globals: later sources win; keys starting with '_' stay out (user code cannot name them)."""
    namespace = {"__builtins__": SAFE_BUILTINS}
    for source in sources:
        if source:
            namespace.update((k, v) for k, v in source.items() if not k.startswith("_"))
    return namespace


def _user_line(tb: TracebackType | None) -> int | None:
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == FILENAME:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


class SandboxEnvironment(BasePythonScriptEngineEnvironment):  # type: ignore[misc]
    """Evaluates expressions and runs scripts in the sandbox, with TaskDataEnvironment's data semantics.

    ``execute`` writes the variables a script assigns (minus functions and classes) back to the task
    data and removes those it deletes; if the script fails, the task data is left unchanged.
    """

    def __init__(self, environment_globals: dict[str, Any] | None = None, *,
                 max_seconds: float = DEFAULT_MAX_SECONDS) -> None:
        super().__init__(environment_globals)
        self.max_seconds = max_seconds

    def evaluate(self, expression: str, context: dict[str, Any],
                 external_context: dict[str, Any] | None = None) -> Any:
        """Return the expression's value; raise ScriptRejected or ScriptFailed."""
        code = _compile(expression, "eval")
        return self._run(code, _namespace(self.globals, external_context, context))

    def execute(self, script: str, context: dict[str, Any],
                external_context: dict[str, Any] | None = None) -> bool:
        """Run the script and update ``context`` (the task data) with what it assigned."""
        code = _compile(script, "exec")
        namespace = _namespace(self.globals, external_context, context)
        self._run(code, namespace)
        hidden = set(self.globals) | set(external_context or {}) | {"__builtins__"}
        for key in [k for k in context if not k.startswith("_") and k not in namespace]:
            del context[key]
        context.update((k, v) for k, v in namespace.items() if k not in hidden and not callable(v))
        return True

    def call_service(self, context: dict[str, Any], **kwargs: Any) -> Any:
        raise ConnectorError("service calls go through SandboxScriptEngine's service_handler",
                             code="service_handler_missing", retryable=False)

    def _run(self, code: CodeType, namespace: dict[str, Any]) -> Any:
        deadline = time.perf_counter() + self.max_seconds

        def local_trace(frame: FrameType, event: str, arg: Any) -> Any:
            # Checked on every opcode ('while True: pass' emits no line events); once past the
            # deadline every opcode raises again, so no handler can keep a loop going.
            if time.perf_counter() > deadline:
                raise _Timeout
            return local_trace

        def global_trace(frame: FrameType, event: str, arg: Any) -> Any:
            if frame.f_code.co_filename != FILENAME:
                return None  # our guards and the standard library run untraced
            frame.f_trace_opcodes = True
            return local_trace(frame, event, arg)

        previous = sys.gettrace()
        sys.settrace(global_trace)
        try:
            return eval(code, namespace)
        except _Timeout:
            raise self._failed(f"stopped after {self.max_seconds:g} s: the code ran too long "
                               "(an endless loop?)", sys.exc_info()[2]) from None
        except _Refused as err:
            raise self._failed(str(err), err.__traceback__) from None
        except MemoryError as err:
            raise self._failed("ran out of memory", err.__traceback__) from None
        except Exception as err:  # user code may raise anything; report it, never leak it
            detail = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
            raise self._failed(detail, err.__traceback__) from err
        finally:
            sys.settrace(previous)

    @staticmethod
    def _failed(message: str, tb: TracebackType | None) -> ScriptFailed:
        line = _user_line(tb)
        return ScriptFailed(f"line {line}: {message}" if line else message, line=line)


class SandboxScriptEngine(PythonScriptEngine):  # type: ignore[misc]
    """SpiffWorkflow's script engine, running everything in SandboxEnvironment.

    ``service_handler(task, operation_name=..., operation_params=...)`` answers service tasks; without one,
    a service task raises ConnectorError(code="service_handler_missing"). Sandbox errors propagate as
    ScriptRejected/ScriptFailed with ``element_id`` set to the task's BPMN id, never wrapped by SpiffWorkflow.
    """

    def __init__(self, environment: SandboxEnvironment | None = None, *,
                 service_handler: Callable[..., Any] | None = None,
                 max_seconds: float = DEFAULT_MAX_SECONDS) -> None:
        super().__init__(environment or SandboxEnvironment(max_seconds=max_seconds))
        self.service_handler = service_handler

    def evaluate(self, task: Any, expression: str, external_context: dict[str, Any] | None = None) -> Any:
        try:
            return self.environment.evaluate(expression, task.data, external_context)
        except (ScriptRejected, ScriptFailed) as err:
            raise _at_element(err, task) from None

    def execute(self, task: Any, script: str, external_context: dict[str, Any] | None = None) -> bool:
        try:
            return bool(self.environment.execute(script, task.data, external_context or {}))
        except (ScriptRejected, ScriptFailed) as err:
            raise _at_element(err, task) from None

    def call_service(self, task: Any, **kwargs: Any) -> Any:
        if self.service_handler is None:
            raise ConnectorError(
                f"service task '{_element_id(task)}' calls '{kwargs.get('operation_name')}', "
                "but no service handler is configured", code="service_handler_missing", retryable=False)
        return self.service_handler(task, **kwargs)


def _element_id(task: Any) -> str:
    spec = task.task_spec
    return str(getattr(spec, "bpmn_id", None) or spec.name)


def _at_element(err: GmpflowError, task: Any) -> GmpflowError:
    element_id = _element_id(task)
    err.context["element_id"] = element_id
    if isinstance(err, ScriptRejected):
        err.element_id = element_id
    return err
