"""The sandbox in which every expression and script of an uploaded model runs.

Models arrive through a browser, so an expression must never become code
execution on the server. Three layers, each of which would stop most escapes
on its own:

1. Compile time (RestrictedPython plus our policy): no imports, no names or
   attributes starting with ``_``, no introspection attributes (``gi_frame``,
   ``f_back``, ``mro``...), no ``str.format``, no ``eval``/``open``/``getattr``...
   ``print`` (models drawn for SpiffWorkflow call it) writes nothing and takes no ``file``.
2. Run time guards: attribute, item and iteration access go through guard
   functions; ``*``, ``**``, ``<<``, ``+``, ``%``, f-strings, the string
   methods that can grow text, ``int``/``str``/``list``/``dict``/``set``/
   ``sorted``/``min``/``max``/``sum``/``round``, ``Decimal`` and ``math`` are
   stand-ins that size what they would build and refuse it before doing the
   work (a C-level operation holds the GIL: no deadline could stop it, and
   every other request would wait). Comparisons and hashing of nested values
   are sized too (``values``), and so is every value a script leaves behind.
   Decimals compute in a bounded context. Limits live in ``limits``.
3. A deadline: a ``sys.settrace`` hook (thread-safe, no signals) stops the
   code after ``max_seconds`` of its own CPU time (not wall time: a busy machine
   fails no sound script; nor the garbage collector's pauses in its thread,
   bounded by the heap, not by the script); the previous trace function is
   restored. With
   it, an allocation budget per run: the safety net for many small steps.

Compile-time refusals raise ``ScriptRejected`` (the linter's ``static`` check
also refuses constant parts that pass a limit, e.g. ``2**10**8``); anything
that goes wrong while the code runs raises ``ScriptFailed``, with the code
``script_limit_exceeded`` when a guard or the deadline stopped it. Both carry
``line`` when it is known.

Layer 1 lives in ``policy``, layer 2 in ``guards`` (with ``numbers`` and ``values``), layer 3 and the
script engines in ``environment``.
"""

from engine.sandbox.environment import SandboxEnvironment
from engine.sandbox.static import check_expression, check_script

__all__ = ["SandboxEnvironment", "check_expression", "check_script"]
