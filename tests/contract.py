"""Contract helpers: validate JSON against Amazon's SP-API models and notification schemas.

Amazon's swagger-2.0 models rarely say ``additionalProperties: false`` and keep most enums in prose
(``**Possible values**: `A`, `B```), so a plain schema check passes almost anything. The validators
here are stricter, in a way the models document:

* every object with ``properties`` rejects unknown keys (unless the schema explicitly allows them);
* string values listed in a description's ``Possible values`` become an ``enum``;
* ``date-time`` strings (and v0/notification dates, documented as ISO 8601) must look like one;
* money amounts (v2026 ``Decimal``, v0 ``Money.Amount``) must be decimal strings;
* notifications must carry a known ``NotificationType`` and a well-formed ``AmazonOrderId``.

``validate_model("orders_2026-01-01", "Order", order)``, ``validate_response("ordersV0", "getOrders",
200, body)`` and ``validate_notification(body)`` raise ``ContractError`` (an AssertionError) listing
every violation; ``model_errors`` and ``notification_errors`` return them.

Time formats are checked apart (the models accept any ISO 8601 form): ``validate_time_formats(model,
definition, instance)`` and ``validate_notification_times(body)`` walk every date-time the schema
declares and require the exact form Amazon renders (``API_TIME`` for the Orders APIs, whole seconds;
``NOTIFICATION_TIME`` for notifications, milliseconds), and that no other string looks like a time.
``without_orders(body, ids)`` drops the given orders from a response (the ``bad_records`` fault's
corrupted orders, which are not model-valid by design).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Collection
from functools import cache
from typing import Any

from jsonschema import Draft4Validator, Draft7Validator
from sp_api_sandbox import models

ORDER_ID_RE = re.compile(r"^\d{3}-\d{7}-\d{7}$")
DATE_TIME_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:?\d{2})$"
DECIMAL_PATTERN = r"^-?\d+(\.\d+)?$"
#: v0 and notification fields documented as ISO 8601 date-times but declared as plain strings.
ISO_DATE_FIELDS = frozenset(
    {
        "PurchaseDate",
        "LastUpdateDate",
        "EarliestShipDate",
        "LatestShipDate",
        "EarliestDeliveryDate",
        "LatestDeliveryDate",
        "PromiseResponseDueDate",
        "ScheduledDeliveryStartDate",
        "ScheduledDeliveryEndDate",
        "CreatedBefore",
        "LastUpdatedBefore",
        "EventTime",
        "PublishTime",
        "TimeOfOrderChange",
        "CancelNotifyDate",
        "ItemEarliestDeliveryDate",
        "ItemLatestDeliveryDate",
    }
)
#: The Orders APIs (v0 and v2026-01-01) render times in whole seconds: ``2026-11-01T22:20:55Z``.
API_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
#: Notifications render them with milliseconds, as the schemas' examples do: ``2020-01-11T00:09:53.109Z``.
NOTIFICATION_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
_LOOKS_LIKE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")
NOTIFICATION_SCHEMAS = {
    "ORDER_CHANGE": "OrderChangeNotification",
    "FBA_OUTBOUND_SHIPMENT_STATUS": "FBAOutboundShipmentStatusNotification",
}
_POSSIBLE_VALUES = re.compile(r"\*\*Possible values?\*\*:?(.*)", re.S | re.I)
_TICKED = re.compile(r"`([^`]+)`")


class ContractError(AssertionError):
    """An instance violates an SP-API model or notification schema."""

    def __init__(self, where: str, errors: list[str]) -> None:
        self.errors = errors
        shown = "\n  ".join(errors[:20])
        more = f"\n  ... and {len(errors) - 20} more" if len(errors) > 20 else ""
        super().__init__(f"{where}: {len(errors)} contract violation(s):\n  {shown}{more}")


def documented_values(description: str) -> list[str]:
    """Values a model's prose lists after ``**Possible values**``, in order, without duplicates."""
    match = _POSSIBLE_VALUES.search(description or "")
    if not match:
        return []
    return list(dict.fromkeys(_TICKED.findall(match.group(1))))


def _add_enum(node: dict[str, Any], values: list[str]) -> None:
    if node.get("type") == "string" and "enum" not in node and "$ref" not in node:
        node["enum"] = values
    elif node.get("type") == "array" and isinstance(node.get("items"), dict):
        _add_enum(node["items"], values)


