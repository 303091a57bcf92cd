"""Server-side validation of task data against its form-js definition.

The browser validates too, but only this check counts: required fields, types, min/max limits,
lengths, patterns and select options. Errors are per field, in words an operator can act on.
"""

from __future__ import annotations

import math
import re
from typing import Any

from engine.errors import ValidationFailed

INPUT_TYPES = {"textfield", "textarea", "number", "checkbox", "select", "radio", "datetime", "checklist",
               "taglist", "expression", "dynamiclist"}


def fields(form: dict[str, Any]) -> list[dict[str, Any]]:
    """The input components of a form, groups flattened."""
    result = []
    for component in form.get("components", []):
        # a list of rows: checked row by row
        if component.get("type") == "dynamiclist" and component.get("key"):
            result.append(component)
        elif component.get("components"):
            result += fields(component)
        elif component.get("key") and component.get("type") in INPUT_TYPES:
            result.append(component)
    return result


def _number(value: Any) -> float | None:
    """The value as a finite number, or None (NaN and infinity would slip past every min/max check)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value) if any(c in value.lower() for c in ".en") else int(value)
        except ValueError:
            return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return None


def _check(component: dict[str, Any], value: Any) -> tuple[Any, str | None]:
    kind, rules = component["type"], component.get("validate", {}) or {}
    label = component.get("label") or component["key"]
    if kind == "number":
        number = _number(value)
        if number is None:
            return value, f"{label} must be a number."
        if rules.get("min") is not None and number < rules["min"]:
            return number, f"{label} must be at least {rules['min']}."
        if rules.get("max") is not None and number > rules["max"]:
            return number, f"{label} must be at most {rules['max']}."
        return number, None
    if kind == "dynamiclist":
        if not isinstance(value, list) or not all(isinstance(row, dict) for row in value):
            return value, f"{label} must be a list of rows."
        rows = []
        for index, row in enumerate(value, start=1):
            try:
                rows.append(validate({"components": component.get("components", [])}, row))
            except ValidationFailed as exc:
                problems = "; ".join(str(v) for v in (exc.errors or {}).values())
                return value, f"{label}, row {index}: {problems}"
        return rows, None
    if kind == "checkbox":
        return (value, None) if isinstance(value, bool) else (value, f"{label} must be true or false.")
    if kind in ("select", "radio"):
        options = [v.get("value") for v in component.get("values", [])]
        if options and value not in options:
            return value, f"{label} must be one of: {', '.join(map(str, options))}."
        return value, None
    if kind in ("checklist", "taglist"):
        return (value, None) if isinstance(value, list) else (value, f"{label} must be a list.")
    if not isinstance(value, str):
        return value, f"{label} must be text."
    if rules.get("minLength") is not None and len(value) < rules["minLength"]:
        return value, f"{label} needs at least {rules['minLength']} characters."
    if rules.get("maxLength") is not None and len(value) > rules["maxLength"]:
        return value, f"{label} allows at most {rules['maxLength']} characters."
    if rules.get("pattern") and not re.fullmatch(rules["pattern"], value):
        return value, f"{label} does not have the expected format."
    return value, None


def validate(form: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    """The submitted data, typed; raises ValidationFailed naming every wrong field."""
    if not isinstance(data, dict):
        raise ValidationFailed("Task data must be a JSON object.", errors={"data": "not an object"})
    cleaned, errors = dict(data), {}
    for component in fields(form):
        key = component["key"]
        if component["type"] == "expression":
            continue
        required = (component.get("validate") or {}).get("required", False)
        value = data.get(key)
        if value is None or value == "" or value == []:
            if required:
                errors[key] = f"{component.get('label') or key} is required."
            continue
        cleaned[key], error = _check(component, value)
        if error:
            errors[key] = error
    if errors:
        raise ValidationFailed("Some fields are not valid.", errors=errors)
    return cleaned
