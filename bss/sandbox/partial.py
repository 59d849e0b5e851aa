"""Google's system parameters on API answers: ``fields``, ``prettyPrint`` and ``alt``.

``fields`` is Google's selector: ``a,b`` several fields, ``a/b`` a sub-field, ``a(b,c)`` a
sub-selection, nested at will, ``*`` every field at that level; applied to an array it applies to
each element. Selected names are checked against the method's response schema in the discovery
document, before the call runs, as Google does ("Invalid field selection canAddChildren"). Only a
successful JSON answer is filtered; errors are not. ``prettyPrint=false`` answers compact JSON
(indented is the default); ``alt=json`` is the only format: ``alt=media`` is for media downloads,
which no modelled method is.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Optional

from flask import Response, request

from bss.sandbox import discovery
from bss.sandbox.errors import ApiError, json_response

#: A selection: field name (or ``*``) to its sub-selection; None selects the whole field.
Node = dict[str, Optional["Node"]]

#: Request-environ key of the rendering an API call asked for (environ, not ``g``: the calls
#: inside a /batch share the enclosing request's ``g``).
RENDERING = "sandbox.rendering"
#: APIs answering errors in the older Apiary shape, where a bad selection names the field.
_APIARY = ("reseller", "directory", "licensing")
_SEPARATORS = frozenset("/(),")


@dataclass
class Rendering:
    """How one API call's answer is written: its selection and its indentation."""

    tree: Node | None = None
    compact: bool = False


class FieldsError(ValueError):
    """A ``fields`` value that is not a selection, or names no field of the answer."""

    def __init__(self, name: str, path: str) -> None:
        super().__init__(name)
        self.name = name
        self.path = path


# -- the selector ---------------------------------------------------------------------------


def parse(mask: str, *, dots: bool = False) -> Node:
    """The selection tree of a ``fields`` value; ``dots`` also reads ``a.b`` as ``a/b``."""
    text = mask.replace(".", "/") if dots else mask
    parser = _Parser(text, mask)
    tree = parser.selection()
    if parser.pos != len(text):
        raise FieldsError(mask, mask)
    return tree


class _Parser:
    """Recursive descent over ``selection := item ("," item)*``,
    ``item := name ("/" name)* ["(" selection ")"]``."""

    def __init__(self, text: str, mask: str) -> None:
        self.text = text
        self.mask = mask
        self.pos = 0

    def _peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def _name(self) -> str:
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] not in _SEPARATORS:
            self.pos += 1
        name = self.text[start : self.pos]
        if not name:
            raise FieldsError(self.mask, self.mask)
        return name

    def selection(self) -> Node:
        tree: Node = {}
        while True:
            path = [self._name()]
            while self._peek() == "/":
                self.pos += 1
                path.append(self._name())
            sub: Node | None = None
            if self._peek() == "(":
                self.pos += 1
                sub = self.selection()
                if self._peek() != ")":
                    raise FieldsError(self.mask, self.mask)
                self.pos += 1
            for name in reversed(path):
                sub = {name: sub}
            tree = _merge(tree, sub)  # type: ignore[assignment]
            if self._peek() != ",":
                return tree
            self.pos += 1
            if self._peek() in ("", ")"):  # a trailing comma is tolerated
                return tree


def _merge(a: Node | None, b: Node | None) -> Node | None:
    if a is None or b is None:
        return None
    merged = dict(a)
    for name, sub in b.items():
        merged[name] = _merge(merged[name], sub) if name in merged else sub
    return merged


def select(value: Any, node: Node | None) -> Any:
    """``value`` narrowed to the selection; arrays element by element; key order kept."""
    if node is None:
        return value
    if isinstance(value, list):
        return [select(item, node) for item in value]
    if not isinstance(value, dict):
        return value
    star = node.get("*", False)
    out = {}
    for name, item in value.items():
        sub = node.get(name, False)
        if sub is False and star is False:
            continue
        if sub is False or star is False:
            chosen = star if sub is False else sub
        else:
            chosen = _merge(sub, star)  # type: ignore[arg-type]
        out[name] = select(item, chosen)  # type: ignore[arg-type]
    return out


def validate(tree: Node, schema: dict | None, doc: dict, path: str = "") -> None:
    """Raise FieldsError for a selected name the schema has no field for."""
    for name, sub in tree.items():
        full = f"{path}.{name}" if path else name
        try:
            child = _child(schema, name, doc)
        except LookupError:
            raise FieldsError(name, full) from None
        if sub:
            validate(sub, child, doc, full)


