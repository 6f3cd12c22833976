"""Checking an AWS Signature Version 4, as Lambda's endpoint does. Pure.

boto3 and the AWS CLI sign every request with the caller's secret key; the router, which
knows the secret of each access key it accepts, recomputes the signature over what it
received and compares. The recomputing is botocore's own `SigV4Auth` (the code that
signed the request), given the request as the client signed it: the signed headers only,
the path and query as sent, the client's `X-Amz-Date`. Only the Authorization header's
parsing and the clock check are written here.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

ALGORITHM = "AWS4-HMAC-SHA256"
# AWS refuses a signature more than 15 minutes off its clock
MAX_SKEW_S = 15 * 60

_AUTH = re.compile(
    r"^AWS4-HMAC-SHA256\s+Credential=(?P<credential>[^,\s]+)\s*,\s*"
    r"SignedHeaders=(?P<signed>[^,\s]+)\s*,\s*Signature=(?P<signature>[0-9a-f]{64})\s*$"
)


class SignatureError(ValueError):
    """`unknown` tells an unusable Authorization header (no key to look up) from a
    signature that does not match the key's secret."""

    def __init__(self, message: str, unknown: bool = False) -> None:
        super().__init__(message)
        self.unknown = unknown


@dataclass(frozen=True)
class Signed:
    """What an Authorization header claims."""

    access_key: str
    date: str  # YYYYMMDD of the credential scope
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str


def parse(authorization: str) -> Signed:
    m = _AUTH.match(authorization.strip())
    if m is None:
        raise SignatureError(
            "Authorization header requires AWS4-HMAC-SHA256 Credential, SignedHeaders and "
            "Signature",
            unknown=True,
        )
    parts = m["credential"].split("/")
    if len(parts) != 5 or parts[4] != "aws4_request":
        raise SignatureError(
            "Credential should be scoped to a valid region, service and aws4_request",
            unknown=True,
        )
    key, date, region, service, _ = parts
    return Signed(key, date, region, service, tuple(m["signed"].split(";")), m["signature"])


def verify(
    signed: Signed,
    secret: str,
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    now: datetime,
    session_token: str | None = None,
) -> None:
    """SignatureError unless `signed` is `secret`'s signature of this request, made within
    MAX_SKEW_S of `now`. `url` is scheme://host + the path and query as sent."""
    lower = {k.lower(): v for k, v in headers.items()}
    stamp = lower.get("x-amz-date", "")
    try:
        when = datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise SignatureError("the request has no valid X-Amz-Date") from None
    if abs((now - when).total_seconds()) > MAX_SKEW_S:
        raise SignatureError(
            f"Signature expired: {stamp} is now earlier than "
            f"{now.strftime('%Y%m%dT%H%M%SZ')} - 15 min."
            if when < now
            else f"Signature not yet current: {stamp} is still later than "
            f"{now.strftime('%Y%m%dT%H%M%SZ')} + 15 min."
        )
    if stamp[:8] != signed.date:
        raise SignatureError("the credential scope's date is not the X-Amz-Date's")
    missing = [h for h in signed.signed_headers if h not in lower]
    if missing or "host" not in signed.signed_headers:
        raise SignatureError(f"signed headers missing from the request: {missing or ['host']}")
    request = AWSRequest(
        method=method,
        url=url,
        headers={h: lower[h] for h in signed.signed_headers},
        data=body,
    )
    request.context["timestamp"] = stamp
    auth = SigV4Auth(
        Credentials(signed.access_key, secret, session_token), signed.service, signed.region
    )
    canonical = auth.canonical_request(request)
    expected = auth.signature(auth.string_to_sign(request, canonical), request)
    if not hmac.compare_digest(expected, signed.signature):
        raise SignatureError(
            "The request signature we calculated does not match the signature you provided. "
            "Check your AWS Secret Access Key and signing method."
        )
