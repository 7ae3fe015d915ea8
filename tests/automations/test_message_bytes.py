"""delivery.message_bytes: the fast serializer writes what Django's own `as_bytes` writes (except the random
MIME boundary), for the emails Boomerang sends in every language."""

from __future__ import annotations

import email
import email.policy
import re

import pytest
from django.core.mail import EmailMultiAlternatives

from retention_app.automations.delivery import message_bytes

LONG_URL = "https://boomerang.example/m/u/" + "x" * 120 + "/"


def _email(subject: str, from_email: str, text: str, html: str, **headers: str) -> EmailMultiAlternatives:
    message = EmailMultiAlternatives(
        subject=subject,
        body=text,
        from_email=from_email,
        to=["Ana Nowak <ana@example.com>"],
        reply_to=["shop@example.com"],
        headers={"Message-ID": "<boomerang.1.2@example.com>", "Auto-Submitted": "auto-generated", **headers},
    )
    message.attach_alternative(html, "text/html")
    return message


CASES = [
    _email("Thanks for your order", "Mai · Bench Tea <shop@example.com>", "Hello Ana", "<p>Hello Ana</p>"),
    _email(
        "ขอบคุณสำหรับคำสั่งซื้อของคุณ คุณสมชาย ร้านชาเบนช์ส่งของให้แล้ว",
        "ร้านชา <shop@example.com>",
        "สวัสดีค่ะ " * 30,
        "<p>" + "สวัสดีค่ะ " * 30 + "</p>",
        **{"List-Unsubscribe": f"<{LONG_URL}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"},
    ),
    _email("Cảm ơn bạn đã mua hàng", "Cửa hàng <shop@example.com>", "Xin chào", "<b>Xin chào</b>"),
    _email("Dziękujemy za zamówienie — Łódź", "Sklep Żółw <shop@example.com>", "Cześć", "<i>Cześć</i>"),
    _email("感謝您的訂購，這是您的下次購物折扣碼", "茶店 <shop@example.com>", "您好", "<p>您好</p>"),
    _email("A line\u00a0with odd  spacing ", "shop@example.com", "x" * 1200, "<p>" + "y" * 1200 + "</p>"),
]


def _normalise(raw: bytes) -> bytes:
    message = email.message_from_bytes(raw, policy=email.policy.compat32)
    boundaries = [part.get_boundary() for part in message.walk() if part.is_multipart()]
    for i, boundary in enumerate(boundaries):
        raw = raw.replace(boundary.encode(), f"BOUNDARY{i}".encode())
    return re.sub(rb"^Date: .*\r\n", b"", raw, flags=re.MULTILINE)


@pytest.mark.parametrize("message", CASES, ids=range(len(CASES)))
def test_message_bytes_equals_the_standard_serialization(message):
    ours = message_bytes(message)
    standard = message.message().as_bytes(linesep="\r\n")
    assert _normalise(ours) == _normalise(standard)
    assert b"\n" not in ours.replace(b"\r\n", b"")  # CRLF line ends only


def test_message_bytes_uses_a_fresh_128_bit_boundary_each_time():
    first = email.message_from_bytes(message_bytes(CASES[0])).get_boundary()
    second = email.message_from_bytes(message_bytes(CASES[0])).get_boundary()
    assert first != second
    assert re.fullmatch(r"=+[0-9a-f]{32}==", first)


def test_message_bytes_parses_back_to_the_same_content():
    parsed = email.message_from_bytes(message_bytes(CASES[1]), policy=email.policy.default)
    assert parsed["Subject"].strip() == "ขอบคุณสำหรับคำสั่งซื้อของคุณ คุณสมชาย ร้านชาเบนช์ส่งของให้แล้ว"
    assert parsed["List-Unsubscribe"].strip() == f"<{LONG_URL}>"
    assert parsed.get_body(("plain",)).get_content().strip() == ("สวัสดีค่ะ " * 30).strip()
