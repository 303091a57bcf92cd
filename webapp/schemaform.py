"""An HTML form generated from a master-data type's JSON Schema, and the data read back from it.

Every input is named by the JSON pointer of its value (``/supplier``, ``/steps/0/parameters/1/target``),
so the engine's validation errors (keyed by JSON pointer) land next to their field. Objects become
field groups; arrays of objects become tables with one row per item and one empty row to add one
(empty rows are left out); arrays of plain values are one comma-separated field.
"""

from __future__ import annotations

from typing import Any

from werkzeug.datastructures import MultiDict

SCALARS = ("string", "integer", "number", "boolean")


def label_of(name: str, schema: dict[str, Any]) -> str:
    return str(schema.get("title") or name.replace("_", " ").capitalize())


def resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    """Follow local ``$ref``s (``#/$defs/...``)."""
    seen = 0
    while isinstance(schema, dict) and "$ref" in schema and seen < 20:
        ref = str(schema["$ref"])
        target: Any = root
        if not ref.startswith("#/"):
            return {k: v for k, v in schema.items() if k != "$ref"}
        for part in ref[2:].split("/"):
            target = target.get(part, {}) if isinstance(target, dict) else {}
        schema = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
        seen += 1
    return schema


def _type(schema: dict[str, Any]) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    if kind is None and "enum" in schema:
        return "enum"
    if kind is None and "properties" in schema:
        return "object"
    return str(kind or "string")


def _scalar(pointer: str, name: str, schema: dict[str, Any], value: Any, required: bool,
            errors: dict[str, str]) -> dict[str, Any]:
    kind = _type(schema)
    node: dict[str, Any] = {"kind": "scalar", "pointer": pointer, "name": name,
                            "label": label_of(name, schema), "required": required,
                            "error": errors.get(pointer), "hint": schema.get("description"),
                            "value": "" if value is None else value, "input": "text", "options": None}
    if "enum" in schema:
        node["input"], node["options"] = "select", [str(o) for o in schema["enum"]]
    elif kind == "boolean":
        node["input"] = "checkbox"
    elif kind in ("integer", "number"):
        node["input"] = "number"
        node["step"] = "1" if kind == "integer" else "any"
        limits = [f"min {schema['minimum']}" if "minimum" in schema else "",
                  f"max {schema['maximum']}" if "maximum" in schema else ""]
        if any(limits):
            node["hint"] = " · ".join(x for x in [node["hint"], ", ".join(x for x in limits if x)] if x)
    elif kind == "string" and int(schema.get("maxLength", 0)) > 500:
        node["input"] = "textarea"
    elif schema.get("format") == "date":
        node["input"] = "date"
    elif kind == "array":
        node["input"] = "list"
        node["value"] = ", ".join(str(v) for v in value) if isinstance(value, list) else node["value"]
        node["hint"] = " · ".join(x for x in [node["hint"], "comma separated"] if x)
    if schema.get("x-ref"):
        node["hint"] = " · ".join(x for x in [node["hint"], f"key of a {schema['x-ref']} record"] if x)
    return node


def build(schema: dict[str, Any], data: Any, errors: dict[str, str], root: dict[str, Any] | None = None,
          pointer: str = "", name: str = "", required: bool = False) -> dict[str, Any]:
    """The node tree the template renders (``kind``: object, table, scalar)."""
    root = root if root is not None else schema
    schema = resolve(schema, root)
    kind = _type(schema)
    if kind == "object":
        data = data if isinstance(data, dict) else {}
        needed = set(schema.get("required", []))
        children = [build(sub, data.get(key), errors, root, f"{pointer}/{key}", key, key in needed)
                    for key, sub in schema.get("properties", {}).items()]
        return {"kind": "object", "pointer": pointer, "name": name,
                "label": label_of(name, schema) if name else "",
                "children": children, "error": errors.get(pointer) if pointer else None}
    if kind == "array":
        items = resolve(schema.get("items", {}), root)
        if _type(items) == "object":
            rows = list(data) if isinstance(data, list) else []
            rows.append({})  # the empty row that adds one
            columns = [(key, sub) for key, sub in items.get("properties", {}).items()]
            needed = set(items.get("required", []))
            body = [[build(sub, row.get(key) if isinstance(row, dict) else None, errors, root,
                           f"{pointer}/{i}/{key}", key, key in needed) for key, sub in columns]
                    for i, row in enumerate(rows)]
            return {"kind": "table", "pointer": pointer, "name": name, "label": label_of(name, schema),
                    "columns": [label_of(k, resolve(s, root)) for k, s in columns], "rows": body,
                    "row_errors": [errors.get(f"{pointer}/{i}") for i in range(len(rows))],
                    "error": errors.get(pointer), "hint": schema.get("description")}
    return _scalar(pointer, name, schema, data, required, errors)


def _coerce(text: str, schema: dict[str, Any]) -> Any:
    kind = _type(schema)
    if kind == "integer":
        try:
            return int(text)
        except ValueError:
            return text
    if kind == "number":
        try:
            number = float(text)
        except ValueError:
            return text
        return int(number) if number.is_integer() and "." not in text else number
    if kind == "array":
        item_schema = schema.get("items", {})
        return [_coerce(part.strip(), item_schema) for part in text.split(",") if part.strip()]
    return text


def _empty(value: Any) -> bool:
    if isinstance(value, dict):
        return all(_empty(v) for v in value.values())
    if isinstance(value, list):
        return all(_empty(v) for v in value)
    return value in (None, "", False)


def parse(schema: dict[str, Any], form: MultiDict[str, str], root: dict[str, Any] | None = None,
          pointer: str = "") -> Any:
    """The data the form holds for ``schema`` at ``pointer`` (empty fields left out)."""
    root = root if root is not None else schema
    schema = resolve(schema, root)
    kind = _type(schema)
    if kind == "object":
        result: dict[str, Any] = {}
        for key, sub in schema.get("properties", {}).items():
            value = parse(sub, form, root, f"{pointer}/{key}")
            if value is not None:
                result[key] = value
        return result
    if kind == "array" and _type(resolve(schema.get("items", {}), root)) == "object":
        prefix = f"{pointer}/"
        indices = sorted({int(k[len(prefix):].split("/", 1)[0]) for k in form.keys()
                          if k.startswith(prefix) and k[len(prefix):].split("/", 1)[0].isdigit()})
        rows = [parse(schema.get("items", {}), form, root, f"{pointer}/{i}") for i in indices]
        rows = [r for r in rows if not _empty(r)]
        return rows or None  # no rows: left out (an empty table is not an empty list)
    if kind == "boolean":
        if f"{pointer}?" not in form:
            return None
        checked = form.get(pointer) == "on"
        # an unchecked box whose schema defaults to false says nothing the record must hold: left out, so
        # that editing a record does not add the default to every row (noise in the change control's diff)
        return None if not checked and schema.get("default") is False else checked
    text = (form.get(pointer) or "").strip()
    if text == "":
        return None
    return _coerce(text, schema)
