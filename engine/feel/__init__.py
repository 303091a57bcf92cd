"""gmpflow's FEEL subset (DMN's expression language), parsed by hand and interpreted: see engine/README.md.

``parse_expression``/``parse_unary_tests`` turn text into trees (``FeelSyntaxError`` names what is refused);
``Evaluator`` evaluates them over plain values. No text ever reaches Python's ``eval``.
"""

from engine.feel.evaluate import Evaluator, Range, from_data, to_data
from engine.feel.functions import FUNCTION_NAMES, FeelError
from engine.feel.lexer import FeelSyntaxError
from engine.feel.parser import parse_expression, parse_unary_tests, uses_input

__all__ = [
    "FUNCTION_NAMES",
    "Evaluator",
    "FeelError",
    "FeelSyntaxError",
    "Range",
    "from_data",
    "parse_expression",
    "parse_unary_tests",
    "to_data",
    "uses_input",
]
