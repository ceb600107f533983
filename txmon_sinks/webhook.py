"""The webhook sink: an HTTP POST of each alert's JSON, or of a digest when over the rate limit."""

from __future__ import annotations

import hashlib
import http.client
import ssl
import urllib.error
import urllib.request
from collections.abc import Sequence
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

from txmon_core import __version__
from txmon_sinks.config import WebhookConfig
from txmon_sinks.outbox import OutboxItem
from txmon_sinks.sink import DeliveryFailed, Rejected

IDEMPOTENCY_HEADER = "Idempotency-Key"
COUNT_HEADER = "X-Txmon-Alerts"
REFUSED = (413, 422)  # answers about the message itself: a digest is split, a lone alert quarantined in time


def digest_body(items: Sequence[OutboxItem]) -> bytes:
    """`{"digest": true, "count": n, "alerts": [...]}` built from the stored payloads as they are."""
    alerts = b",".join(item.payload for item in items)
    return b'{"digest":true,"count":%d,"alerts":[%s]}' % (len(items), alerts)


def message_key(items: Sequence[OutboxItem]) -> str:
    """The idempotency key of a message: the alert id, or a hash of a digest's ids."""
    if len(items) == 1:
        return items[0].alert_id
    joined = "\n".join(item.alert_id for item in items).encode()
    return "digest-" + hashlib.sha256(joined).hexdigest()[:32]


def retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return max((parsedate_to_datetime(value) - datetime.now(timezone.utc)).total_seconds(), 0.0)
    except (TypeError, ValueError):
        return None


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """Refuses every redirect: followed, a 302 would turn the POST into a GET (whose 2xx would count as
    delivered) and could carry the configured headers, e.g. Authorization, to another host or scheme."""

    def redirect_request(self, req: urllib.request.Request, fp: object, code: int, msg: str,
                         headers: object, newurl: str) -> None:
        return None  # urllib then raises the 3xx as an HTTPError


def opener(ca_file: str | None = None) -> urllib.request.OpenerDirector:
    """An opener that never follows redirects and checks TLS against the system CAs (or `ca_file`)."""
    context = ssl.create_default_context(cafile=ca_file)
    return urllib.request.build_opener(_NoRedirects(), urllib.request.HTTPSHandler(context=context))


class WebhookSink:
    """POSTs to `config.url`; any 2xx is delivered; a redirect or any other answer is retried."""

    name = "webhook"
    digests = True

    def __init__(self, config: WebhookConfig) -> None:
        self.config = config
        parts = urlsplit(config.url)
        # Errors name only the host: a URL's path or query may carry a token.
        self._where = parts.netloc.rpartition("@")[2]
        self._opener = opener(str(config.ca_file) if config.ca_file else None)

    def send(self, items: Sequence[OutboxItem]) -> None:
        """One POST: the alert itself, or a digest of several."""
        body = items[0].payload if len(items) == 1 else digest_body(items)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": f"txmon/{__version__}",
            IDEMPOTENCY_HEADER: message_key(items),  # lets the receiver drop a repeat after a lost reply
            COUNT_HEADER: str(len(items)),
            **self.config.headers,
        }
        request = urllib.request.Request(self.config.url, data=body, headers=headers, method="POST")
        try:
            with self._opener.open(request, timeout=self.config.timeout) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            wait = retry_after(exc.headers.get("Retry-After") if exc.headers else None)
            exc.close()
            if 300 <= exc.code < 400:
                raise DeliveryFailed(f"HTTP {exc.code} from {self._where}: redirects are not followed, "
                                     "set url to the final address", wait) from None
            if exc.code in REFUSED:
                raise Rejected(f"HTTP {exc.code} from {self._where}: the message is refused") from None
            raise DeliveryFailed(f"HTTP {exc.code} from {self._where}", wait) from None
        except urllib.error.URLError as exc:
            raise DeliveryFailed(f"cannot reach {self._where}: {exc.reason}") from None
        except (OSError, http.client.HTTPException) as exc:
            raise DeliveryFailed(f"{self._where}: {type(exc).__name__}: {exc}") from None

    def recover(self, items: Sequence[OutboxItem]) -> int:
        """Unknowable from here: a repeat after a crash carries the same Idempotency-Key."""
        return 0

    def close(self) -> None:
        """Nothing held open between posts."""
