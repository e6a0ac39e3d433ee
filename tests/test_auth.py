"""Bearer verification."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from redo_hooks.errors import ConfigurationError, Unauthorized
from redo_hooks.receiver.auth import BearerVerifier

from .conftest import SECOND_SECRET, SECRET


@pytest.fixture
def verifier() -> BearerVerifier:
    return BearerVerifier([SecretStr(SECRET), SECOND_SECRET])


@pytest.mark.parametrize("secret", [SECRET, SECOND_SECRET])
def test_every_configured_secret_is_accepted(verifier: BearerVerifier, secret: str) -> None:
    # Accepted: verify answers the secret's store (None: unlabelled) instead of raising.
    assert verifier.verify(f"Bearer {secret}".encode()) is None
    assert verifier.verify(f"bearer  {secret} ".encode()) is None


def test_a_labelled_secret_is_accepted_as_its_store_and_a_near_miss_is_not() -> None:
    verifier = BearerVerifier([SecretStr(f"store-a={SECRET}"), SecretStr(SECOND_SECRET)])
    assert verifier.verify(f"Bearer {SECRET}".encode()) == "store-a"
    assert verifier.verify(f"Bearer {SECOND_SECRET}".encode()) is None
    with pytest.raises(Unauthorized) as refused:
        verifier.verify(f"Bearer {SECRET[:-1]}x".encode())
    assert refused.value.reason == "wrong_bearer"


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (None, "missing_bearer"),
        (b"", "missing_bearer"),
        (b"Basic dXNlcjpwYXNz", "malformed_bearer"),
        (b"Bearer", "malformed_bearer"),
        (b"Bearer ", "malformed_bearer"),
        (SECRET.encode(), "malformed_bearer"),
        (b"Bearer wrong", "wrong_bearer"),
        (f"Bearer {SECRET}x".encode(), "wrong_bearer"),
        (f"Bearer {SECRET[:-1]}".encode(), "wrong_bearer"),
    ],
)
def test_anything_else_is_unauthorized(
    verifier: BearerVerifier, header: bytes | None, reason: str
) -> None:
    with pytest.raises(Unauthorized) as caught:
        verifier.verify(header)
    assert caught.value.reason == reason and caught.value.status == 401
    assert SECRET not in str(caught.value)


@given(token=st.binary(max_size=64))
def test_random_tokens_never_verify(token: bytes) -> None:
    verifier = BearerVerifier([SECRET])
    with pytest.raises(Unauthorized):
        verifier.verify(b"Bearer " + token)


def test_no_secret_is_a_configuration_error_and_repr_hides_secrets() -> None:
    with pytest.raises(ConfigurationError, match="REDO_HOOKS_SECRETS"):
        BearerVerifier([])
    assert SECRET not in repr(BearerVerifier([SECRET]))
