"""Who is calling, and may they: the router's authentication and authorization.

Cluster mode takes both answers from Kubernetes, the source of truth for users and RBAC:

- a caller presents a Kubernetes bearer token (`Authorization: Bearer …`, checked with a
  TokenReview) or signs with AWS SigV4, as boto3 and the AWS CLI do, with an access key
  kept in the Secret `klambda-access-keys` of the router's namespace, which maps it to a
  Kubernetes user and groups (the router may read that Secret and no other);
- a SubjectAccessReview asks whether that user may do the request's verb on the
  klambda.io resource (klambda.router.permissions: `invoke` on `functions` with the
  function's name, `get`, `list`, `update`, `delete`, `redrive`).

Answers are cached briefly (tokens and keys 30 s, decisions 10 s), so a burst of calls
costs the API server one review each, and a revoked binding takes effect within seconds.

Local mode (`klambda up --auth FILE`) checks SigV4 against an AWS credentials file (the
`[profile]` sections of `~/.aws/credentials`); any key in it may do anything, like SAM
local with credentials.

Refusals are Lambda's: no credentials or an unknown key/token → 403
`UnrecognizedClientException`; a wrong or stale signature → 403
`InvalidSignatureException`; not allowed → 403 `AccessDeniedException`.
"""

from __future__ import annotations

import base64
import configparser
import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from cachetools import TTLCache
from lightkube import AsyncClient, KubeConfig
from lightkube.core.exceptions import ApiError
from lightkube.models.authentication_v1 import TokenReviewSpec
from lightkube.models.authorization_v1 import ResourceAttributes, SubjectAccessReviewSpec
from lightkube.resources.authentication_v1 import TokenReview
from lightkube.resources.authorization_v1 import SubjectAccessReview
from lightkube.resources.core_v1 import Secret

from klambda import contract, sigv4
from klambda.api.limits import GROUP
from klambda.errors import AccessDenied, InvalidSignature, UnrecognizedClient
from klambda.router.permissions import Permission

log = logging.getLogger("klambda.router")

# the Secret (in the router's namespace) that maps access keys to Kubernetes users
KEYS_SECRET = "klambda-access-keys"
IDENTITY_TTL_S = 30.0
DECISION_TTL_S = 10.0
NO_CREDENTIALS = (
    "Missing Authentication Token: sign the request with an access key (SigV4) or send a "
    "Kubernetes bearer token"
)


@dataclass(frozen=True)
class Principal:
    username: str
    groups: tuple[str, ...] = ()
    uid: str = ""


@dataclass(frozen=True)
class Request:
    """What authentication looks at: the request as it came."""

    method: str
    url: str  # scheme://host + the path and query as sent
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True)
class Key:
    secret: str
    principal: Principal


class KeyStore(Protocol):
    async def key(self, access_key: str) -> Key | None: ...


class Access(Protocol):
    """What the router asks before serving a request."""

    async def authenticate(self, request: Request) -> Principal: ...

    async def authorize(self, who: Principal, perm: Permission) -> None: ...


async def check_signature(request: Request, keys: KeyStore, now: datetime) -> Principal:
    """The principal of a SigV4-signed request, or Lambda's refusal."""
    authorization = _header(request.headers, "authorization") or ""
    try:
        signed = sigv4.parse(authorization)
    except sigv4.SignatureError as err:
        raise UnrecognizedClient(str(err)) from None
    key = await keys.key(signed.access_key)
    if key is None:
        raise UnrecognizedClient("The security token included in the request is invalid.")
    try:
        sigv4.verify(
            signed,
            key.secret,
            request.method,
            request.url,
            request.headers,
            request.body,
            now,
            _header(request.headers, "x-amz-security-token"),
        )
    except sigv4.SignatureError as err:
        raise InvalidSignature(str(err)) from None
    return key.principal


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for k, v in headers.items():
        if k.lower() == name:
            return v
    return None


class CredentialsFile:
    """Access keys from an AWS credentials file (local mode's `--auth`); each profile's
    name is its principal."""

    def __init__(self, path: Path) -> None:
        parser = configparser.ConfigParser()
        if not parser.read(path):
            raise ValueError(f"{path}: no such credentials file")
        self._keys: dict[str, Key] = {}
        for profile in parser.sections():
            section = parser[profile]
            key_id = section.get("aws_access_key_id")
            secret = section.get("aws_secret_access_key")
            if key_id and secret:
                self._keys[key_id.strip()] = Key(secret.strip(), Principal(profile))
        if not self._keys:
            raise ValueError(f"{path}: no profile with aws_access_key_id and aws_secret_access_key")

    async def key(self, access_key: str) -> Key | None:
        return self._keys.get(access_key)


class SessionKey:
    """The one key a function's session token stands for."""

    def __init__(self, token: str, who: Principal) -> None:
        self.key_id, self.secret = contract.session_credentials(token)
        self.who = who

    async def key(self, access_key: str) -> Key | None:
        return Key(self.secret, self.who) if access_key == self.key_id else None


class LocalAccess:
    """`klambda up --auth FILE`: SigV4 with the file's keys; every key may do anything."""

    def __init__(self, keys: KeyStore) -> None:
        self.keys = keys

    async def authenticate(self, request: Request) -> Principal:
        if _header(request.headers, "authorization") is None:
            raise UnrecognizedClient(NO_CREDENTIALS)
        return await check_signature(request, self.keys, datetime.now(UTC))

    async def authorize(self, who: Principal, perm: Permission) -> None:
        return None


