"""Layer 2, run time: the functions that attribute, item and iteration access, the size-prone operators,
f-strings and growing string methods go through, and the builtins model code may use."""

from __future__ import annotations

import operator
import re
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Callable

from RestrictedPython.Guards import full_write_guard, guarded_iter_unpack_sequence, guarded_unpack_sequence

from engine.sandbox.limits import (
    MAX_FORMAT_WIDTH,
    MAX_ITEMS,
    Refused,
    check_int_bits,
    refuse_size,
)
from engine.sandbox.numbers import (
    MATH,
    AliasType,
    SandboxDecimal,
    bounded_text_call,
    check_decimal,
    check_number,
    sandbox_round,
    stdlib_import,
)
from engine.sandbox.policy import FORBIDDEN_ATTRIBUTES
from engine.sandbox.values import CONTAINERS, check_value
from engine.sandbox.variables import data_locals

__all__ = ["SAFE_BUILTINS", "Refused"]

_SIZED = (str, bytes, list, tuple, dict, set, frozenset)
_SPEC_NUMBER = re.compile(r"\d+")


def _sized(value: Any) -> Any:
    if isinstance(value, _SIZED):
        refuse_size(len(value), "this value")
    return value


def _binop(op: str, a: Any, b: Any) -> Any:
    if op == "*":
        if isinstance(a, int) and isinstance(b, int):
            check_int_bits(a.bit_length() + b.bit_length(), "'*'")
        elif isinstance(a, _SIZED) and isinstance(b, int):
            refuse_size(len(a) * b, "'*'")
        elif isinstance(b, _SIZED) and isinstance(a, int):
            refuse_size(len(b) * a, "'*'")
        return a * b
    if op == "**":
        if isinstance(a, int) and isinstance(b, int) and b > 0 and abs(a) > 1:
            check_int_bits(b * a.bit_length(), "'**'")
        return a ** b
    if op == "<<":
        if isinstance(a, int) and isinstance(b, int) and a and b > 0:
            check_int_bits(a.bit_length() + b, "'<<'")
        return a << b
    if op == "+":
        if isinstance(a, _SIZED) and isinstance(b, _SIZED):
            refuse_size(len(a) + len(b), "'+'")
        return a + b
    if isinstance(a, (str, bytes)):  # '%' formatting
        _check_percent_widths(a if isinstance(a, str) else a.decode("latin-1"))
        for value in b if isinstance(b, tuple) else (b,):
            check_number(value, "'%' formatting")
        return _sized(a % check_value(b, "'%' formatting"))
    return a % b


def _check_width(number: str, what: str) -> None:
    if "*" in number or (number and (len(number) > 4 or int(number) > MAX_FORMAT_WIDTH)):
        raise Refused(f"{what}: widths and precisions above {MAX_FORMAT_WIDTH} are not allowed")


def _check_percent_widths(text: str) -> None:
    """Read every conversion of a '%' format as Python does, in one pass (a regex rescanned the rest of the
    text for each '%(' and missed widths after a key with nested parentheses)."""
    end, at = len(text), text.find("%")
    while at != -1:
        at += 1
        if text.startswith("%", at):
            at = text.find("%", at + 1)
            continue
        if text.startswith("(", at):  # a mapping key, parentheses nested: jump from ')' to ')'
            depth, at = 1, at + 1
            while depth:
                close = text.find(")", at)
                if close == -1:
                    return  # an unclosed key: Python refuses the format
                depth += text.count("(", at, close) - 1
                at = close + 1
        while at < end and text[at] in "-+ #0":
            at += 1
        for part in ("width", "precision"):
            if part == "precision":
                if not text.startswith(".", at):
                    break
                at += 1
            start = at
            while at < end and (text[at].isdigit() or text[at] == "*"):
                at += 1
            _check_width(text[start:at], "'%' formatting")
        at = text.find("%", at)


def _format(value: Any, conversion: int, spec: str) -> str:
    for number in _SPEC_NUMBER.findall(spec):
        _check_width(number, "f-string")
    check_number(check_value(value, "f-string"), "f-string")
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
            refuse_size(len(a) + len(b) if isinstance(b, _SIZED) else len(a), "'+='")
            a += b
            return a
        return _binop(_INPLACE[op], a, b)
    return _OTHER_INPLACE[op](a, b)


