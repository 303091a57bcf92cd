"""Query parameters, declared once per operation as a marshmallow schema: ``@operation(query=...)``
documents it (apispec's MarshmallowPlugin turns each field into a parameter) and the view reads it with
``query_args()``, which loads the same schema. A bad value is a 400 problem ``bad_filter`` naming it.

Why marshmallow: apispec, which already writes the document, documents a marshmallow schema natively, so
one declaration gives both the parameter list and its parsing (before, each parameter was declared twice,
as a document dict and as a ``q_*`` call, and the two could drift). Request bodies stay JSON Schema
(``schemas.REQUESTS``): the OpenAPI 3.1 dialect itself, documented and validated from the same dict.
"""

from __future__ import annotations

from datetime import timezone
from functools import cache
from typing import Any

from flask import request
from marshmallow import EXCLUDE, Schema, ValidationError, fields, pre_load, validate

from engine.errors import ValidationFailed
from webapp.api.openapi import declared

MAX_ID = 999_999_999_999_999_999


def _no_nul(value: str) -> None:
    """NUL is refused everywhere (PostgreSQL cannot store it); a plain function, so not documented."""
    if "\x00" in value:
        raise ValidationError("must not contain NUL")


class Query(Schema):
    """Parameters are optional; an empty value counts as absent; parameters not declared are ignored."""

    class Meta:
        unknown = EXCLUDE

    @pre_load
    def _drop_empty(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        return {name: value for name, value in data.items() if value != ""}


def text(max_length: int = 200, **metadata: Any) -> fields.String:
    too_long = f"must be text of at most {max_length} characters"
    return fields.String(validate=[validate.Length(max=max_length, error=too_long), _no_nul],
                         metadata=metadata)


def whole(default: int | None = None, minimum: int = 0, maximum: int = MAX_ID) -> fields.Integer:
    number = fields.Integer(validate=validate.Range(minimum, maximum, error=f"must be between {minimum} and "
                                                                            f"{maximum}"),
                            error_messages={"invalid": "must be a whole number"})
    if default is not None:  # without one, absent stays absent (a load_default None documents null)
        number.load_default = default
    return number


def moment(**metadata: Any) -> fields.AwareDateTime:
    """An ISO 8601 date-time; without a zone, UTC."""
    return fields.AwareDateTime(default_timezone=timezone.utc, metadata=metadata, error_messages={
        "invalid": "must be an ISO 8601 date-time, e.g. 2026-01-05T08:00:00Z"})


def choice(choices: tuple[str, ...], *, typed: bool = True, **metadata: Any) -> fields.Field:
    """One of ``choices``; ``typed=False`` documents it as a bare ``enum`` (no ``type``)."""
    one_of = validate.OneOf(choices, error=f"must be one of {', '.join(choices)}")
    field = fields.String if typed else fields.Raw
    return field(validate=one_of, metadata=metadata)


class Flag(fields.Boolean):
    """true/1/yes or false/0/no, in any case."""

    truthy = {"true", "1", "yes"}  # noqa: RUF012 (marshmallow's class attributes)
    falsy = {"false", "0", "no"}  # noqa: RUF012
    default_error_messages = {"invalid": "must be true or false"}  # noqa: RUF012

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        return bool(super()._deserialize(value.lower() if isinstance(value, str) else value, attr, data,
                                         **kwargs))


def paging() -> tuple[fields.Integer, fields.Integer]:
    """``limit, offset = paging()``, last in a listing's schema."""
    return whole(100, minimum=1, maximum=500), whole(0)


@cache
def _loader(schema: type[Query]) -> Query:
    """One instance per schema, shared by every request: building one binds and copies all its fields (half
    of a listing's parameter handling), and ``load`` keeps no state on the instance."""
    return schema()


def query_args() -> dict[str, Any]:
    """The current operation's query parameters, loaded with the schema its ``@operation`` declares."""
    schema: type[Query] = declared("query")
    try:
        return _loader(schema).load(request.args.to_dict())  # type: ignore[no-any-return]
    except ValidationError as error:
        messages = error.normalized_messages()
        errors = {str(name): "; ".join(m) if isinstance(m, list) else str(m) for name, m in messages.items()}
        name, message = next(iter(errors.items()))
        raise ValidationFailed(f"The parameter '{name}' {message}.", errors=errors,
                               code="bad_filter") from None
