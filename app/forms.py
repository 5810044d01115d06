"""Form fields derived from the options models, so an option is declared once (``pipeline.options``).

``options_form(RemoveOptions)`` is a FastAPI dependency whose parameters are the model's fields
as optional form fields of their plain type: a value that does not parse (``threshold=abc``) is
FastAPI's 422, one out of range is the model's ``InvalidParameterError`` (400), as before. A
text field sent empty (``threshold=``, ``format=``) is a 400 too: FastAPI would read it as left out, but the schema
says a number (or one of an enum), and leaving the field out is how a client asks for the default.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import Form, Request

from pipeline.errors import InvalidParameterError
from pipeline.options import SegmentOptions

OptionsT = TypeVar("OptionsT", bound=SegmentOptions)


def options_form(model: type[OptionsT], text_fields: tuple[str, ...] = ()) -> Callable[..., OptionsT]:
    """A dependency reading ``model``'s fields from the request's form and validating them once.

    ``text_fields``: the route's other text fields, refused when sent empty like the options (a
    browser's empty file part also arrives as ``""``, so file fields are not checked here)."""

    async def dependency(request: Request, **values: Any) -> OptionsT:
        form = await request.form()  # already parsed for the fields: no second read
        repeated = sorted(name for name in values if len(form.getlist(name)) > 1)
        if repeated:
            # FastAPI would silently keep the last value; a client sending two means a bug.
            raise InvalidParameterError(f"each option may be given once: {', '.join(repeated)} repeated")
        empty = sorted(name for name in (*values, *text_fields) if "" in form.getlist(name))
        if empty:
            raise InvalidParameterError(
                f"empty option(s) {', '.join(empty)}: leave a field out for its default"
            )
        return model.of(**values)

    dependency.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [
            inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Request),
            *(
                inspect.Parameter(
                    name,
                    inspect.Parameter.KEYWORD_ONLY,
                    default=None,
                    annotation=Annotated[kind | None, Form(description=description)],
                )
                for name, (kind, description) in model.field_types().items()
            ),
        ]
    )
    dependency.__name__ = f"{model.__name__}_form"
    return dependency


__all__ = ["options_form"]
