"""The email sink: one mail per alert through SMTP (optional STARTTLS and login), or a digest."""

from __future__ import annotations

import hashlib
import smtplib
import ssl
import unicodedata
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import formatdate

from txmon_core.secure import redact_text
from txmon_sinks.config import TLS_IMPLICIT, TLS_STARTTLS, EmailConfig
from txmon_sinks.identity import decode
from txmon_sinks.outbox import OutboxItem
from txmon_sinks.sink import DeliveryFailed, Rejected

_FIELDS = ("level", "amount", "currency", "account_id", "merchant", "tx_id", "ts", "rule", "detected_at",
           "tx_ids")


HEADER_MAX = 200  # characters of a subject: a record may carry a merchant of any length
_NOT_IN_HEADERS = {"Cc", "Cf", "Zl", "Zp"}  # controls (CR, LF, ESC, NUL…), bidi overrides, line separators


def header_text(text: str, limit: int = HEADER_MAX) -> str:
    """`text` safe in a mail header: controls, format characters and line separators become spaces,
    runs of spaces one, at most `limit` characters (cut with an ellipsis)."""
    cleaned = "".join(" " if unicodedata.category(char) in _NOT_IN_HEADERS else char for char in text)
    cleaned = " ".join(cleaned.split())
    return cleaned if len(cleaned) <= limit else cleaned[:limit - 1] + "…"


def subject(items: Sequence[OutboxItem], prefix: str) -> str:
    """`[txmon] ALERT 943.16 RON at Metro` for one alert, `[txmon] 37 alerts (digest)` for several.

    The fields come from Kafka: whatever they hold, the subject is one clean header line.
    """
    if len(items) > 1:
        return header_text(f"{prefix} {len(items)} alerts (digest)")
    data = decode(items[0].payload)
    return header_text(f"{prefix} {str(data.get('level', '')).upper()} {data.get('amount')} "
                       f"{data.get('currency') or ''} at {data.get('merchant') or '?'}")


def body(items: Sequence[OutboxItem]) -> str:
    """Plain text: the fields of each alert, then its JSON as sent on the alerts topic."""
    parts = []
    for item in items:
        data = decode(item.payload)
        # Field values without controls (a mail reader may show them on a terminal); the JSON escapes its own.
        lines = [f"{name:<12} {header_text(str(data.get(name)), 1000)}" for name in _FIELDS if name in data]
        parts.append("\n".join(lines) + "\n\n" + item.payload.decode())
    return "\n\n".join(parts) + "\n"


def message_id(items: Sequence[OutboxItem]) -> str:
    """The same Message-ID for the same alerts, so a mail repeated after a crash can be recognised."""
    joined = "\n".join(item.alert_id for item in items).encode()
    return f"<{hashlib.sha256(joined).hexdigest()[:40]}@txmon>"


class EmailSink:
    """Sends through `config.host`; one connection is kept for a burst and reopened when it drops."""

    name = "email"
    digests = True

    def __init__(self, config: EmailConfig) -> None:
        self.config = config
        self._smtp: smtplib.SMTP | None = None

    def _secrets(self) -> list[str]:
        return [self.config.password] if self.config.password else []

    def _connect(self) -> smtplib.SMTP:
        config = self.config
        context = ssl.create_default_context(cafile=str(config.ca_file) if config.ca_file else None)
        if config.tls == TLS_IMPLICIT:
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(config.host, config.port, timeout=config.timeout,
                                                  context=context)
        else:
            smtp = smtplib.SMTP(config.host, config.port, timeout=config.timeout)
        try:
            smtp.ehlo()
            if config.tls == TLS_STARTTLS:
                smtp.starttls(context=context)
                smtp.ehlo()
            if config.username:
                smtp.login(config.username, config.password or "")
        except BaseException:
            smtp.close()
            raise
        return smtp

    def _message(self, items: Sequence[OutboxItem]) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self.config.sender
        message["To"] = ", ".join(self.config.recipients)
        message["Subject"] = subject(items, self.config.subject_prefix)
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = message_id(items)
        message["X-Txmon-Alerts"] = str(len(items))
        message.set_content(body(items))
        return message

    def send(self, items: Sequence[OutboxItem]) -> None:
        """One mail; a kept connection that the server closed meanwhile is reopened once."""
        try:
            message = self._message(items)
        except (ValueError, TypeError, UnicodeError) as exc:  # nothing in the alerts should get here
            text = f"cannot write a mail of {len(items)} alerts: {type(exc).__name__}: {exc}"
            raise Rejected(text) from None
        for attempt in (1, 2):
            reused = self._smtp is not None
            try:
                if self._smtp is None:
                    self._smtp = self._connect()
                self._smtp.send_message(message)
                return
            except smtplib.SMTPDataError as exc:
                if exc.smtp_code < 500:
                    raise self._failed(exc) from None
                raise Rejected(self._failed(exc).args[0]) from None  # 5xx: the server refuses this mail
            except smtplib.SMTPServerDisconnected as exc:
                self._drop()
                if not (reused and attempt == 1):
                    raise self._failed(exc) from None
            except (smtplib.SMTPException, OSError) as exc:
                self._drop()
                raise self._failed(exc) from None

    def _failed(self, exc: BaseException) -> DeliveryFailed:
        where = f"{self.config.host}:{self.config.port}"
        text = redact_text(f"{type(exc).__name__}: {exc}", self._secrets())
        return DeliveryFailed(f"SMTP {where}: {text}")

    def _drop(self) -> None:
        if self._smtp is not None:
            try:
                self._smtp.close()
            finally:
                self._smtp = None

    def recover(self, items: Sequence[OutboxItem]) -> int:
        """Unknowable from here: a repeat after a crash carries the same Message-ID."""
        return 0

    def close(self) -> None:
        """Say QUIT if connected."""
        if self._smtp is not None:
            try:
                self._smtp.quit()
            except (smtplib.SMTPException, OSError):
                pass  # the server went away first: nothing left to release but the socket
            finally:
                self._drop()