class SecretKeys:
    """Access keys kept in one Secret of the router's namespace (cluster mode), so that the
    router may read that Secret and no other: each data key is an access key id, its value
    JSON `{"secretAccessKey": …, "username": …, "groups": [...]}`."""

    def __init__(self, client: AsyncClient, namespace: str, name: str = KEYS_SECRET) -> None:
        self.client = client
        self.namespace = namespace
        self.name = name
        self._keys: TTLCache[str, dict[str, Key]] = TTLCache(maxsize=1, ttl=IDENTITY_TTL_S)

    async def key(self, access_key: str) -> Key | None:
        keys = self._keys.get("all")
        if keys is None:
            try:
                secret = await self.client.get(Secret, self.name, namespace=self.namespace)
            except ApiError as err:
                if err.status.code != 404:
                    log.error("access keys: cannot read Secret %s: %s", self.name, err)
                secret = None
            keys = self._keys["all"] = keys_of(secret)
        return keys.get(access_key)


def keys_of(secret: Secret | None) -> dict[str, Key]:
    """The keys a Secret holds; entries that are not complete are left out (and logged)."""
    out: dict[str, Key] = {}
    for key_id, raw in ((secret.data or {}) if secret is not None else {}).items():
        try:
            entry = json.loads(base64.b64decode(raw))
            who = Principal(
                str(entry["username"]), tuple(str(g) for g in entry.get("groups") or ())
            )
            out[key_id] = Key(str(entry["secretAccessKey"]), who)
        except (ValueError, KeyError, TypeError) as err:
            log.warning("access keys: entry %s is not {secretAccessKey, username}: %s", key_id, err)
    return out


class KubernetesAccess:
    """Cluster mode: TokenReview or SigV4 keys in Secrets; SubjectAccessReview decides."""

    def __init__(self, client: AsyncClient, namespace: str) -> None:
        self.client = client
        self.namespace = namespace
        self.keys = SecretKeys(client, namespace)
        self._tokens: TTLCache[str, Principal | None] = TTLCache(10_000, IDENTITY_TTL_S)
        self._decisions: TTLCache[tuple[Principal, Permission], str | None] = TTLCache(
            100_000, DECISION_TTL_S
        )

    @classmethod
    def connect(cls, namespace: str, kubeconfig: str | None) -> KubernetesAccess:
        config = KubeConfig.from_file(kubeconfig) if kubeconfig else None
        client = (
            AsyncClient(config=config, namespace=namespace)
            if config
            else AsyncClient(namespace=namespace)
        )
        return cls(client, namespace)

    async def authenticate(self, request: Request) -> Principal:
        authorization = _header(request.headers, "authorization")
        if authorization is None:
            raise UnrecognizedClient(NO_CREDENTIALS)
        if authorization.startswith("Bearer "):
            return await self.review_token(authorization.removeprefix("Bearer ").strip())
        session = _header(request.headers, "x-amz-security-token")
        if session is not None:  # a function's own credentials (klambda.worker.identity)
            who = await self.review_token(session, contract.SESSION_AUDIENCE)
            return await check_signature(request, SessionKey(session, who), datetime.now(UTC))
        return await check_signature(request, self.keys, datetime.now(UTC))

    async def review_token(self, token: str, audience: str | None = None) -> Principal:
        """Whose token this is (a TokenReview, for `audience` if given)."""
        digest = hashlib.sha256(f"{audience}\0{token}".encode()).hexdigest()
        if digest in self._tokens:
            who = self._tokens[digest]
        else:
            spec = TokenReviewSpec(token=token, audiences=[audience] if audience else None)
            review = await self.client.create(TokenReview(spec=spec))
            status = review.status
            who = None
            if status is not None and status.authenticated and status.user is not None:
                user = status.user
                who = Principal(user.username or "", tuple(user.groups or ()), user.uid or "")
            self._tokens[digest] = who
        if who is None:
            raise UnrecognizedClient("The security token included in the request is invalid.")
        return who

    async def authorize(self, who: Principal, perm: Permission) -> None:
        key = (who, perm)
        if key in self._decisions:
            denied = self._decisions[key]
        else:
            denied = await self._review(who, perm)
            self._decisions[key] = denied
        if denied is not None:
            raise AccessDenied(denied)

    async def _review(self, who: Principal, perm: Permission) -> str | None:
        """None if allowed, else Lambda's message saying what was refused to whom."""
        spec = SubjectAccessReviewSpec(
            user=who.username,
            groups=list(who.groups),
            uid=who.uid or None,
            resourceAttributes=ResourceAttributes(
                group=GROUP,
                resource=perm.resource,
                subresource=perm.subresource,
                verb=perm.verb,
                name=perm.name,
                namespace=self.namespace,
            ),
        )
        try:
            review = await self.client.create(SubjectAccessReview(spec=spec))
        except ApiError as err:
            log.error("SubjectAccessReview failed: %s", err)
            return f"User: {who.username} could not be authorized: {err.status.message}"
        status = review.status
        if status is not None and status.allowed:
            return None
        return (
            f"User: {who.username} is not authorized to perform: {perm.describe()} in "
            f"namespace {self.namespace!r}"
        )

    async def close(self) -> None:
        await self.client.close()
