"""Layer 2, run time: the functions that attribute, item and iteration access, the size-prone operators,
f-strings and growing string methods go through, and the builtins model code may use."""

from __future__ import annotations

import operator
import re
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Callable

from RestrictedPython.Guards import full_write_guard, guarded_iter_unpack_sequence, guarded_unpack_sequence

from engine.sandbox.policy import FORBIDDEN_ATTRIBUTES

MAX_ITEMS = 1_000_000  # longest string / sequence / range a script may build
MAX_INT_BITS = 100_000  # largest integer (about 30,000 digits)
MAX_FORMAT_WIDTH = 1_000  # largest width or precision in a format spec


class Refused(BaseException):
    """A runtime guard refused an operation. A BaseException so that user ``except`` cannot swallow it."""


_SIZED = (str, bytes, list, tuple, dict, set, frozenset)
_SPEC_NUMBER = re.compile(r"\d+")
_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")


def _refuse_size(size: int, what: str) -> None:
    if size > MAX_ITEMS:
        raise Refused(f"{what} would create more than {MAX_ITEMS:,} items or characters")


def _sized(value: Any) -> Any:
    if isinstance(value, _SIZED):
        _refuse_size(len(value), "this value")
    return value


def _check_int_bits(bits: int, what: str) -> None:
    if bits > MAX_INT_BITS:
        raise Refused(f"{what} would create an integer of more than {MAX_INT_BITS:,} bits")


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
        raise Refused(f"{what}: widths and precisions above {MAX_FORMAT_WIDTH} are not allowed")


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
            joined = sum(len(i) for i in items if isinstance(i, _SIZED)) + len(obj) * len(items)
            _refuse_size(joined, "join()")
            return _sized(method(items))
        return _sized(method(*args, **kwargs))

    return guarded


_GROWING_METHODS = frozenset({"ljust", "rjust", "center", "zfill", "expandtabs", "replace", "translate",
                              "join", "extend", "hex", "encode", "decode", "upper", "lower", "title",
                              "swapcase", "casefold", "capitalize"})


def _getattr(obj: Any, name: str) -> Any:
    if not isinstance(name, str) or name.startswith("_") or name in FORBIDDEN_ATTRIBUTES:
        raise Refused(f"the attribute '{name}' is not allowed in scripts")
    value = getattr(obj, name)
    if name in _GROWING_METHODS:
        if isinstance(obj, (str, bytes, list)):
            return _text_method(name, value, obj)
        if obj in (str, bytes, list):  # unbound, e.g. str.join(",", items)
            return lambda self, *args, **kw: _text_method(name, getattr(self, name), self)(*args, **kw)
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
        raise Refused("sum() adds numbers only; its start value must be a number")
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

