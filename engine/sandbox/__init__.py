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

Layer 1 lives in ``policy``, layer 2 in ``guards``, layer 3 and the script engines in ``environment``.
"""

from engine.sandbox.environment import SandboxEnvironment, SandboxScriptEngine
from engine.sandbox.policy import check_expression, check_script

__all__ = ["SandboxEnvironment", "SandboxScriptEngine", "check_expression", "check_script"]