def _tighten(node: Any, name: str = "") -> Any:
    """A stricter copy of a schema node (see the module docstring)."""
    if isinstance(node, list):
        return [_tighten(n) for n in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("properties", "definitions") and isinstance(value, dict):
            out[key] = {k: _tighten(v, k) for k, v in value.items()}
        elif key in ("example", "examples"):
            continue
        else:
            out[key] = _tighten(value)
    if "properties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = False
    values = documented_values(out.get("description", ""))
    if values:
        _add_enum(out, values)
    types = out.get("type")
    is_string = types == "string" or (isinstance(types, list) and "string" in types)
    if is_string and "pattern" not in out and "enum" not in out:
        if out.get("format") == "date-time" or name in ISO_DATE_FIELDS:
            out["pattern"] = DATE_TIME_PATTERN
        elif name in ("Amount", "amount") or name == "Decimal":
            out["pattern"] = DECIMAL_PATTERN
    return out


@cache
def _model_definitions(model: str, strict: bool) -> dict[str, Any]:
    definitions = models.load(model)["definitions"]
    if not strict:
        return copy.deepcopy(definitions)
    tight = {name: _tighten(schema, name) for name, schema in definitions.items()}
    return tight


def _inline(node: Any, definitions: dict[str, Any], stack: tuple[str, ...] = ()) -> Any:
    """Replace local ``#/definitions/X`` refs by their targets (recursive ones stay refs)."""
    if isinstance(node, list):
        return [_inline(n, definitions, stack) for n in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/definitions/"):
        name = ref.removeprefix("#/definitions/")
        if name not in stack:
            return _inline(definitions[name], definitions, (*stack, name))
    return {k: _inline(v, definitions, stack) for k, v in node.items()}


@cache
def _model_validator(model: str, definition: str, strict: bool) -> Draft4Validator:
    model = model.removesuffix(".json")
    definitions = _model_definitions(model, strict)
    if definition not in definitions:
        raise KeyError(f"{model} has no definition {definition!r}")
    # Refs are inlined up front (validation is ~10x faster without ref resolution); the definitions
    # stay alongside for any recursive ref left in place.
    schema = {**_inline(definitions[definition], definitions, (definition,)), "definitions": definitions}
    Draft4Validator.check_schema(schema)
    return Draft4Validator(schema)  # format checking stays off: swagger formats are not JSON Schema's


def _messages(validator: Draft4Validator | Draft7Validator, instance: Any) -> list[str]:
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
    return [f"/{'/'.join(str(p) for p in e.absolute_path)}: {e.message}" for e in errors]


def model_errors(model: str, definition: str, instance: Any, *, strict: bool = True) -> list[str]:
    """Every violation of ``#/definitions/<definition>`` of a bundled swagger model ([] when valid)."""
    return _messages(_model_validator(model.removesuffix(".json"), definition, strict), instance)


def validate_model(model: str, definition: str, instance: Any, *, strict: bool = True) -> None:
    """Raise ContractError unless ``instance`` is a valid ``definition`` of ``model``."""
    errors = model_errors(model, definition, instance, strict=strict)
    if errors:
        raise ContractError(f"{model.removesuffix('.json')}#/definitions/{definition}", errors)


@cache
def _operations(model: str) -> dict[str, dict[str, Any]]:
    """operationId -> that operation of a bundled swagger model."""
    out = {}
    for item in models.load(model)["paths"].values():
        for operation in item.values():
            if isinstance(operation, dict) and "operationId" in operation:
                out[operation["operationId"]] = operation
    return out


def response_definition(model: str, operation_id: str, status: int) -> str:
    """The definition a model declares for ``operation_id``'s ``status`` response (``KeyError`` if none)."""
    model = model.removesuffix(".json")
    operations = _operations(model)
    if operation_id not in operations:
        raise KeyError(f"{model} has no operation {operation_id!r}")
    response = operations[operation_id]["responses"].get(str(status))
    ref = ((response or {}).get("schema") or {}).get("$ref", "")
    if not ref.startswith("#/definitions/"):
        raise KeyError(f"{model} {operation_id} declares no JSON body for status {status}")
    return ref.removeprefix("#/definitions/")


def validate_response(model: str, operation_id: str, status: int, body: Any, *, strict: bool = True) -> None:
    """Raise ContractError unless ``body`` is what ``model`` declares for this operation and status."""
    validate_model(model, response_definition(model, operation_id, status), body, strict=strict)


@cache
def _notification_validator(schema_name: str, strict: bool) -> Draft7Validator:
    schema = dict(models.load(schema_name))
    schema.pop("$id", None)
    if strict:
        schema = _tighten(schema)
    Draft7Validator.check_schema(schema)
    return Draft7Validator(schema)


def decode_body(body: str | bytes | dict[str, Any]) -> Any:
    """An SQS body as JSON: parsed once, and once more if it was double-encoded (a JSON string)."""
    if isinstance(body, dict):
        return body
    if isinstance(body, bytes):
        body = body.decode("utf-8")
    value = json.loads(body)
    if isinstance(value, str):
        value = json.loads(value)
    return value


def notification_errors(body: str | bytes | dict[str, Any], *, strict: bool = True) -> list[str]:
    """Every reason ``body`` is not a valid notification we subscribe to ([] when valid)."""
    try:
        value = decode_body(body)
    except (ValueError, UnicodeDecodeError) as exc:
        return [f"not JSON: {exc}"]
    if not isinstance(value, dict):
        return [f"not a JSON object: {type(value).__name__}"]
    notification_type = value.get("NotificationType")
    if notification_type not in NOTIFICATION_SCHEMAS:
        return [f"unknown NotificationType {notification_type!r}"]
    schema_name = NOTIFICATION_SCHEMAS[notification_type]
    errors = _messages(_notification_validator(schema_name, strict), value)
    if errors:
        return errors
    if value["NotificationVersion"] != "1.0" or value["PayloadVersion"] != "1.0":
        errors.append("NotificationVersion and PayloadVersion must be 1.0")
    if not value["NotificationMetadata"]["NotificationId"]:
        errors.append("empty NotificationId")
    payload = value["Payload"][schema_name]
    if not ORDER_ID_RE.match(payload["AmazonOrderId"]):
        errors.append(f"malformed AmazonOrderId {payload['AmazonOrderId']!r}")
    return errors


def validate_notification(body: str | bytes | dict[str, Any], *, strict: bool = True) -> dict[str, Any]:
    """Raise ContractError unless ``body`` is a valid ORDER_CHANGE or FBA_OUTBOUND_SHIPMENT_STATUS
    notification (raw or double-encoded SQS body, or parsed); return the parsed notification."""
    errors = notification_errors(body, strict=strict)
    if errors:
        raise ContractError("notification", errors)
    return decode_body(body)


# ---------------------------------------------------------------------------------- time formats


def _collect_times(
    schema: Any, value: Any, path: str, definitions: dict[str, Any], out: dict[str, str]
) -> None:
    """Every value at a schema-declared date-time (the tightened schemas mark them with a pattern)."""
    if not isinstance(schema, dict):
        return
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/definitions/"):
        schema = definitions[ref.removeprefix("#/definitions/")]
    if isinstance(value, str):
        if schema.get("pattern") == DATE_TIME_PATTERN:
            out[path] = value
    elif isinstance(value, dict):
        properties = schema.get("properties", {})
        for key, item in value.items():
            if key in properties:
                _collect_times(properties[key], item, f"{path}/{key}", definitions, out)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _collect_times(schema.get("items"), item, f"{path}/{index}", definitions, out)


def _strings(value: Any, path: str = "") -> list[tuple[str, str]]:
    if isinstance(value, dict):
        return [s for key, item in value.items() for s in _strings(item, f"{path}/{key}")]
    if isinstance(value, list):
        return [s for index, item in enumerate(value) for s in _strings(item, f"{path}/{index}")]
    return [(path, value)] if isinstance(value, str) else []


def _time_errors(times: dict[str, str], instance: Any, pattern: re.Pattern[str]) -> list[str]:
    errors = [
        f"{path}: {value!r} does not match {pattern.pattern}"
        for path, value in times.items()
        if not pattern.match(value)
    ]
    errors += [
        f"{path}: {value!r} looks like a date-time where the schema declares none"
        for path, value in _strings(instance)
        if path not in times and _LOOKS_LIKE_TIME.match(value)
    ]
    return errors


def model_date_times(model: str, definition: str, instance: Any) -> dict[str, str]:
    """JSON pointer -> value of every date-time in ``instance`` that the model declares."""
    schema = _model_validator(model.removesuffix(".json"), definition, True).schema
    out: dict[str, str] = {}
    _collect_times(schema, instance, "", schema["definitions"], out)
    return out


def notification_date_times(body: str | bytes | dict[str, Any]) -> dict[str, str]:
    """JSON pointer -> value of every date-time of a (valid) notification body."""
    value = decode_body(body)
    schema = _notification_validator(NOTIFICATION_SCHEMAS[value["NotificationType"]], True).schema
    out: dict[str, str] = {}
    _collect_times(schema, value, "", schema.get("definitions", {}), out)
    return out


def validate_time_formats(model: str, definition: str, instance: Any) -> dict[str, str]:
    """Raise ContractError unless every date-time of an Orders API document is ``API_TIME`` (and no
    undeclared string looks like a time); return the date-times checked."""
    times = model_date_times(model, definition, instance)
    errors = _time_errors(times, instance, API_TIME)
    if errors:
        raise ContractError(f"{model.removesuffix('.json')}#/definitions/{definition} time formats", errors)
    return times


def validate_notification_times(body: str | bytes | dict[str, Any]) -> dict[str, str]:
    """Raise ContractError unless every date-time of a notification is ``NOTIFICATION_TIME``; return them."""
    times = notification_date_times(body)
    errors = _time_errors(times, decode_body(body), NOTIFICATION_TIME)
    if errors:
        raise ContractError("notification time formats", errors)
    return times


# ---------------------------------------------------------------------------------- bad records


def without_orders(body: dict[str, Any], order_ids: Collection[str]) -> dict[str, Any] | None:
    """A copy of an Orders API response without the orders in ``order_ids`` (None when the response is
    about one of them: nothing is left to validate). Knows searchOrders/getOrder (v2026) and
    getOrders/getOrder/getOrderItems (v0)."""
    if not order_ids:
        return body
    if "orders" in body:
        return {**body, "orders": [o for o in body["orders"] if o.get("orderId") not in order_ids]}
    if "order" in body:
        return None if body["order"].get("orderId") in order_ids else body
    payload = body.get("payload")
    if isinstance(payload, dict):
        if "Orders" in payload:
            orders = [o for o in payload["Orders"] if o.get("AmazonOrderId") not in order_ids]
            return {**body, "payload": {**payload, "Orders": orders}}
        if payload.get("AmazonOrderId") in order_ids:
            return None
    return body