def _text_method(name: str, method: Callable[..., Any], obj: Any) -> Callable[..., Any]:
    """Wrap the str/bytes/list methods that can grow their result far past their input."""

    def guarded(*args: Any, **kwargs: Any) -> Any:
        if name in ("ljust", "rjust", "center", "zfill") and args and isinstance(args[0], int):
            refuse_size(args[0], f"{name}()")
        elif name == "expandtabs":
            tab = args[0] if args else kwargs.get("tabsize", 8)
            refuse_size(len(obj) + obj.count("\t" if isinstance(obj, str) else b"\t") * tab, name + "()")
        elif name == "replace" and len(args) >= 2:
            old, new = args[0], args[1]
            hits = len(obj) + 1 if not old else obj.count(old)
            refuse_size(len(obj) + hits * len(new), "replace()")
        elif name == "extend" and args and isinstance(args[0], _SIZED):
            refuse_size(len(obj) + len(args[0]), "extend()")
        elif name == "translate" and args and isinstance(args[0], dict):
            longest = max((len(v) for v in args[0].values() if isinstance(v, (str, bytes))), default=1)
            refuse_size(len(obj) * longest, "translate()")
        elif name == "join" and args:
            items = list(args[0])
            joined = sum(len(i) for i in items if isinstance(i, _SIZED)) + len(obj) * len(items)
            refuse_size(joined, "join()")
            return _sized(method(items))
        return _sized(method(*args, **kwargs))

    return guarded


_GROWING_METHODS = frozenset({"ljust", "rjust", "center", "zfill", "expandtabs", "replace", "translate",
                              "join", "extend", "hex", "encode", "decode", "upper", "lower", "title",
                              "swapcase", "casefold", "capitalize", "copy"})
_COMPARING_METHODS = frozenset({"sort", "index", "count", "remove"})  # compare items as deep as they go
# methods of dicts and sets that hash or compare their arguments (a tuple of shared parts hashes them all)
_HASHING_METHODS = frozenset({"get", "setdefault", "pop", "add", "discard", "remove", "update", "fromkeys",
                              "union", "intersection", "difference", "symmetric_difference", "issubset",
                              "issuperset", "isdisjoint", "intersection_update", "difference_update",
                              "symmetric_difference_update"})


def _getattr(obj: Any, name: str) -> Any:
    if not isinstance(name, str) or name.startswith("_") or name in FORBIDDEN_ATTRIBUTES:
        raise Refused(f"the attribute '{name}' is not allowed in scripts")
    value = getattr(obj, name)
    if name in _GROWING_METHODS:
        if isinstance(obj, (str, bytes, list)):
            return _text_method(name, value, obj)
        if obj in _UNBOUND:  # unbound, e.g. str.join(",", items)
            return lambda self, *args, **kw: _text_method(name, getattr(self, name), self)(*args, **kw)
    elif name in _HASHING_METHODS and (isinstance(obj, (dict, set, frozenset)) or obj in _HASHED):
        return _checking_arguments(name, value)
    elif name in _COMPARING_METHODS and isinstance(obj, (list, tuple)):
        check_value(obj, f"{name}()")
        return _checking_arguments(name, value)
    elif name == "from_bytes" and (obj is int or isinstance(obj, int)):
        return lambda data, *args, **kw: _INT(value(data, *args, **kw))  # sized like int()
    elif name in ("strftime", "strptime"):
        return bounded_text_call(name, value)
    elif name == "as_integer_ratio" and isinstance(obj, Decimal):
        check_decimal(obj, "as_integer_ratio()")
    elif name == "to_bytes" and isinstance(obj, int):
        return _sized_first_argument("to_bytes", value)
    return value


