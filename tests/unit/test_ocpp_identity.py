"""Charger identities: what can travel in the URL path and as the Basic-auth user name."""

from __future__ import annotations

import pytest

from plugpay.domain.errors import InvalidInput
from plugpay.ocpp.route import basic_credentials
from plugpay.services.chargers import check_charger_id


@pytest.mark.parametrize("charger_id", ["CP-1", "DE*ABC*E123", "a.b_c=d+e|f@g", "x" * 48])
def test_identifiers_ocpp_allows_are_accepted(charger_id: str) -> None:
    assert check_charger_id(charger_id) == charger_id


@pytest.mark.parametrize("charger_id", ["", "x" * 49, "RDAM 123", "CP/1", "CP%41", "CP:1"])
def test_identifiers_that_cannot_connect_are_refused(charger_id: str) -> None:
    # A colon cannot be part of a Basic-auth user name (RFC 7617), so "CP:1" could
    # never authenticate.
    with pytest.raises(InvalidInput):
        check_charger_id(charger_id)


def test_basic_credentials_split_at_the_first_colon() -> None:
    assert basic_credentials([(b"authorization", b"Basic Q1AtMTpwYTpzcw==")]) == ("CP-1", "pa:ss")
    assert basic_credentials([(b"Authorization", b"basic Q1AtMTpwYTpzcw==")]) == ("CP-1", "pa:ss")
    assert basic_credentials([(b"authorization", b"Basic bm9jb2xvbg==")]) is None
    assert basic_credentials([(b"authorization", b"Bearer abc")]) is None
    assert basic_credentials([]) is None
