"""DynamoDB Streams' record for a row change: `eventName` INSERT/MODIFY/REMOVE, and
`dynamodb` with Keys, NewImage, OldImage (as the view type allows), SequenceNumber,
SizeBytes, StreamViewType, ApproximateCreationDateTime; as the SAM CLI's `sam local
generate-event dynamodb update` prints it.

A column's value becomes an attribute value typed like DynamoDB's: numbers `{"N": "12.5"}`,
booleans `{"BOOL": true}`, SQL NULL `{"NULL": true}`, bytea `{"B": base64}`, everything
else (text, dates, JSON, ...) `{"S": text}`, in PostgreSQL's text form.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

VIEW_TYPES = ("KEYS_ONLY", "NEW_IMAGE", "OLD_IMAGE", "NEW_AND_OLD_IMAGES")
# PostgreSQL type OIDs: int8, int2, int4, oid, float4, float8, numeric
NUMBER_OIDS = frozenset({20, 21, 23, 26, 700, 701, 1700})
BOOL_OID = 16
BYTEA_OID = 17


def attribute(type_oid: int, text: str | None) -> dict[str, Any]:
    if text is None:
        return {"NULL": True}
    if type_oid in NUMBER_OIDS and text not in ("NaN", "Infinity", "-Infinity"):
        return {"N": text}
    if type_oid == BOOL_OID:
        return {"BOOL": text == "t"}
    if type_oid == BYTEA_OID and text.startswith("\\x"):
        return {"B": base64.b64encode(bytes.fromhex(text[2:])).decode()}
    return {"S": text}


def image(row: Mapping[str, str | None], types: Mapping[str, int]) -> dict[str, Any]:
    return {col: attribute(types.get(col, 25), value) for col, value in row.items()}


def table_arn(region: str, account: str, table: str, label: str) -> str:
    return f"arn:aws:dynamodb:{region}:{account}:table/{table}/stream/{label}"


def record(
    *,
    kind: str,
    keys: Sequence[str],
    new: Mapping[str, str | None] | None,
    old: Mapping[str, str | None] | None,
    types: Mapping[str, int],
    view_type: str,
    sequence: int,
    created_at: float,
    arn: str,
    region: str,
) -> dict[str, Any]:
    either = new if new is not None else old or {}
    body: dict[str, Any] = {
        "Keys": {k: attribute(types.get(k, 25), either.get(k)) for k in keys if k in either},
    }
    if new is not None and view_type in ("NEW_IMAGE", "NEW_AND_OLD_IMAGES"):
        body["NewImage"] = image(new, types)
    if old is not None and view_type in ("OLD_IMAGE", "NEW_AND_OLD_IMAGES"):
        body["OldImage"] = image(old, types)
    body["ApproximateCreationDateTime"] = int(created_at)
    body["SequenceNumber"] = f"{sequence:028d}"
    size = sum(
        len(json.dumps(body.get(p, {}), separators=(",", ":")))
        for p in ("Keys", "NewImage", "OldImage")
    )
    body["SizeBytes"] = size
    body["StreamViewType"] = view_type
    return {
        "eventID": hashlib.md5(f"{arn}:{sequence}".encode(), usedforsecurity=False).hexdigest(),
        "eventName": kind,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": region,
        "dynamodb": body,
        "eventSourceARN": arn,
    }
