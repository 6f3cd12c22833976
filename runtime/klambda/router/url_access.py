"""Function URLs with `authType: AWS_IAM`: who signed the request, and may they call it.

Lambda serves such a URL only to a request signed with AWS SigV4 for the service `lambda`
(as botocore's `SigV4Auth(credentials, "lambda", region)` and `awscurl --service lambda`
sign it) by a known identity that holds `lambda:InvokeFunctionUrl` on the function. The
router asks its access control (klambda.router.access) the same two questions as for any
other request:

- whose key signed it: a profile of `klambda up --auth FILE` locally; in cluster mode a key
  of the Secret `klambda-access-keys`, or a function's own session credentials (its
  ServiceAccount, klambda.worker.identity). A Kubernetes bearer token is no signature and
  does not do here, as Lambda takes nothing but SigV4 on a URL;
- may that identity `invoke` the function's `url` subresource (klambda.router.permissions:
  RBAC through a SubjectAccessReview in cluster mode; locally every key of the file may).

Every refusal is Lambda's one answer, 403 `{"Message": "Forbidden"}`, whatever the reason
(no signature, a wrong one, an unknown key, no permission); the router logs the reason.

A router without access control (`klambda up` without `--auth`, `klambda router
--no-auth`) cannot tell who signed, so it refuses AWS_IAM URLs, with a message saying so,
rather than serve them to anyone; NONE URLs are served as always.

The event's `requestContext.authorizer.iam` says who called: the access key, the account,
and ARNs of klambda's identities: `arn:aws:iam::ACCOUNT:user/NAME` for a user (a profile
of the credentials file, a key's `username`), `arn:aws:iam::ACCOUNT:role/NAMESPACE/NAME`
for a ServiceAccount (a function's own identity, as Lambda's execution role); `userId` and
`callerId` are the Kubernetes uid when the API server gave one, else the user name.
"""

from __future__ import annotations

from klambda import sigv4
from klambda.errors import KlambdaError
from klambda.router.access import Access, Principal, Request
from klambda.router.permissions import invoke_url
from klambda.triggers.httpapi import IamCaller

SERVICE = "lambda"
SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"
FORBIDDEN = "Forbidden"
NO_ACCESS_CONTROL = (
    "Forbidden: this function URL's authType is AWS_IAM and this router checks no "
    "identities (klambda up --auth FILE, or klambda router with auth on, checks them)"
)


class Refused(Exception):
    """A request an AWS_IAM URL does not serve: `message` for the caller, `reason` for the
    router's log."""

    def __init__(self, reason: str, message: str = FORBIDDEN) -> None:
        super().__init__(reason)
        self.reason = reason
        self.message = message


def _authorization(request: Request) -> str | None:
    for k, v in request.headers.items():
        if k.lower() == "authorization":
            return v
    return None


async def check(access: Access | None, request: Request, function: str, account: str) -> IamCaller:
    """The caller of an AWS_IAM URL of `function` (or of one of its aliases), or Refused."""
    if access is None:
        raise Refused("the router has no access control", NO_ACCESS_CONTROL)
    authorization = _authorization(request)
    if authorization is None:
        raise Refused("no Authorization header")
    try:
        signed = sigv4.parse(authorization)
    except sigv4.SignatureError as err:
        raise Refused(str(err)) from None
    if signed.service != SERVICE:
        raise Refused(f"signed for the service {signed.service!r}, not {SERVICE!r}")
    try:
        who = await access.authenticate(request)
        await access.authorize(who, invoke_url(function))
    except KlambdaError as err:
        raise Refused(f"{err.code}: {err}") from None
    return caller_of(who, signed.access_key, account)


def caller_of(who: Principal, access_key: str, account: str) -> IamCaller:
    """The event's `authorizer.iam` for a principal of klambda's access control."""
    if who.username.startswith(SERVICE_ACCOUNT_PREFIX):
        namespace, _, name = who.username.removeprefix(SERVICE_ACCOUNT_PREFIX).partition(":")
        arn = f"arn:aws:iam::{account}:role/{namespace}/{name}"
    else:
        arn = f"arn:aws:iam::{account}:user/{who.username}"
    user_id = who.uid or who.username
    return IamCaller(access_key, account, user_id, arn, user_id)
