"""Handing one email to Django's email backend with a point of no return the database knows about.

SMTP has no idempotency key, so the only way to never send twice is to know, after a crash, whether the
server may have accepted the message. With Django's SMTP backend the transaction is driven step by step:
MAIL FROM, RCPT TO, DATA -> 354, then `commit_point()` is called (the caller commits
`Message.smtp_started_at` with a fenced conditional UPDATE), and only then is the body and the final "."
sent. A crash before the commit point leaves an unfinished SMTP transaction, which the server discards:
the message can safely be sent again. A crash after it (body on the wire, "250" not yet recorded as
`sent`) is the one residual window: the message may or may not have been delivered, and it is recorded
as failed with "delivery unknown" instead of being resent. The window is the body transfer plus one
round trip plus one UPDATE (a few milliseconds on a LAN). The Message-ID header is derived from the row,
so a receiver can recognise a copy if an operator chooses to resend.

Other backends (django-anymail providers, locmem in tests) have no such step: `commit_point()` is called
right before `send_messages()`, and an exception from the backend is treated as "delivery unknown".
"""

from __future__ import annotations

import functools
import io
import os
import secrets
import smtplib
from collections.abc import Callable
from email.generator import BytesGenerator

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.core.mail.backends.smtp import EmailBackend as SMTPBackend
from django.core.mail.message import sanitize_address


class _Generator(BytesGenerator):
    """The standard generator with two shortcuts that keep its output (RFC 5322/2046) and cost a third
    of the time for a typical email:

    - a header whose value is short, single-line ASCII (Django has already encoded non-ASCII values as
      RFC 2047 words) is written as it is; the compat32 policy would build an `email.header.Header` to
      find that out. Anything else goes through the policy's folding as before;
    - MIME boundaries are 128 random bits. The stdlib draws a shorter random number and then compiles a
      regular expression per message to check that no body line equals it; a 128-bit secret cannot be
      guessed by template content, so the check is not needed."""

    def _write_headers(self, msg) -> None:
        for name, value in msg.raw_items():
            if (
                isinstance(value, str)
                and value.isascii()
                and len(name) + len(value) + 2 <= 78
                and "\n" not in value
                and "\r" not in value
                and value == value.strip()
            ):
                self._fp.write(f"{name}: {value}\r\n".encode("ascii"))
            else:
                self._fp.write(self.policy.fold_binary(name, value))
        self.write(self._NL)

    @classmethod
    def _make_boundary(cls, text=None) -> str:
        return f"==============={secrets.token_hex(16)}=="


def message_bytes(message: EmailMessage) -> bytes:
    """`message` as the bytes sent to the mail server (CRLF line ends), like
    `message.message().as_bytes(linesep="\r\n")` but faster (see `_Generator`)."""
    msg = message.message()
    fp = io.BytesIO()
    _Generator(fp, mangle_from_=False, policy=msg.policy.clone(linesep="\r\n")).flatten(msg)
    return fp.getvalue()


@functools.lru_cache(maxsize=256)
def _envelope_address(address: str, encoding: str) -> str:
    """The envelope form of an address (the sender is the same for a whole batch: parsed once)."""
    return sanitize_address(address, encoding)


class ClaimLost(Exception):
    """The commit point could not be recorded (another worker owns the row now): nothing was sent."""


class DeliveryRefused(Exception):
    """The server refused the message with a definite answer: it was not accepted (safe to record)."""

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


class DeliveryUnknown(Exception):
    """The connection broke after the commit point: the message may or may not have been delivered."""


class DeliveryNotStarted(Exception):
    """A failure before the commit point (connection, MAIL/RCPT): nothing was accepted; retry later."""


_SHARED: dict[str, Courier] = {}


def courier_shared() -> Courier:
    """The process's courier, kept between send tasks so SMTP connections are reused across batches
    (a worker process runs one task at a time). Rebuilt when the email settings change or after a fork;
    other backends get a fresh courier each time."""
    key = (
        os.getpid(),
        settings.EMAIL_BACKEND,
        getattr(settings, "EMAIL_HOST", None),
        getattr(settings, "EMAIL_PORT", None),
    )
    courier = _SHARED.get("courier")
    if courier is not None and courier.key == key:
        return courier
    if courier is not None and courier.key[0] == key[0]:
        courier.close()
    courier = Courier()
    courier.key = key
    if courier.stepwise:
        _SHARED["courier"] = courier
    return courier


