"""A function's own credentials, made from its ServiceAccount token."""

from __future__ import annotations

from pathlib import Path

from klambda import contract
from klambda.worker import identity


def test_credentials_from_the_token_file(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("eyJ.header.sig\n")
    env = {contract.IDENTITY_TOKEN_ENV: str(tmp_path / "token")}
    creds = identity.credentials(env)
    assert creds["AWS_SESSION_TOKEN"] == "eyJ.header.sig"
    key_id, secret = contract.session_credentials("eyJ.header.sig")
    assert creds["AWS_ACCESS_KEY_ID"] == key_id
    assert key_id.startswith("KLSA")
    assert len(key_id) == 20
    assert creds["AWS_SECRET_ACCESS_KEY"] == secret
    # another token, other keys
    assert contract.session_credentials("other")[0] != key_id


def test_no_token_no_credentials(tmp_path: Path) -> None:
    assert identity.credentials({}) == {}
    assert identity.credentials({contract.IDENTITY_TOKEN_ENV: str(tmp_path / "none")}) == {}
