"""The OpenAPI document, tightened to say exactly what the server accepts.

FastAPI describes each optional form field as ``anyOf: [type, null]`` and a file as any string,
and knows nothing of the option ranges (the options model checks those, so they are a 400, not a
422). A client or fuzzer reading that document sends ``null``, empty files and out-of-range
values the server then refuses. Here the multipart bodies are rewritten from the one source of
the options, ``pipeline.options.RemoveOptions``: no ``null`` (leave a field out for the
default), its ranges, the accepted format names, the loaded inpainters, non-empty files.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from pipeline import io
from pipeline.options import RemoveOptions
from pipeline.service import RemovalService

Schema = dict[str, Any]


def without_null(prop: Schema) -> Schema:
    """``prop`` with ``null`` dropped from its ``anyOf`` (and a null default dropped)."""
    alternatives = prop.get("anyOf", [])
    kept = [alt for alt in alternatives if alt.get("type") != "null"]
    out = {
        key: value
        for key, value in prop.items()
        if key != "anyOf" and not (key == "default" and value is None)
    }
    if len(kept) == len(alternatives):
        return {**out, "anyOf": alternatives} if alternatives else out
    return {**kept[0], **out} if len(kept) == 1 else {**out, "anyOf": kept}


def _is_file(prop: Schema) -> bool:
    return prop.get("format") == "binary" or "contentMediaType" in prop


def form_properties(inpainters: tuple[str, ...] | None) -> dict[str, Schema]:
    """What each form field accepts: the options model's fields (ranges included) and ``format``."""
    options = RemoveOptions.model_json_schema()["properties"]
    props = {name: without_null(prop) for name, prop in options.items()}
    if inpainters:
        props["inpainter"] = {**props["inpainter"], "enum": list(inpainters)}
    props["format"] = {"type": "string", "enum": list(io.FORMAT_NAMES)}
    return props


def tighten(document: Schema, inpainters: tuple[str, ...] | None) -> Schema:
    """A copy of ``document`` whose multipart request bodies say what the server accepts."""
    document = copy.deepcopy(document)
    components = document.get("components", {}).get("schemas", {})
    accepted = form_properties(inpainters)
    for path in document.get("paths", {}).values():
        for operation in path.values():
            content = operation.get("requestBody", {}).get("content", {})
            ref = content.get("multipart/form-data", {}).get("schema", {}).get("$ref", "")
            body = components.get(ref.rsplit("/", 1)[-1])
            if body is None:
                continue
            for name, prop in body.get("properties", {}).items():
                prop = without_null(prop)
                items = prop.get("items", {})
                if _is_file(prop) or _is_file(items):
                    # Non-empty (an empty upload is a 415); "binary" too (OpenAPI 3.0's word, which
                    # generators such as schemathesis read as "send file-like bytes").
                    (prop if _is_file(prop) else items).update(format="binary", minLength=1)
                elif name in accepted:
                    described = {k: prop[k] for k in ("title", "description") if k in prop}
                    prop = {**accepted[name], **described}
                body["properties"][name] = prop
    return document


def install_openapi(app: FastAPI, service: Callable[[], RemovalService | None]) -> None:
    """Serve the tightened document from ``app.openapi``; cached once the models are loaded
    (the inpainter names come from them)."""
    generate = app.openapi

    def openapi() -> Schema:
        if app.openapi_schema is not None:
            return app.openapi_schema
        loaded = service()
        document = tighten(generate(), loaded.info().inpainters if loaded is not None else None)
        app.openapi_schema = document if loaded is not None else None
        return document

    app.openapi = openapi  # type: ignore[method-assign]
