"""``redo-hooks check-spec``: the package's models against a Redo OpenAPI file.

Redo publishes its schema (``@redotech/redo-api-schema``); a newer version may
add, remove or retype fields of the return webhook's body, or change an
enum's values. This compares what the models decode with what the spec's
``webhooks.return`` body says, path by path (``return.items[].product.id``):

* ``new field``       — in the spec, not in the models: handlers see it only
  in ``event.raw`` until the models learn it;
* ``removed field``   — in the models, not in the spec: it will read ``None``;
* ``retyped field``   — the spec's type no longer fits the model's: it will
  read ``None`` and be listed in ``event.schema_errors``;
* ``new enum value`` / ``removed enum value`` — an open enum's values
  changed: a new value arrives as a plain string, not a member, and a
  handler comparing with a removed member stops matching.

Everything but a new field changes what handlers see.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import msgspec

from ..errors import ConfigurationError
from ..models import ReturnEvent

#: The JSON types a value may have in the spec, or that a model field accepts.
JsonTypes = frozenset[str]

#: Every JSON type: a free-form value (``dict[str, Any]``, ``Any``).
ANY: JsonTypes = frozenset({"object", "array", "string", "number", "integer", "boolean"})


@dataclass(frozen=True, slots=True)
class Node:
    """One path of a schema: the JSON types it may hold, its enum, whether free-form."""

    types: JsonTypes
    enum: frozenset[str] | None = None
    free: bool = False


@dataclass(frozen=True, slots=True)
class Finding:
    """One difference between the spec and the models."""

    kind: str
    path: str
    detail: str = ""

    @property
    def changes_handlers(self) -> bool:
        """Whether handlers would see something different (all but a new field)."""
        return self.kind != "new field"


def compare(spec: Mapping[str, Any]) -> list[Finding]:
    """What differs between the spec's return webhook body and the models, by path."""
    theirs = dict(spec_paths(spec))
    ours = dict(model_paths())
    found: list[Finding] = []
    for path in sorted(theirs.keys() - ours.keys()):
        if _walked_parent(path, ours):
            found.append(Finding("new field", path, _describe(theirs[path].types)))
    for path in sorted(ours.keys() - theirs.keys()):
        if _walked_parent(path, theirs):
            found.append(Finding("removed field", path))
    for path in sorted(ours.keys() & theirs.keys()):
        model, schema = ours[path], theirs[path]
        spec_types = schema.types - {"null"}
        if spec_types and not model.free and not spec_types <= _accepted(model.types):
            found.append(
                Finding(
                    "retyped field",
                    path,
                    f"spec: {_describe(spec_types)}; models: {_describe(model.types)}",
                )
            )
        if model.enum is not None and schema.enum is not None:
            found += [Finding("new enum value", path, v) for v in sorted(schema.enum - model.enum)]
            found += [
                Finding("removed enum value", path, v) for v in sorted(model.enum - schema.enum)
            ]
    return found


def _walked_parent(path: str, nodes: Mapping[str, Node]) -> bool:
    """Whether ``path``'s parent is a described object in ``nodes``, not free-form.

    A field under a new (or free-form) object is not a finding of its own:
    the object is.
    """
    parent = _parent(path)
    if parent is None:
        return True
    node = nodes.get(parent)
    return node is not None and not node.free


def _parent(path: str) -> str | None:
    head, dot, _ = path.rpartition(".")
    if not dot:
        return None
    return head


def _accepted(types: JsonTypes) -> JsonTypes:
    # An integer is a number; the models read a number where text belongs as
    # its text (old spec versions sent ids as numbers), so that is no change.
    out = set(types)
    if "number" in out:
        out.add("integer")
    if "string" in out:
        out |= {"number", "integer"}
    return frozenset(out)


def _describe(types: JsonTypes) -> str:
    return " | ".join(sorted(types)) or "any"


# The spec's side.


def spec_paths(spec: Mapping[str, Any]) -> Iterator[tuple[str, Node]]:
    """Every path of the return webhook body in an OpenAPI document, with its node."""
    try:
        content = spec["webhooks"]["return"]["post"]["requestBody"]["content"]
        schema = content["application/json"]["schema"]
    except (KeyError, TypeError):
        raise ConfigurationError(
            "no webhooks.return.post.requestBody.content.application/json.schema in this "
            "file: is it Redo's OpenAPI spec?"
        ) from None
    components = spec.get("components", {}).get("schemas", {})
    yield from _schema_paths(schema, "", components, ())


