"""SNS's side of topics: a published message's attributes, and the event a subscribed
function receives (`Records[].Sns`).

    {"Records": [{"EventSource": "aws:sns", "EventVersion": "1.0",
                  "EventSubscriptionArn": "arn:aws:sns:REGION:ACCOUNT:TOPIC:ID",
                  "Sns": {"Type": "Notification", "MessageId": "…", "TopicArn": "…",
                          "Subject": null, "Message": "…", "Timestamp": "…Z",
                          "SignatureVersion": "1", "Signature": "", "SigningCertUrl": "",
                          "UnsubscribeUrl": "", "MessageAttributes": {"kind": {"Type":
                          "String", "Value": "paid"}}}}]}

Messages are not signed (`Signature` is empty): klambda has no certificate to sign with.
Limits are SNS's: a message and its attributes take at most 256 KB, at most 10 attributes,
a subject at most 100 characters.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from klambda.triggers.filterpolicy import Attribute

MESSAGE_MAX_BYTES = 256 * 1024
ATTRIBUTES_MAX = 10
SUBJECT_MAX = 100
TYPES = ("String", "String.Array", "Number", "Binary")
_NAME = re.compile(r"^(?!aws\.|amazon\.|\.)[A-Za-z0-9_.-]{1,256}(?<!\.)$")
SUBSCRIPTIONS = uuid.UUID("7d3e9f4a-6c2b-4e8d-b1a0-5f9c2e4d8a17")


class InvalidMessage(ValueError):
    """A message SNS would refuse; the text names the field and the limit."""


def topic_arn(region: str, account: str, topic: str) -> str:
    return f"arn:aws:sns:{region}:{account}:{topic}"


def subscription_arn(topic: str, subscriber: str) -> str:
    """A stable ARN for a subscription (a trigger's key) to a topic's ARN."""
    return f"{topic}:{uuid.uuid5(SUBSCRIPTIONS, subscriber)}"


def attributes(raw: Mapping[str, Any] | None) -> dict[str, Attribute]:
    """Message attributes from SNS's API form (`DataType`, `StringValue`/`BinaryValue`),
    or InvalidMessage naming the attribute."""
    out: dict[str, Attribute] = {}
    for name, value in (raw or {}).items():
        if not _NAME.match(name):
            raise InvalidMessage(
                f"MessageAttributes: name {name!r} must be 1-256 letters, digits, '_', '-' or "
                "'.', not starting with aws., amazon. or '.'"
            )
        if not isinstance(value, Mapping):
            raise InvalidMessage(f"MessageAttributes.{name}: DataType and a value are required")
        dtype = str(value.get("DataType", ""))
        base = dtype.split(".", 1)[0] if dtype != "String.Array" else dtype
        if base not in TYPES:
            raise InvalidMessage(
                f"MessageAttributes.{name}.DataType: {dtype!r} is not one of {', '.join(TYPES)}"
            )
        if base == "Binary":
            data = value.get("BinaryValue")
            if isinstance(data, bytes | bytearray):
                text = base64.b64encode(bytes(data)).decode()
            else:
                try:
                    base64.b64decode(str(data), validate=True)
                except (binascii.Error, ValueError):
                    raise InvalidMessage(
                        f"MessageAttributes.{name}.BinaryValue: base64, got {data!r}"
                    ) from None
                text = str(data)
            out[name] = Attribute("Binary", text)
            continue
        string = value.get("StringValue")
        if not isinstance(string, str):
            raise InvalidMessage(f"MessageAttributes.{name}.StringValue: a string is required")
        text = string
        if base == "Number":
            try:
                float(text)
            except ValueError:
                raise InvalidMessage(
                    f"MessageAttributes.{name}: {text!r} is not a Number"
                ) from None
        if base == "String.Array":
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = None
            if not isinstance(parsed, list):
                raise InvalidMessage(
                    f"MessageAttributes.{name}: a String.Array is a JSON array, got {text!r}"
                )
        out[name] = Attribute(base, text)
    if len(out) > ATTRIBUTES_MAX:
        raise InvalidMessage(f"MessageAttributes: at most {ATTRIBUTES_MAX}, got {len(out)}")
    return out


def check_message(message: str, subject: str | None, attrs: Mapping[str, Attribute]) -> None:
    if not message:
        raise InvalidMessage("Message: must not be empty")
    size = len(message.encode()) + sum(
        len(k.encode()) + len(a.type) + len(a.value.encode()) for k, a in attrs.items()
    )
    if size > MESSAGE_MAX_BYTES:
        raise InvalidMessage(
            f"Message: the message and its attributes take {size} bytes, more than the "
            f"limit of {MESSAGE_MAX_BYTES} bytes"
        )
    if subject is not None and (not subject or len(subject) > SUBJECT_MAX):
        raise InvalidMessage(f"Subject: 1-{SUBJECT_MAX} characters")


def timestamp(t: float) -> str:
    return (
        datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(t % 1 * 1000):03d}Z"
    )


def notification_event(
    *,
    message_id: str,
    topic: str,
    subscription: str,
    message: str,
    subject: str | None,
    attrs: Mapping[str, Attribute],
    published: float,
) -> dict[str, Any]:
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": subscription,
                "Sns": {
                    "Type": "Notification",
                    "MessageId": message_id,
                    "TopicArn": topic,
                    "Subject": subject,
                    "Message": message,
                    "Timestamp": timestamp(published),
                    "SignatureVersion": "1",
                    "Signature": "",
                    "SigningCertUrl": "",
                    "UnsubscribeUrl": "",
                    "MessageAttributes": {
                        k: {"Type": a.type, "Value": a.value} for k, a in attrs.items()
                    },
                },
            }
        ]
    }
