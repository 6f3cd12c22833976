"""A function's own credentials, as Lambda gives its execution role's to every environment.

In a worker pod of a function with `serviceAccountName`, the kubelet keeps a token of that
ServiceAccount (audience `klambda`, rotated before it expires) in the file the contract
names. Each environment the worker starts gets credentials made from it:
`AWS_SESSION_TOKEN` is the token, `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` are
derived from it (klambda.contract.session_credentials), so that boto3 in a handler signs its
calls to the router, which asks the API server whose token it is (TokenReview) and what
that ServiceAccount may do (SubjectAccessReview). Without the file: no credentials.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from klambda import contract


def credentials(env: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The environment variables of the function's credentials, read now (the token
    rotates); empty when the worker has no identity token."""
    path = env.get(contract.IDENTITY_TOKEN_ENV)
    if not path:
        return {}
    try:
        with open(path) as f:
            token = f.read().strip()
    except OSError:
        return {}
    if not token:
        return {}
    key_id, secret = contract.session_credentials(token)
    return {
        "AWS_ACCESS_KEY_ID": key_id,
        "AWS_SECRET_ACCESS_KEY": secret,
        "AWS_SESSION_TOKEN": token,
    }