def _sized_first_argument(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
    def sized(length: int = 1, *args: Any, **kwargs: Any) -> Any:
        refuse_size(length, f"{name}()")
        return method(length, *args, **kwargs)

    return sized


def _checking_arguments(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
    def checked(*args: Any, **kwargs: Any) -> Any:
        check_value(args, f"{name}()")
        return method(*args, **kwargs)

    return checked


def _getitem(obj: Any, index: Any) -> Any:
    if isinstance(index, slice):
        return _sized(obj[index])
    if isinstance(index, tuple):
        check_value(index, "this key")  # hashing a tuple walks all of it
    return obj[index]


def _compared(value: Any) -> Any:
    """An operand of ==, <, in...: comparing nested values walks all of them."""
    if isinstance(value, CONTAINERS):
        check_value(value, "this comparison")
    return value


def _write(obj: Any) -> Any:
    return full_write_guard(obj)


def _range(*args: int) -> range:
    result = range(*args)
    try:
        size = len(result)
    except OverflowError:
        size = MAX_ITEMS + 1
    refuse_size(size, "range()")
    return result


def _sum(values: Any, start: Any = 0) -> Any:
    if not isinstance(start, (int, float, Decimal, timedelta)):
        raise Refused("sum() adds numbers only; its start value must be a number")
    return sum(_materialized(values, "sum()"), start)  # sized: adding huge numbers takes long too


def _materialized(iterable: Any, what: str) -> Any:
    """The items of ``iterable``, checked: sorting, hashing or comparing them walks every one."""
    items = iterable if isinstance(iterable, CONTAINERS) else list(iterable)
    refuse_size(len(items), what)
    return check_value(items, what)


def _stand_in(base: type, new: Callable[..., Any]) -> type:
    """A type that model code uses like ``base`` (isinstance answers for ``base``) but that builds through
    ``new``, which returns a plain ``base`` value."""
    return AliasType(base.__name__, (base,), {"__new__": new, "_real": base, "__slots__": ()})


def _new_str(cls: type, value: Any = "", *args: Any) -> str:
    return str(check_value(value, "str()"), *args)


def _new_int(cls: type, *args: Any, **kwargs: Any) -> int:
    if args and isinstance(args[0], Decimal):
        check_decimal(args[0], "int()")  # a Decimal from outside: task data, a connector's result
    result = int(*args, **kwargs)
    check_int_bits(result.bit_length(), "int()")
    return result


def _new_copy(base: type) -> Callable[..., Any]:
    def new(cls: type, *args: Any, **kwargs: Any) -> Any:
        if args and base in (set, frozenset, dict):  # hashing the items walks them
            args = (_materialized(args[0], f"{base.__name__}()"), *args[1:])
        result = base(*args, **kwargs)
        refuse_size(len(result), f"{base.__name__}()")
        return result

    return new


_STR, _INT = _stand_in(str, _new_str), _stand_in(int, _new_int)
_COPIES = {base: _stand_in(base, _new_copy(base)) for base in (list, tuple, set, dict)}
_UNBOUND = {str: str, bytes: bytes, list: list, _STR: str, _COPIES[list]: list}
_HASHED = (dict, set, frozenset, _COPIES[dict], _COPIES[set])


def _sorted(iterable: Any, *, key: Any = None, reverse: bool = False) -> list[Any]:
    return sorted(_materialized(iterable, "sorted()"), key=key, reverse=reverse)


def _extreme(function: Callable[..., Any]) -> Callable[..., Any]:
    def bounded(*args: Any, **kwargs: Any) -> Any:
        items = args if len(args) != 1 else _materialized(args[0], f"{function.__name__}()")
        return function(check_value(items, f"{function.__name__}()"), **kwargs)

    return bounded


def _print(*values: Any, sep: Any = None, end: Any = None, flush: bool = False) -> None:
    """``print`` for models drawn elsewhere (SpiffWorkflow's examples print): it writes nothing, anywhere,
    and never reads its arguments (so no ``__str__`` runs). It has no ``file`` parameter: it can reach no
    stream or object."""
    return None


def _apply(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return func(*args, **kwargs)


_EXCEPTIONS = (Exception, ArithmeticError, LookupError, ValueError, TypeError, KeyError, IndexError,
               ZeroDivisionError)
SAFE_BUILTINS: dict[str, Any] = {
    **{f.__name__: f for f in (len, abs, any, all, enumerate, zip, float, bool, isinstance, *_EXCEPTIONS)},
    "True": True, "False": False, "None": None,
    "range": _range, "sum": _sum, "round": sandbox_round, "sorted": _sorted, "min": _extreme(min),
    "max": _extreme(max), "str": _STR, "int": _INT, **{base.__name__: t for base, t in _COPIES.items()},
    "print": _print,
    "datetime": datetime, "timedelta": timedelta, "date": date, "Decimal": SandboxDecimal, "math": MATH,
    # RestrictedPython's hooks and what the C code of datetime calls; user code cannot name them ('_').
    "_getattr_": _getattr, "_getitem_": _getitem, "_getiter_": iter, "_write_": _write,
    "_iter_unpack_sequence_": guarded_iter_unpack_sequence, "_unpack_sequence_": guarded_unpack_sequence,
    "_inplacevar_": _inplacevar, "_apply_": _apply,
    "_binop_": _binop, "_format_": _format, "_sized_": _sized, "_compared_": _compared,
    "_locals_": data_locals,  # what a call locals() becomes
    "__import__": stdlib_import,
}
