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
"""

from __future__ import annotations

import copy
import json
import re
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