def _resolve(schema: Any, components: Mapping[str, Any]) -> tuple[Any, str | None]:
    ref = schema.get("$ref") if isinstance(schema, dict) else None
    if not isinstance(ref, str):
        return schema, None
    name = ref.rsplit("/", 1)[-1]
    if name not in components:
        raise ConfigurationError(f"the spec refers to {ref}, which it does not define")
    return components[name], name


def _variants(schema: Mapping[str, Any], components: Mapping[str, Any]) -> list[Any]:
    """The schema and its oneOf/anyOf/allOf members, references resolved."""
    out = [schema]
    for key in ("oneOf", "anyOf", "allOf"):
        for member in schema.get(key, []):
            resolved, _ = _resolve(member, components)
            out += _variants(resolved, components)
    return out


def _schema_paths(
    schema: Any, path: str, components: Mapping[str, Any], seen: tuple[str, ...]
) -> Iterator[tuple[str, Node]]:
    schema, name = _resolve(schema, components)
    if name is not None:
        if name in seen:  # a recursive schema: described once
            return
        seen = (*seen, name)
    variants = _variants(schema, components)
    types: set[str] = set()
    enum: set[str] = set()
    properties: dict[str, Any] = {}
    items: list[Any] = []
    free = False
    for variant in variants:
        kind = variant.get("type")
        types |= set(kind) if isinstance(kind, list) else {kind} if isinstance(kind, str) else set()
        if variant.get("nullable"):
            types.add("null")
        if isinstance(variant.get("enum"), list):
            enum |= {str(v) for v in variant["enum"] if v is not None}
        if "const" in variant and variant["const"] is not None:
            enum.add(str(variant["const"]))
        properties.update(variant.get("properties", {}))
        if "items" in variant:
            items.append(variant["items"])
        if variant.get("type") == "object" and not variant.get("properties"):
            free = True  # a map with no named fields: not walked
    if properties:
        types.add("object")
        free = False
    if path:
        yield path, Node(frozenset(types), frozenset(enum) if enum else None, free)
    for prop, sub in properties.items():
        yield from _schema_paths(sub, f"{path}.{prop}" if path else prop, components, seen)
    for item in items:
        yield from _schema_paths(item, f"{path}[]", components, seen)


# The models' side.


def model_paths() -> Iterator[tuple[str, Node]]:
    """Every path the models decode, with the JSON types each accepts."""
    info = msgspec.inspect.type_info(ReturnEvent)
    assert isinstance(info, msgspec.inspect.StructType)
    yield from _struct_paths(info, "", ())


def _struct_paths(
    info: msgspec.inspect.StructType, path: str, seen: tuple[type, ...]
) -> Iterator[tuple[str, Node]]:
    if info.cls in seen:
        return
    seen = (*seen, info.cls)
    enums = getattr(info.cls, "_enums", {})
    for field in info.fields:
        here = f"{path}.{field.encode_name}" if path else field.encode_name
        enum = enums.get(field.name)
        members = frozenset(enum._value2member_map_) if enum is not None else None
        yield from _type_paths(field.type, here, members, seen)


def _type_paths(
    kind: msgspec.inspect.Type,
    path: str,
    enum: frozenset[str] | None,
    seen: tuple[type, ...],
) -> Iterator[tuple[str, Node]]:
    options = kind.types if isinstance(kind, msgspec.inspect.UnionType) else (kind,)
    types: set[str] = set()
    free = False
    children: list[msgspec.inspect.Type] = []
    for option in options:
        json_types = _JSON.get(type(option))
        if json_types is None:
            free = True  # Any, dict[str, Any], ...: accepts anything
            continue
        types |= json_types
        if isinstance(option, msgspec.inspect.StructType | msgspec.inspect.ListType):
            children.append(option)
    yield path, Node(ANY if free else frozenset(types), enum, free)
    for child in children:
        if isinstance(child, msgspec.inspect.StructType):
            yield from _struct_paths(child, path, seen)
        elif isinstance(child, msgspec.inspect.ListType):
            yield from _type_paths(child.item_type, f"{path}[]", enum, seen)


_JSON: dict[type, frozenset[str]] = {
    msgspec.inspect.NoneType: frozenset({"null"}),
    msgspec.inspect.StrType: frozenset({"string"}),
    msgspec.inspect.IntType: frozenset({"integer"}),
    msgspec.inspect.FloatType: frozenset({"number"}),
    msgspec.inspect.BoolType: frozenset({"boolean"}),
    # Money: a decimal string now, a number in older spec versions.
    msgspec.inspect.DecimalType: frozenset({"string", "number"}),
    msgspec.inspect.DateTimeType: frozenset({"string"}),
    msgspec.inspect.DateType: frozenset({"string"}),
    msgspec.inspect.StructType: frozenset({"object"}),
    msgspec.inspect.ListType: frozenset({"array"}),
}
