"""Layer 3 and the script engines: model code runs with the guarded builtins, under a deadline, and every
failure becomes ScriptFailed (or ScriptRejected at compile time) naming the line and the element."""

from __future__ import annotations

import decimal
import sys
import time
from types import CodeType, FrameType, TracebackType
from typing import Any

from engine.errors import ConnectorError, ScriptFailed
from engine.sandbox.guards import SAFE_BUILTINS, Refused
from engine.sandbox.limits import COLLECTIONS, RUN
from engine.sandbox.policy import FILENAME, compiled
from engine.sandbox.values import check_stored, check_value

DEFAULT_MAX_SECONDS = 1.0
LIMIT_EXCEEDED = "script_limit_exceeded"  # the code of a ScriptFailed that a guard or the deadline stopped


class _Timeout(BaseException):
    pass


def _namespace(*sources: dict[str, Any] | None) -> dict[str, Any]:
    """The globals: later sources win; keys starting with '_' stay out (user code cannot name them)."""
    namespace = {"__builtins__": SAFE_BUILTINS}
    for source in sources:
        if source:
            namespace.update((k, v) for k, v in source.items() if not k.startswith("_"))
    return namespace


def _describe(err: Exception) -> str:
    """The error's type and text; the text only when its arguments are small (it is built outside the
    deadline, and ``raise ValueError(value)`` may carry any value)."""
    if isinstance(err, decimal.DecimalException):  # its text is the list of signals
        return f"{type(err).__name__}: the Decimal operation is invalid or its result out of range"
    try:
        check_value(err.args, "the error")
        text = str(err)
    except Refused:
        text = "(its details are too large to show)"
    return f"{type(err).__name__}: {text[:2000]}" if text else type(err).__name__


def _user_line(tb: TracebackType | None) -> int | None:
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == FILENAME:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


class SandboxEnvironment:
    """Evaluates expressions and runs scripts in the sandbox, with TaskDataEnvironment's data semantics.

    ``execute`` writes the variables a script assigns (minus functions and classes) back to the task
    data and removes those it deletes; if the script fails, the task data is left unchanged.
    """

    def __init__(self, environment_globals: dict[str, Any] | None = None, *,
                 max_seconds: float = DEFAULT_MAX_SECONDS) -> None:
        self.globals = environment_globals or {}  # what every expression and script may read
        self.max_seconds = max_seconds

    def evaluate(self, expression: str, context: dict[str, Any],
                 external_context: dict[str, Any] | None = None) -> Any:
        """Return the expression's value; raise ScriptRejected or ScriptFailed."""
        code = compiled(expression, "eval")
        return self._run(code, _namespace(self.globals, external_context, context),
                         injected={**self.globals, **(external_context or {})}, kept=None)

    def execute(self, script: str, context: dict[str, Any],
                external_context: dict[str, Any] | None = None) -> bool:
        """Run the script and update ``context`` (the task data) with what it assigned."""
        code = compiled(script, "exec")
        namespace = _namespace(self.globals, external_context, context)
        hidden = set(self.globals) | set(external_context or {}) | {"__builtins__"}
        kept: dict[str, Any] = {}  # filled by _run: the variables to write back, checked
        self._run(code, namespace, injected={**self.globals, **(external_context or {})}, kept=(hidden, kept))
        for key in [k for k in context if not k.startswith("_") and k not in namespace]:
            del context[key]
        context.update(kept)
        return True

    def call_service(self, context: dict[str, Any], **kwargs: Any) -> Any:
        raise ConnectorError("service calls go through SandboxScriptEngine's service_handler",
                             code="service_handler_missing", retryable=False)

    def _run(self, code: CodeType, namespace: dict[str, Any], *, injected: dict[str, Any],
             kept: tuple[set[str], dict[str, Any]] | None) -> Any:
        """Run ``code`` and return its value, which must be small enough to copy and show. With ``kept``
        (the names not to write back, and the dict to fill), a script's variables are collected instead:
        each small enough to copy and of a type the instance's state can store. ``injected`` (what the
        environment and the caller put beside the task data) is what ``locals()`` leaves out."""
        # The limit is the script's own CPU time: a machine busy with other work, or a garbage collection
        # that happens to run in this thread, must not fail a sound script. The cheap wall clock is checked
        # on every opcode; only when it passes the deadline is the thread's CPU time read (12x the cost),
        # less what the collector spent, and the deadline moved by what the script has not used.
        started = time.thread_time() - COLLECTIONS.spent
        deadline = time.perf_counter() + self.max_seconds
        RUN.allocated = 0

        def local_trace(frame: FrameType, event: str, arg: Any) -> Any:
            # Checked on every opcode ('while True: pass' emits no line events); once past the
            # limit every opcode raises again, so no handler can keep a loop going.
            nonlocal deadline
            if time.perf_counter() > deadline:
                used = time.thread_time() - COLLECTIONS.spent - started
                if used >= self.max_seconds:
                    raise _Timeout
                deadline = time.perf_counter() + self.max_seconds - used
            return local_trace

        def global_trace(frame: FrameType, event: str, arg: Any) -> Any:
            if frame.f_code.co_filename != FILENAME:
                return None  # our guards and the standard library run untraced
            frame.f_trace_opcodes = True
            return local_trace(frame, event, arg)

        previous, previous_decimal, previous_injected = sys.gettrace(), decimal.getcontext(), RUN.injected
        sys.settrace(global_trace)
        try:
            decimal.setcontext(RUN.decimal_context)
            RUN.injected = injected
            value = eval(code, namespace)
            if kept is None:
                return check_value(value, "the result")
            hidden, variables = kept
            for name, variable in namespace.items():
                if name not in hidden and not callable(variable):
                    check_stored(variable, name)
                    variables[name] = variable
            return value
        except _Timeout:
            raise self._failed(f"stopped after {self.max_seconds:g} s: the code ran too long "
                               "(an endless loop?)", sys.exc_info()[2], code=LIMIT_EXCEEDED) from None
        except Refused as err:
            failed = self._failed(str(err), err.__traceback__, code=LIMIT_EXCEEDED)
            failed.retryable = False  # type: ignore[attr-defined]  # refused again on retry: incident at once
            raise failed from None
        except (MemoryError, RecursionError) as err:
            what = "ran out of memory" if isinstance(err, MemoryError) else "called itself too deeply"
            raise self._failed(what, err.__traceback__, code=LIMIT_EXCEEDED) from None
        except Exception as err:  # user code may raise anything; report it, never leak it
            raise self._failed(_describe(err), err.__traceback__) from err
        finally:
            sys.settrace(previous)
            decimal.setcontext(previous_decimal)
            RUN.injected = previous_injected

    @staticmethod
    def _failed(message: str, tb: TracebackType | None, *, code: str | None = None) -> ScriptFailed:
        line = _user_line(tb)
        return ScriptFailed(f"line {line}: {message}" if line else message, line=line, code=code)