class Courier:
    """Open connection(s) to the email backend, reused for a batch of messages."""

    def __init__(self) -> None:
        self.backend = get_connection(fail_silently=False)
        self.stepwise = type(self.backend) is SMTPBackend
        # SMTP: one connection per message of a group (`send_group`), opened on first use, kept open.
        self.slots: list[SMTPBackend] = []
        self.key: tuple = ()
        # RFC 2920 PIPELINING of the envelope: None = when the server advertises it (tests force it on/off).
        self.pipelining: bool | None = None

    def close(self) -> None:
        if not self.stepwise:
            try:
                self.backend.close()
            except Exception:  # noqa: S110 (closing a broken connection may itself fail; nothing to do)
                pass
            return
        for backend in self.slots or [self.backend]:
            self._close_slot(backend)

    def send(self, message: EmailMessage, *, commit_point: Callable[[], bool]) -> None:
        """Deliver `message`; `commit_point()` must durably record the point of no return and return
        False when the row is no longer ours (then nothing is sent and ClaimLost is raised)."""
        if not self.stepwise:
            if not commit_point():
                raise ClaimLost()
            try:
                sent = self.backend.send_messages([message])
            except Exception as exc:
                raise DeliveryUnknown(f"{type(exc).__name__}: {exc}") from exc
            if not sent:
                raise DeliveryUnknown("the email backend reported nothing sent")
            return
        self._send_smtp(message, commit_point)

    def _send_smtp(self, message: EmailMessage, commit_point: Callable[[], bool]) -> None:
        results = self._send_group_smtp([message], lambda indexes: set(indexes) if commit_point() else set())
        if results[0] is not None:
            raise results[0]

    def send_group(
        self, messages: list[EmailMessage], *, commit_points: Callable[[list[int]], set[int]]
    ) -> list[Exception | None]:
        """Deliver several messages with ONE commit point for all of them (one synchronous commit instead
        of one per message). Returns one entry per message: None (delivered: the server answered 250) or
        the exception the single-message `send` would have raised for it (ClaimLost, DeliveryRefused,
        DeliveryNotStarted, DeliveryUnknown).

        `commit_points(indexes)` gets the indexes of the messages ready for their point of no return and
        must durably record it for the rows still ours, returning the indexes it recorded. With SMTP each
        message has its own connection (`len(messages)` <= `connections`): every transaction is brought to
        the 354 stage, the commit points are recorded at once, then the bodies are sent (the server handles
        them in parallel). A message whose commit point was not recorded has its connection dropped
        without the final "." (the server discards it): the per-message crash-window semantics are the
        same as `send`."""
        if not self.stepwise:
            results: list[Exception | None] = [None] * len(messages)
            committed = commit_points(list(range(len(messages))))
            for i, message in enumerate(messages):
                if i not in committed:
                    results[i] = ClaimLost()
                    continue
                try:
                    sent = self.backend.send_messages([message])
                except Exception as exc:
                    results[i] = DeliveryUnknown(f"{type(exc).__name__}: {exc}")
                    continue
                if not sent:
                    results[i] = DeliveryUnknown("the email backend reported nothing sent")
            return results
        return self._send_group_smtp(messages, commit_points)

    def _slot(self, index: int) -> SMTPBackend:
        while len(self.slots) <= index:
            self.slots.append(self.backend if not self.slots else get_connection(fail_silently=False))
        return self.slots[index]

    def _close_slot(self, backend: SMTPBackend) -> None:
        """Close the socket without QUIT: the connection may be mid-transaction (after DATA the server would
        take QUIT as body text and we would wait EMAIL_TIMEOUT for an answer) or already broken. The server
        discards an unfinished transaction."""
        if backend.connection is not None:
            try:
                backend.connection.close()
            except Exception:  # noqa: S110 (closing a broken connection may itself fail; nothing to do)
                pass
        backend.connection = None

    def _send_group_smtp(
        self, messages: list[EmailMessage], commit_points: Callable[[list[int]], set[int]]
    ) -> list[Exception | None]:
        results: list[Exception | None] = [None] * len(messages)
        started: dict[int, tuple[SMTPBackend, bytes]] = {}
        for i, message in enumerate(messages):
            backend = self._slot(i)
            try:
                started[i] = (backend, self._start(backend, message))
            except (DeliveryRefused, DeliveryNotStarted) as exc:
                results[i] = exc
        committed = commit_points(sorted(started)) if started else set()
        # --- point of no return for the committed ones: a broken connection means "delivery unknown" ---
        sent: list[int] = []
        for i, (backend, body) in started.items():
            if i not in committed:
                # Drop the connection without the final "." so the server discards the transaction.
                self._close_slot(backend)
                results[i] = ClaimLost()
                continue
            try:
                data = smtplib._quote_periods(body)
                if data[-2:] != b"\r\n":
                    data += b"\r\n"
                backend.connection.send(data + b".\r\n")
                sent.append(i)
            except (smtplib.SMTPException, OSError) as exc:
                self._close_slot(backend)
                results[i] = DeliveryUnknown(f"{type(exc).__name__}: {exc}")
        for i in sent:  # the bodies are all on the wire: collect the answers
            backend = started[i][0]
            try:
                code, resp = backend.connection.getreply()
            except (smtplib.SMTPException, OSError) as exc:
                self._close_slot(backend)
                results[i] = DeliveryUnknown(f"{type(exc).__name__}: {exc}")
                continue
            if code != 250:
                # A definite answer: the server did not take the message.
                results[i] = DeliveryRefused(f"message refused: {code} {resp!r}", permanent=code >= 500)
        return results

    def _start(self, backend: SMTPBackend, message: EmailMessage) -> bytes:
        """MAIL FROM, RCPT TO, DATA -> 354 on `backend`'s connection; returns the body to send.

        A connection kept open from an earlier batch may have been closed by the server meanwhile (idle
        timeout): that failure, before any commit point, is retried once on a fresh connection."""
        if backend.connection is not None:
            try:
                return self._start_once(backend, message)
            except DeliveryNotStarted:
                pass  # the connection was closed by _start_once; open a new one
        return self._start_once(backend, message)

    def _start_once(self, backend: SMTPBackend, message: EmailMessage) -> bytes:
        try:
            if backend.connection is None:
                backend.open()
            conn: smtplib.SMTP = backend.connection
            encoding = message.encoding or "utf-8"
            from_addr = _envelope_address(message.from_email, encoding)
            recipients = [sanitize_address(a, encoding) for a in message.recipients()]
            body = message_bytes(message)
            conn.ehlo_or_helo_if_needed()
            options = []
            if conn.does_esmtp and conn.has_extn("size"):
                options.append(f"size={len(body)}")
            if self.pipelining if self.pipelining is not None else conn.has_extn("pipelining"):
                mail_reply, rcpt_replies, data_reply = self._envelope_pipelined(
                    conn, from_addr, options, recipients
                )
            else:
                mail_reply, rcpt_replies, data_reply = self._envelope_stepwise(
                    conn, from_addr, options, recipients
                )
            refused = {
                r: reply
                for r, reply in zip(recipients, rcpt_replies, strict=True)
                if reply[0] not in (250, 251)
            }
            failure = None
            if mail_reply[0] != 250:
                failure = DeliveryRefused(
                    f"sender refused: {mail_reply[0]} {mail_reply[1]!r}", permanent=mail_reply[0] >= 500
                )
            elif len(refused) == len(recipients):
                code = min(c for c, _ in refused.values())
                failure = DeliveryRefused(f"recipient refused: {refused}", permanent=code >= 500)
            elif data_reply is not None and data_reply[0] != 354:
                failure = DeliveryRefused(
                    f"DATA refused: {data_reply[0]} {data_reply[1]!r}", permanent=data_reply[0] >= 500
                )
            if failure is not None:
                if data_reply is not None and data_reply[0] == 354:
                    # The server is waiting for a body we will not send: drop the connection (it discards).
                    self._close_slot(backend)
                else:
                    self._reset(backend)
                raise failure
            return body
        except DeliveryRefused:
            raise
        except (smtplib.SMTPException, OSError) as exc:
            self._close_slot(backend)
            raise DeliveryNotStarted(f"{type(exc).__name__}: {exc}") from exc

    @staticmethod
    def _envelope_stepwise(conn: smtplib.SMTP, from_addr: str, options: list[str], recipients: list[str]):
        """MAIL, each RCPT, DATA: one round trip each, stopping at the first answer that ends the attempt.
        Returns (MAIL reply, RCPT replies, DATA reply or None when DATA was not sent)."""
        mail_reply = conn.mail(from_addr, options)
        if mail_reply[0] != 250:
            return mail_reply, [(0, b"not tried")] * len(recipients), None
        rcpt_replies = [conn.rcpt(rcpt) for rcpt in recipients]
        if all(code not in (250, 251) for code, _ in rcpt_replies):
            return mail_reply, rcpt_replies, None
        conn.putcmd("data")
        return mail_reply, rcpt_replies, conn.getreply()

    @staticmethod
    def _envelope_pipelined(conn: smtplib.SMTP, from_addr: str, options: list[str], recipients: list[str]):
        """MAIL, every RCPT and DATA in one write, then their replies in order (RFC 2920 PIPELINING): one
        round trip instead of 2 + len(recipients). The server answers DATA with 354 only when MAIL and at
        least one RCPT succeeded."""
        option_text = "".join(f" {option}" for option in options)
        commands = [f"mail FROM:{smtplib.quoteaddr(from_addr)}{option_text}\r\n"]
        commands += [f"rcpt TO:{smtplib.quoteaddr(rcpt)}\r\n" for rcpt in recipients]
        commands.append("data\r\n")
        conn.send("".join(commands))
        mail_reply = conn.getreply()
        rcpt_replies = [conn.getreply() for _ in recipients]
        return mail_reply, rcpt_replies, conn.getreply()

    def _reset(self, backend: SMTPBackend) -> None:
        try:
            backend.connection.rset()
        except (smtplib.SMTPException, OSError):
            self._close_slot(backend)
