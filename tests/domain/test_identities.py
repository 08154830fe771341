"""Identity normalisation: one canonical key per identity, or InvalidInput naming the value."""

import pytest

from profilegate.domain.errors import InvalidInput
from profilegate.domain.identities import MAX_IDENTITY_LENGTH, Identity, IdentityType, normalise_identity

EMAIL = IdentityType.EMAIL
PHONE = IdentityType.PHONE
CARD = IdentityType.LOYALTY_CARD
CUSTOMER = IdentityType.CUSTOMER_ID
ANONYMOUS = IdentityType.ANONYMOUS_ID


@pytest.mark.parametrize(
    ("kind", "raw", "expected"),
    [
        (EMAIL, "ann@example.com", "ann@example.com"),
        (EMAIL, "  Ann.Schmidt@Example.COM ", "ann.schmidt@example.com"),
        (EMAIL, "\tBOB+shop@Mail.Example.de\n", "bob+shop@mail.example.de"),
        (PHONE, "030 12345678", "+493012345678"),
        (PHONE, "030/1234-5678", "+493012345678"),
        (PHONE, "+49 30 12345678", "+493012345678"),
        (PHONE, "0049 30 12345678", "+493012345678"),
        (PHONE, "+49 (30) 1234-5678", "+493012345678"),
        (PHONE, "0151 23456789", "+4915123456789"),
        (PHONE, "+44 20 7946 0958", "+442079460958"),
        (PHONE, "+1 650-253-0000", "+16502530000"),
        (CARD, "ab-12 34", "AB1234"),
        (CARD, " lc-0042-7788-x ", "LC00427788X"),
        (CARD, "LC00427788X", "LC00427788X"),
        (CUSTOMER, "C-4711", "C-4711"),
        (CUSTOMER, "  c-4711 ", "c-4711"),
        (CUSTOMER, "Mixed_Case.ID/42", "Mixed_Case.ID/42"),
        (ANONYMOUS, "a1b2c3d4-e5f6", "a1b2c3d4-e5f6"),
    ],
)
def test_normalises_to_canonical_value(kind: IdentityType, raw: str, expected: str) -> None:
    identity = normalise_identity(kind, raw)

    assert identity == Identity(type=kind, value=expected)
    assert identity.key == f"{kind.value}:{expected}"


def test_phone_region_applies_to_national_numbers_only() -> None:
    assert normalise_identity(PHONE, "020 7946 0958", phone_region="GB").value == "+442079460958"
    assert normalise_identity(PHONE, "+49 30 12345678", phone_region="GB").value == "+493012345678"


def test_same_person_written_differently_has_one_key() -> None:
    spellings = ["030 12345678", "+49 30 1234 5678", "0049-30-12345678"]

    assert {normalise_identity(PHONE, raw).key for raw in spellings} == {"phone:+493012345678"}


@pytest.mark.parametrize(
    ("kind", "raw"),
    [
        (EMAIL, ""),
        (EMAIL, "   "),
        (EMAIL, "not-an-email"),
        (EMAIL, "ann@example"),
        (EMAIL, "ann@@example.com"),
        (EMAIL, "ann schmidt@example.com"),
        (EMAIL, "a" * (MAX_IDENTITY_LENGTH - len("@example.com") + 1) + "@example.com"),
        (PHONE, ""),
        (PHONE, "12"),
        (PHONE, "call me"),
        (PHONE, "+49 30"),
        (CARD, ""),
        (CARD, " - - "),
        (CARD, "ÄB-1234"),
        (CUSTOMER, ""),
        (CUSTOMER, "C 4711"),
        (CUSTOMER, "C-4711\u00a0X"),
        (CUSTOMER, "x" * (MAX_IDENTITY_LENGTH + 1)),
        (ANONYMOUS, "anon id"),
    ],
)
def test_invalid_value_names_the_value_field(kind: IdentityType, raw: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        normalise_identity(kind, raw, field="input.identities[1]")

    assert raised.value.field == "input.identities[1].value"


def test_invalid_value_uses_default_field() -> None:
    with pytest.raises(InvalidInput) as raised:
        normalise_identity(EMAIL, "not-an-email")

    assert raised.value.field == "identity.value"


def test_longest_allowed_value_is_accepted() -> None:
    longest = "x" * MAX_IDENTITY_LENGTH

    assert normalise_identity(CUSTOMER, longest).value == longest
