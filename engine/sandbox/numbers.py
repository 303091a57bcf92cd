"""Numbers, dates and the standard library's C functions, bounded before they run.

``Decimal`` builds only Decimals within MAX_DECIMAL_EXPONENT and MAX_DECIMAL_DIGITS, and every run
computes in ``limits.RUN.decimal_context`` (28 digits, the same exponent range; overflow raises): so
``int()`` or ``f'{d:f}'`` of a Decimal stays small. ``round``, ``math.factorial``, ``math.comb``/``perm``
and the ``math`` functions that take integers are sized before they run. ``strftime``/``strptime``
formats are short, and the C code of ``strftime`` may import ``time`` and ``_strptime`` (it looks
``__import__`` up in the builtins of the calling code, here the sandbox's): only those two modules, which
model code can neither name nor reach.
"""

from __future__ import annotations

import decimal
import importlib
import math
from types import SimpleNamespace
from typing import Any, Callable

from engine.sandbox.limits import (
    MAX_DECIMAL_DIGITS,
    MAX_DECIMAL_EXPONENT,
    MAX_FORMAT_WIDTH,
    Refused,
    check_int_bits,
)

_LOG2_10 = math.log2(10)


class AliasType(type):
    """The metaclass of the sandbox's stand-ins for builtin types: ``isinstance(x, Decimal)`` and
    ``issubclass`` answer for the real type, so model code cannot tell the stand-in from it."""

    _real: type  # the type the stand-in answers for (model code cannot name attributes starting with '_')

    def __instancecheck__(cls, obj: Any) -> bool:
        return isinstance(obj, cls._real)

    def __subclasscheck__(cls, sub: Any) -> bool:
        return issubclass(sub, cls._real)


def check_decimal(value: decimal.Decimal, what: str = "Decimal()") -> decimal.Decimal:
    if value.is_finite():
        exponent, digits = value.as_tuple().exponent, len(value.as_tuple().digits)
        if digits > MAX_DECIMAL_DIGITS:
            raise Refused(f"{what}: a Decimal may have at most {MAX_DECIMAL_DIGITS:,} digits")
        if not (-MAX_DECIMAL_EXPONENT <= int(exponent) and value.adjusted() <= MAX_DECIMAL_EXPONENT):
            raise Refused(f"{what}: a Decimal must lie within 1E-{MAX_DECIMAL_EXPONENT} and "
                          f"1E+{MAX_DECIMAL_EXPONENT + 1}")
    return value


class SandboxDecimal(decimal.Decimal, metaclass=AliasType):
    """``Decimal`` as model code sees it: builds a plain ``decimal.Decimal``, bounded."""

    _real = decimal.Decimal

    def __new__(cls, value: Any = "0", context: Any = None) -> decimal.Decimal:  # type: ignore[misc]
        if isinstance(value, int):
            check_int_bits(value.bit_length(), "Decimal()")
        elif isinstance(value, (str, tuple, list)) and len(value) > MAX_DECIMAL_DIGITS + 100:
            raise Refused(f"Decimal(): a Decimal may have at most {MAX_DECIMAL_DIGITS:,} digits")
        return check_decimal(decimal.Decimal(value))


SandboxDecimal.__name__ = SandboxDecimal.__qualname__ = "Decimal"


def check_number(value: Any, what: str) -> Any:
    """Refuse an integer or a Decimal from outside the sandbox (task data, a connector's result) that no
    sandbox operation could have made: converting or formatting it would take long."""
    if isinstance(value, int):
        check_int_bits(value.bit_length(), what)
    elif isinstance(value, decimal.Decimal):
        check_decimal(value, what)
    return value


def sandbox_round(number: Any, ndigits: int | None = None) -> Any:
    check_number(number, "round()")
    if ndigits is None:
        return round(number)
    if isinstance(number, int) and isinstance(ndigits, int) and ndigits < 0:
        check_int_bits(int(-ndigits * _LOG2_10), "round()")  # it computes 10 ** -ndigits
    return round(number, ndigits)


def _int_args(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    def bounded(*args: Any) -> Any:
        for arg in args:
            check_number(arg, f"math.{name}()")
        return function(*args)

    bounded.__name__ = name
    return bounded


def _factorial(n: int) -> int:
    if isinstance(n, int) and n > 1:
        check_int_bits(int(n * math.log2(n)), "math.factorial()")
    return math.factorial(n)


def _perm(n: int, k: int | None = None) -> int:
    if isinstance(n, int) and n > 1:
        taken = n if k is None else min(max(k, 0), n)
        check_int_bits(int(taken * math.log2(n)), "math.perm()")
    return math.perm(n, k)


def _comb(n: int, k: int) -> int:
    if isinstance(n, int) and isinstance(k, int) and n > 1 and 0 <= k <= n:
        check_int_bits(int(min(k, n - k) * math.log2(n)), "math.comb()")
    return math.comb(n, k)


_FLOAT_FUNCTIONS = ("sqrt", "exp", "log", "log2", "log10", "pow", "fabs", "fsum", "isclose", "isfinite",
                    "isinf", "isnan", "copysign", "hypot", "sin", "cos", "tan", "asin", "acos", "atan",
                    "atan2", "degrees", "radians", "fmod", "modf", "remainder", "ceil", "floor", "trunc")
MATH = SimpleNamespace(
    pi=math.pi, e=math.e, tau=math.tau, inf=math.inf, nan=math.nan,
    factorial=_factorial, perm=_perm, comb=_comb,
    **{name: _int_args(name, getattr(math, name)) for name in (*_FLOAT_FUNCTIONS, "gcd", "isqrt")})


def bounded_text_call(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
    """``strftime``/``strptime``: formats and dates as text at most MAX_FORMAT_WIDTH characters long."""

    def guarded(*args: Any, **kwargs: Any) -> Any:
        for arg in (*args, *kwargs.values()):
            if isinstance(arg, str) and len(arg) > MAX_FORMAT_WIDTH:
                raise Refused(f"{name}(): formats longer than {MAX_FORMAT_WIDTH} characters are not allowed")
        return method(*args, **kwargs)

    return guarded


_STDLIB_IMPORTS = frozenset({"time", "_strptime"})


def stdlib_import(name: str, globals: Any = None, locals: Any = None, fromlist: Any = (),
                  level: int = 0) -> Any:
    """``__import__`` for the C code of ``datetime`` only (model code cannot name it: it starts with '_')."""
    if name not in _STDLIB_IMPORTS or level:
        raise Refused("imports are not allowed in scripts")
    return importlib.import_module(name)


__all__ = ["MATH", "check_number", "SandboxDecimal", "bounded_text_call", "check_decimal",
           "sandbox_round", "stdlib_import"]
