"""The signature of T-Bank's acquiring protocol, against the bank's published test vector."""

from __future__ import annotations

from mornet.bank.protocol import sign, verify

PASSWORD = "usaf8fw8fsw21g"
PUBLISHED = {
    "TerminalKey": "MerchantTerminalKey",
    "Amount": 19200,
    "OrderId": "21090",
    "Description": "Подарочная карта на 1000 рублей",
}
EXPECTED = "0024a00af7c350a3a67ca168ce06502aa72772456662e38696d48b56ee9c97d9"


def test_the_published_test_vector() -> None:
    assert sign(PUBLISHED, PASSWORD) == EXPECTED


def test_nested_objects_and_the_token_itself_are_not_signed() -> None:
    with_extras = {
        **PUBLISHED,
        "Receipt": {"Email": "a@example.com", "Items": [{"Price": 19200}]},
        "DATA": {"Phone": "+70000000000"},
        "Token": "whatever",
    }
    assert sign(with_extras, PASSWORD) == EXPECTED


def test_booleans_are_signed_as_the_bank_writes_them() -> None:
    notification = {"TerminalKey": "T", "OrderId": "1", "Success": True, "Amount": 100}
    token = sign(notification, "p")
    by_hand = sign({"TerminalKey": "T", "OrderId": "1", "Success": "true", "Amount": 100}, "p")
    assert token == by_hand
    assert token != sign({**notification, "Success": "True"}, "p")


def test_a_notification_is_verified_and_a_forgery_is_not() -> None:
    notification = {"TerminalKey": "T", "OrderId": "1", "Success": True, "Status": "CONFIRMED"}
    signed = {**notification, "Token": sign(notification, "p")}
    assert verify(signed, "p")
    assert not verify(signed, "another password")
    assert not verify({**signed, "Status": "REJECTED"}, "p")
    assert not verify(notification, "p")  # no token at all


def test_a_restarted_sandbox_bank_never_reuses_a_payment_id() -> None:
    """The sandbox keeps its payments in memory; the platform keeps their ids (unique). A
    sandbox started again (`mornet up` restarted on the same data) must not hand out an id
    it handed out before, or the next deposit's insert fails."""
    from mornet.bank.sandbox import SandboxBank

    def opened(bank: SandboxBank, order: str) -> str:
        body = {"TerminalKey": "T", "Amount": 100, "OrderId": order}
        answer = bank.init({**body, "Token": sign(body, "secret")})
        assert answer["Success"] is True, answer
        return str(answer["PaymentId"])

    before = SandboxBank(terminal_key="T", password="secret")
    first = [opened(before, f"order-{n}") for n in range(3)]
    after = SandboxBank(terminal_key="T", password="secret")  # the restart
    again = [opened(after, f"order-{n}") for n in range(3, 6)]
    assert not set(first) & set(again)
    assert len(set(first + again)) == 6
