"""The OpenAPI 3.0 document of what the emulator serves, so contract fuzzers (schemathesis) can check it.

It states the emulator's contract, which is Bird's where Bird documents one (`bird-api-facts.md`) and our
reading where Bird is silent (`docs/emulator.md`): Bird's parameter names and bounds, Bird's envelopes, and
Bird's error bodies for 401/403/404/422/429/5xx. The admin routes (`/_emulator/*`) are test plumbing and left
out.
"""

from typing import Any

from pipelines.emulator.query import MAX_LIMIT, PAGE_TOKEN_MAX_CHARS
from transforms.vocabulary import BODY_TYPES, DIRECTIONS, INTERACTION_TYPES, STATUSES

JSON = "application/json"
_STRING = {"type": "string"}
_UUID = {"type": "string", "format": "uuid"}
_DATE_TIME = {"type": "string", "format": "date-time"}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _object(required: list[str], properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": properties}


def _array(items: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": items}


def _query(name: str, schema: dict[str, Any], description: str = "", *, required: bool = False) -> dict:
    parameter: dict[str, Any] = {"name": name, "in": "query", "required": required, "schema": schema}
    if schema.get("type") == "array":
        parameter |= {"style": "form", "explode": True}
    if description:
        parameter["description"] = description
    return parameter


def _path(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": _UUID}


def _ok(schema: str, status: str = "200") -> dict[str, Any]:
    return {status: {"description": "OK", "content": {JSON: {"schema": _ref(schema)}}}}


def _errors(*statuses: str) -> dict[str, Any]:
    """Bird's error responses; every API route may also meet 401, 403, 429 and 5xx."""
    descriptions = {
        "401": "missing or wrong access key",
        "403": "the access key belongs to another workspace",
        "404": "unknown workspace, channel or message",
        "422": "the parameters did not pass validation (every bad field in `details`)",
        "429": "over the workspace's request budget; not processed, safe to retry",
        "5XX": "server error, safe to retry after a delay",
    }
    responses: dict[str, Any] = {
        "400": {
            "description": "a request the HTTP server (uvicorn) cannot parse; answered before the API",
            "content": {"text/plain": {"schema": _STRING}},
        }
    }
    for status in ("401", "403", *statuses, "429", "5XX"):
        responses[status] = {
            "description": descriptions[status],
            "content": {JSON: {"schema": _ref("Error")}},
        }
    responses["429"]["headers"] = {
        "Retry-After": {"description": "seconds to wait (not documented by Bird)", "schema": _STRING}
    }
    return responses


_PAGING = [
    _query("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": 10}),
    _query(
        "pageToken",
        {"type": "string", "maxLength": PAGE_TOKEN_MAX_CHARS},
        "the nextPageToken of the previous page (a 422 if it is not one, or belongs to another window)",
    ),
    _query("reverse", {"type": "boolean", "default": False}, "oldest first instead of newest first"),
]
_PLATFORM = _array({"type": "string", "pattern": "^[A-Za-z0-9-]{3,60}$"})
_MESSAGE_FILTERS = [
    _query("platform", _PLATFORM),
    _query("direction", {"type": "string", "enum": list(DIRECTIONS)}),
    _query("id", _array(_UUID)),
    _query("startAt", _DATE_TIME, "createdAt >= startAt"),
    _query("endAt", _DATE_TIME, "createdAt < endAt (422 if before startAt)"),
    _query("from", _array(_STRING)),
    _query("to", _array(_STRING)),
    _query("failureCode", _array({"type": "integer"})),
    _query("failureSourceCode", _array(_STRING)),
    _query("failureSourceName", _array(_STRING)),
    _query("countryCode", _array(_STRING)),
    _query("tag", _array(_STRING)),
    _query("emailSubject", _STRING),
]

_PARTY = {
    "type": "object",
    "properties": {
        "connector": {"type": "object", "required": ["id"], "properties": {"id": _UUID}},
        "contact": _ref("Contact"),
        "contacts": _array(_ref("Contact")),
    },
}

SCHEMAS: dict[str, Any] = {
    "Error": _object(
        ["code", "message"],
        {
            "code": _STRING,
            "message": _STRING,
            "details": {"type": "object", "additionalProperties": _array(_STRING)},
        },
    ),
    "Contact": _object(
        ["identifierValue"], {"id": _UUID, "identifierKey": _STRING, "identifierValue": _STRING}
    ),
    "Message": _object(
        [
            "id",
            "channelId",
            "sender",
            "receiver",
            "status",
            "direction",
            "lastStatusAt",
            "createdAt",
            "updatedAt",
        ],
        {
            "id": _UUID,
            "channelId": _UUID,
            "sender": _PARTY,
            "receiver": _PARTY,
            "meta": {"type": "object"},
            "reference": _STRING,
            "parts": _array(_object(["platformReference"], {"platformReference": _STRING})),
            "status": {"type": "string", "enum": list(STATUSES)},
            "reason": _STRING,
            "direction": {"type": "string", "enum": list(DIRECTIONS)},
            "origin": _object(["type"], {"type": _STRING, "id": _STRING}),
            "lastStatusAt": _DATE_TIME,
            "createdAt": _DATE_TIME,
            "updatedAt": _DATE_TIME,
            "details": _STRING,
            "failure": _object(
                ["code"],
                {
                    "code": {"type": "integer"},
                    "description": _STRING,
                    "source": _object(["code", "name"], {"code": _STRING, "name": _STRING}),
                },
            ),
            "tags": {"type": "array", "items": _STRING, "maxItems": 10},
            "scheduledFor": _DATE_TIME,
            "body": _object(["type"], {"type": {"type": "string", "enum": list(BODY_TYPES)}}),
            "template": {"type": "object"},
        },
    ),
    "WorkspaceMessageList": _object(
        ["results"], {"results": _array(_ref("Message")), "nextPageToken": _STRING}
    ),
    "ChannelMessageList": _object(
        ["results"],
        {
            "startAt": _DATE_TIME,
            "endAt": _DATE_TIME,
            "nextPageToken": _STRING,
            "results": _array(_ref("Message")),
        },
    ),
    "SendMessage": _object(
        ["receiver"],
        {
            "receiver": _object(
                ["contacts"],
                {"contacts": {"type": "array", "minItems": 1, "items": _ref("Contact")}},
            ),
            "body": _object(["type"], {"type": {"type": "string", "enum": list(BODY_TYPES)}}),
            "template": {"type": "object"},
            "meta": {"type": "object"},
            "reference": _STRING,
            "tags": {"type": "array", "items": _STRING, "maxItems": 10},
        },
    ),
    "Channel": _object(
        ["id", "platformId", "status", "createdAt", "updatedAt"],
        {
            "id": _UUID,
            "platformId": _STRING,
            "name": _STRING,
            "connectorId": _UUID,
            "identifier": _STRING,
            "status": _STRING,
            "createdAt": _DATE_TIME,
            "updatedAt": _DATE_TIME,
        },
    ),
    "ChannelList": _object(["results"], {"results": _array(_ref("Channel")), "nextPageToken": _STRING}),
    "Interaction": _object(
        ["id", "messageId", "channelId", "type", "createdAt"],
        {
            "id": _UUID,
            "messageId": _UUID,
            "channelId": _UUID,
            "platformId": _STRING,
            "type": {"type": "string", "enum": list(INTERACTION_TYPES)},
            "messageReference": _STRING,
            "messagePartsCount": {"type": "integer", "minimum": 1},
            "messageTags": _array(_STRING),
            "createdAt": _DATE_TIME,
            "details": _STRING,
            "metadata": {"type": "object"},
        },
    ),
    "InteractionList": _object(["results"], {"results": _array(_ref("Interaction"))}),
    "ChannelMetrics": _object(
        ["results"],
        {
            "results": _array(
                _object(
                    ["date", "channelId", "platformId", "status", "count"],
                    {
                        "date": {"type": "string", "format": "date"},
                        "channelId": _UUID,
                        "platformId": _STRING,
                        "status": {"type": "string", "enum": list(STATUSES)},
                        "count": {"type": "integer", "minimum": 1},
                    },
                )
            )
        },
    ),
}


def openapi_document(server_url: str) -> dict[str, Any]:
    """The document, with `server_url` as its one server (the emulator answering the request)."""
    workspace = "/workspaces/{workspaceId}"
    channel = workspace + "/channels/{channelId}"
    message = channel + "/messages/{messageId}"
    ws, ch, msg = _path("workspaceId"), _path("channelId"), _path("messageId")
    paths = {
        workspace + "/channels/messages": {
            "get": {
                "operationId": "listWorkspaceMessages",
                "summary": "Messages of the workspace, newest first",
                "parameters": [ws, *_PAGING, _query("channelId", _array(_UUID)), *_MESSAGE_FILTERS],
                "responses": {**_ok("WorkspaceMessageList"), **_errors("404", "422")},
            }
        },
        workspace + "/channels": {
            "get": {
                "operationId": "listChannels",
                "parameters": [
                    ws,
                    *_PAGING,
                    _query("platform", _PLATFORM),
                    _query("channelIds", _array(_UUID)),
                ],
                "responses": {**_ok("ChannelList"), **_errors("404", "422")},
            }
        },
        channel: {
            "get": {
                "operationId": "getChannel",
                "parameters": [ws, ch],
                "responses": {**_ok("Channel"), **_errors("404")},
            }
        },
        channel + "/messages": {
            "get": {
                "operationId": "listChannelMessages",
                "summary": "Messages of one channel, newest first",
                "parameters": [
                    ws,
                    ch,
                    *_PAGING,
                    _query("navigatorId", _UUID),
                    _query("batchId", _UUID),
                    *_MESSAGE_FILTERS,
                ],
                "responses": {**_ok("ChannelMessageList"), **_errors("404", "422")},
            },
            "post": {
                "operationId": "sendMessage",
                "summary": "Send a message: exactly one of body and template; several contacts on email only",
                "parameters": [ws, ch],
                "requestBody": {"required": True, "content": {JSON: {"schema": _ref("SendMessage")}}},
                "responses": {**_ok("Message", "202"), **_errors("404", "422")},
            },
        },
        message: {
            "get": {
                "operationId": "getMessage",
                "parameters": [ws, ch, msg],
                "responses": {**_ok("Message"), **_errors("404")},
            }
        },
        message + "/interactions": {
            "get": {
                "operationId": "listInteractions",
                "summary": "Interactions of one message, oldest first (unpaginated)",
                "parameters": [ws, ch, msg],
                "responses": {**_ok("InteractionList"), **_errors("404")},
            }
        },
        workspace + "/reporting/channels/metrics": {
            "get": {
                "operationId": "getChannelMetrics",
                "summary": "Messages per UTC day, channel and status (our reading of an unpublished shape)",
                "parameters": [
                    ws,
                    _query("periodStart", _DATE_TIME, required=True),
                    _query("periodEnd", _DATE_TIME, "422 if before periodStart", required=True),
                    _query("groupBy", {"type": "string", "enum": ["day"], "default": "day"}),
                    _query("channelId", _array(_UUID)),
                ],
                "responses": {**_ok("ChannelMetrics"), **_errors("404", "422")},
            }
        },
    }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Bird Channels API (bird-etl emulator)",
            "version": "v1",
            "description": "What the emulator serves; semantics Bird leaves open are in docs/emulator.md.",
        },
        "servers": [{"url": server_url}],
        "security": [{"AccessKey": []}],
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "AccessKey": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "`AccessKey <key>`",
                }
            },
        },
    }