def _resolve(schema: dict | None, doc: dict) -> dict | None:
    while schema is not None:
        if "$ref" in schema:
            schema = doc.get("schemas", {}).get(schema["$ref"])
        elif schema.get("type") == "array":
            schema = schema.get("items")
        else:
            return schema
    return None


def _child(schema: dict | None, name: str, doc: dict) -> dict | None:
    """The schema of field ``name`` (None: anything goes below it); LookupError if none."""
    resolved = _resolve(schema, doc)
    if resolved is None or resolved.get("type") == "any":
        return None
    properties = resolved.get("properties")
    extra = resolved.get("additionalProperties")
    if name == "*":
        return extra if isinstance(extra, dict) else None
    if properties and name in properties:
        return properties[name]
    if isinstance(extra, dict):
        return extra
    if properties or resolved.get("type") not in (None, "object"):
        raise LookupError(name)
    return None


def _method(doc: dict, method_id: str) -> dict | None:
    """The method of that id in a discovery document."""
    stack = [doc]
    while stack:
        node = stack.pop()
        for method in node.get("methods", {}).values():
            if method.get("id") == method_id:
                return method
        stack.extend(node.get("resources", {}).values())
    return None


# -- the request and the answer ---------------------------------------------------------------


def _fields_error(error: FieldsError, *, apiary: bool) -> ApiError:
    if apiary:
        return ApiError(
            400,
            "invalidParameter",
            f"Invalid field selection {error.name}",
            extra={"locationType": "parameter", "location": "fields"},
        )
    return ApiError(
        400,
        "badRequest",
        "Request contains an invalid argument.",
        details=[
            {
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [
                    {
                        "field": error.path,
                        "description": "Error expanding 'fields' parameter. Cannot find "
                        f"matching fields for path '{error.path}'.",
                    }
                ],
            }
        ],
    )


def _alt_error(alt: str) -> ApiError | None:
    fmt = alt.casefold()
    if fmt in ("", "json"):
        return None
    if fmt == "media":
        message = f'Unsupported alt type "{fmt}" for non byte stream request.'
    else:
        message = f"Invalid value \"{alt}\" for query parameter 'alt'"
    return ApiError(400, "badRequest", message, frontend=True)


def _compact() -> bool:
    return request.args.get("prettyPrint", "").casefold() == "false"


def check(method_id: str) -> None:
    """Read ``alt``, ``prettyPrint`` and ``fields`` of an API call before it runs (400 if bad)."""
    rendering = Rendering(compact=_compact())
    request.environ[RENDERING] = rendering
    error = _alt_error(request.args.get("alt", ""))
    if error:
        raise error
    mask = request.args.get("fields", "")
    if not mask:
        return
    api = method_id.split(".", 1)[0]
    try:
        tree = parse(mask, dots=api not in _APIARY)
        doc = discovery.for_method(method_id)
        method = _method(doc, method_id) if doc else None
        if doc and method:
            validate(tree, method.get("response"), doc)
    except FieldsError as bad:
        raise _fields_error(bad, apiary=api in _APIARY) from None
    rendering.tree = tree


def _dumps(body: Any, compact: bool) -> str:
    return json.dumps(body, separators=(",", ":")) if compact else json.dumps(body, indent=2)


def render(response: Response) -> Response:
    """After-request hook: apply the call's selection (successes only) and indentation."""
    rendering = request.environ.get(RENDERING)
    if rendering is None or (rendering.tree is None and not rendering.compact):
        return response
    if not (response.content_type or "").startswith("application/json"):
        return response
    try:
        body = json.loads(response.get_data())
    except ValueError:
        return response
    if rendering.tree is not None and 200 <= response.status_code < 300:
        body = select(body, rendering.tree)
    response.set_data(_dumps(body, rendering.compact))
    return response


def rendered(body: Any) -> Response:
    """A JSON answer with ``fields`` (unchecked) and ``prettyPrint`` applied: for documents
    that have no response schema, such as the discovery documents themselves."""
    mask = request.args.get("fields", "")
    if mask:
        try:
            body = select(body, parse(mask))
        except FieldsError as bad:
            raise _fields_error(bad, apiary=True) from None
    response = json_response(body)
    if _compact():
        response.set_data(_dumps(body, True))
    return response
