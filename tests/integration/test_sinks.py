"""Alert delivery against real servers started here: an HTTP receiver, an SMTP server (aiosmtpd, with
STARTTLS and login), a JSONL file, SQLite, and the Prometheus endpoint scraped over HTTP.

Servers go down and come back; the checks are that nothing is lost and nothing is sent twice.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import ssl
import threading
import urllib.request
from collections.abc import Iterator
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session
from prometheus_client.parser import text_string_to_metric_families

from tests.support.waiting import wait_until
from txmon_core.records.alert import Alert
from txmon_core.secure import make_tls_material
from txmon_sinks import DOWN, OK, AlertStore, Delivery, MetricsBoard, MetricsServer, Outlets, OutletsError
from txmon_sinks.config import delivery_config
from txmon_sinks.identity import id_of, payload
from txmon_sinks.outbox import Outbox
from txmon_tui import cli

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
FAST_RETRY = {"backoff_initial_s": 0.05, "backoff_max_s": 0.3, "down_after_s": 0.5}
PASSWORD = "smtp-Pa55-for-tests"


def alert(n: int, level: str = "alert", account: str = "RO49RZBR0000060012345678",
          ts: str = "2026-11-25T12:00:00.123Z", merchant: str = "Metro") -> Alert:
    amount = 950.0 + n if level == "alert" else 600.0 + n
    return Alert(f"p1-{n:012d}", account, merchant, amount, "RON", ts, level, "amount>900",
                 "2026-11-25T12:00:01.000Z")


# ---- an HTTP receiver that can be stopped and started again on the same port ----------------------

class Receiver:
    """Records every POST (and GET); answers 503 to the next `fail_next` of them, or redirects them all to
    `redirect_to`; serves HTTPS with `tls` (a server context); stop() closes the port."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.posts: list[tuple[dict[str, str], bytes]] = []
        self.gets: list[dict[str, str]] = []
        self.fail_next = 0
        self.redirect_to: str | None = None
        self.refuse = b"\x00never"  # bodies holding this are answered 422 Unprocessable Entity
        self.tls = tls
        self.port = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
                with receiver._lock:
                    receiver.gets.append(dict(self.headers.items()))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if receiver.redirect_to is not None:
                    self.send_response(302)
                    self.send_header("Location", receiver.redirect_to)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if receiver.refuse in body:
                    self.send_response(422)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                with receiver._lock:
                    failing = receiver.fail_next > 0
                    if failing:
                        receiver.fail_next -= 1
                    else:
                        receiver.posts.append((dict(self.headers.items()), body))
                self.send_response(503 if failing else 204)
                if failing:
                    self.send_header("Retry-After", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep pytest's output for failures

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        if self.tls is not None:
            self._server.socket = self.tls.wrap_socket(self._server.socket, server_side=True)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)

    @property
    def url(self) -> str:
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}/hooks/txmon?token=t0ken"

    def alert_ids(self) -> list[str]:
        """The alert ids received, digests unpacked, in arrival order."""
        with self._lock:
            posts = list(self.posts)
        ids = []
        for _headers, body in posts:
            data = orjson.loads(body)
            for one in data["alerts"] if data.get("digest") else [data]:
                ids.append(f"{one['tx_id']}:{one['level']}")
        return ids


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    server.start()
    yield server
    server.stop()


def webhook_settings(url: str, **extra: Any) -> dict[str, Any]:
    return {"sinks": {"webhook": {"url": url, "max_per_minute": 0, "timeout_s": 2, **FAST_RETRY, **extra}},
            "storage": {"enabled": False}}


def health_of(delivery: Delivery, name: str) -> Any:
    return next(h for h in delivery.health() if h.name == name)


def test_webhook_down_then_back_loses_nothing_and_sends_nothing_twice(
    tmp_path: Path, receiver: Receiver
) -> None:
    receiver.stop()  # the port is closed: connection refused
    batch = [alert(n) for n in range(20)]
    with Delivery.from_settings(webhook_settings(receiver.url), tmp_path) as delivery:
        delivery.offer(batch)
        delivery.offer(batch[:5])  # the alerts topic may deliver repeats
        down = wait_until(lambda: (h := health_of(delivery, "webhook")).state == DOWN and h, 10,
                          "the webhook sink to be reported down")
        assert down.pending == 20 and down.sent == 0 and down.duplicates == 5
        assert "cannot reach 127.0.0.1" in (down.last_error or "")
        assert "t0ken" not in (down.last_error or "")  # the URL's query may hold a secret
        receiver.fail_next = 2  # back, but answers 503 twice first
        receiver.start()
        wait_until(lambda: health_of(delivery, "webhook").sent == 20, 15, "all 20 alerts delivered")
        delivery.offer(batch[10:])  # repeats after delivery are dropped too
        assert delivery.flush()
        ok = health_of(delivery, "webhook")
        assert (ok.state, ok.pending, ok.duplicates) == (OK, 0, 15)
    assert sorted(receiver.alert_ids()) == sorted(id_of(a) for a in batch)
    keys = [headers["Idempotency-Key"] for headers, _body in receiver.posts]
    assert len(keys) == len(set(keys)) == 20


def test_a_redirect_is_a_failure_never_followed(tmp_path: Path, receiver: Receiver) -> None:
    elsewhere = Receiver()
    elsewhere.start()
    try:
        receiver.redirect_to = elsewhere.url  # a 302 that urllib would follow as a GET
        with Delivery.from_settings(webhook_settings(receiver.url), tmp_path) as delivery:
            delivery.offer([alert(1)])
            failing = wait_until(lambda: (h := health_of(delivery, "webhook")).failures >= 2 and h, 10,
                                 "two failed attempts")
            assert (failing.sent, failing.pending) == (0, 1)
            assert "HTTP 302" in (failing.last_error or "") and "not followed" in (failing.last_error or "")
            assert elsewhere.gets == [] and elsewhere.posts == []
            receiver.redirect_to = None
            wait_until(lambda: health_of(delivery, "webhook").sent == 1, 10, "the alert delivered")
    finally:
        elsewhere.stop()
    assert receiver.alert_ids() == [id_of(alert(1))]


def test_an_alert_the_receiver_refuses_is_quarantined_and_the_rest_flow(
    tmp_path: Path, receiver: Receiver
) -> None:
    receiver.refuse = b"Refused Shop"
    batch = [alert(0), alert(1, merchant="Refused Shop"), alert(2)]
    with Delivery.from_settings(webhook_settings(receiver.url, quarantine_after=3), tmp_path) as delivery:
        delivery.offer(batch)
        health = wait_until(lambda: (h := health_of(delivery, "webhook")).sent + h.quarantined == 3 and h,
                            15, "the webhook past the refused alert")
        assert (health.state, health.sent, health.quarantined, health.failures) == (OK, 2, 1, 2)
    assert receiver.alert_ids() == [id_of(alert(0)), id_of(alert(2))]


def test_webhook_headers_go_over_https_checked_against_a_private_ca(tmp_path: Path) -> None:
    tls = make_tls_material(tmp_path / "tls")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tls.ca_pem.parent / "server.pem", tls.ca_pem.parent / "server.key")
    server = Receiver(tls=context)
    server.start()
    try:
        settings = webhook_settings(server.url, headers={"Authorization": "Bearer hook-t0ken"},
                                    ca_file=str(tls.ca_pem))
        with Delivery.from_settings(settings, tmp_path) as delivery:
            delivery.offer([alert(1)])
            wait_until(lambda: health_of(delivery, "webhook").sent == 1, 10, "the alert delivered over TLS")
    finally:
        server.stop()
    assert [headers["Authorization"] for headers, _body in server.posts] == ["Bearer hook-t0ken"]


def test_webhook_over_its_rate_sends_one_digest_then_waits(tmp_path: Path, receiver: Receiver) -> None:
    batch = [alert(n) for n in range(10)]
    with Delivery.from_settings(webhook_settings(receiver.url, max_per_minute=3), tmp_path) as delivery:
        delivery.offer(batch)
        wait_until(lambda: health_of(delivery, "webhook").sent == 10, 10, "10 alerts in 3 messages")
        delivery.offer([alert(n) for n in range(10, 12)])
        assert delivery.flush()
        health = wait_until(lambda: (h := health_of(delivery, "webhook")).pending == 2 and h, 5,
                            "the 2 alerts over the limit to wait")
        assert (health.state, health.digests) == (OK, 1)
    assert len(receiver.posts) == 3  # two singles, then one digest of the other eight
    digest = orjson.loads(receiver.posts[2][1])
    assert digest["digest"] is True and digest["count"] == 8
    assert receiver.alert_ids() == [id_of(a) for a in batch]


def test_a_restart_resumes_from_the_outbox(tmp_path: Path, receiver: Receiver) -> None:
    batch = [alert(n) for n in range(10)]
    settings = webhook_settings(receiver.url)
    with Delivery.from_settings(settings, tmp_path) as first:
        first.offer(batch[:2])
        wait_until(lambda: health_of(first, "webhook").sent == 2, 10, "the first 2 alerts delivered")
        receiver.stop()
        first.offer(batch[2:7])
        wait_until(lambda: health_of(first, "webhook").failures > 0, 10, "a failed attempt")
    receiver.start()  # the monitor restarts with the receiver back
    with Delivery.from_settings(settings, tmp_path) as second:
        assert health_of(second, "webhook").sent == 0
        second.offer(batch)  # the topic re-read from the start would bring them all again
        wait_until(lambda: len(receiver.alert_ids()) >= 10, 10, "every alert delivered")
        assert second.flush()
        assert health_of(second, "webhook").duplicates == 7
    assert sorted(receiver.alert_ids()) == sorted(id_of(a) for a in batch)


# ---- SMTP: aiosmtpd with STARTTLS and login -------------------------------------------------------

class Mailbox:
    """Collects the messages an SMTP server accepted."""

    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server: SMTPServer, session: Session, envelope: Envelope) -> str:  # noqa: N802
        self.messages.append(envelope.original_content or b"")
        return "250 OK"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[SimpleNamespace]:
    """An SMTP server requiring STARTTLS and login (txmon / PASSWORD); not started: tests start it."""
    tls = make_tls_material(tmp_path / "tls")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tls.ca_pem.parent / "server.pem", tls.ca_pem.parent / "server.key")

    def authenticate(server: SMTPServer, session: Session, envelope: Envelope, mechanism: str,
                     data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"txmon", PASSWORD.encode())
        return AuthResult(success=ok, handled=False)  # handled=False: the server answers 535 itself

    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port(), tls_context=context,
                            require_starttls=True, auth_required=True, authenticator=authenticate)
    state = SimpleNamespace(controller=controller, mailbox=mailbox, ca=tls.ca_pem, running=False)
    yield state
    if state.running:
        controller.stop()


def email_settings(smtp: SimpleNamespace, password: str = PASSWORD, **extra: Any) -> dict[str, Any]:
    return {"sinks": {"email": {
        "host": "127.0.0.1", "port": smtp.controller.port, "starttls": True, "ca_file": str(smtp.ca),
        "username": "txmon", "password": password, "from": "txmon@example.org", "to": ["ops@example.org"],
        "timeout_s": 5, "max_per_minute": 0, **FAST_RETRY, **extra}}, "storage": {"enabled": False}}


def test_email_over_starttls_with_login_down_then_back(
    tmp_path: Path, smtp: SimpleNamespace, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    batch = [alert(1), alert(2), alert(2, level="velocity")]
    with Delivery.from_settings(email_settings(smtp), tmp_path) as delivery:
        delivery.offer(batch)  # the server is not up yet
        wait_until(lambda: health_of(delivery, "email").failures >= 2, 10, "failed attempts while down")
        smtp.controller.start()
        smtp.running = True
        wait_until(lambda: health_of(delivery, "email").sent == 3, 20, "3 mails delivered")
        delivery.offer(batch)
        assert delivery.flush()
        assert health_of(delivery, "email").state == OK
    mails = [message_from_bytes(raw) for raw in smtp.mailbox.messages]
    assert len(mails) == 3
    assert sorted(str(m["Subject"]) for m in mails) == [
        "[txmon] ALERT 951.0 RON at Metro", "[txmon] ALERT 952.0 RON at Metro",
        "[txmon] VELOCITY 602.0 RON at Metro"]
    assert len({m["Message-ID"] for m in mails}) == 3
    assert PASSWORD not in caplog.text


def test_email_over_implicit_tls_with_login(tmp_path: Path) -> None:
    tls = make_tls_material(tmp_path / "tls")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tls.ca_pem.parent / "server.pem", tls.ca_pem.parent / "server.key")

    def authenticate(server: SMTPServer, session: Session, envelope: Envelope, mechanism: str,
                     data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"txmon", PASSWORD.encode())
        return AuthResult(success=ok, handled=False)

    mailbox = Mailbox()
    # ssl_context: TLS from the first byte, as on port 465 (no STARTTLS offered). aiosmtpd counts only
    # STARTTLS as TLS for AUTH, hence auth_require_tls=False: this whole connection is encrypted.
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port(), ssl_context=context,
                            auth_required=True, auth_require_tls=False, authenticator=authenticate)
    controller.start()
    try:
        settings = {"sinks": {"email": {
            "host": "127.0.0.1", "port": controller.port, "tls": "implicit", "ca_file": str(tls.ca_pem),
            "username": "txmon", "password": PASSWORD, "from": "txmon@example.org", "to": "ops@example.org",
            "timeout_s": 5, "max_per_minute": 0, **FAST_RETRY}}, "storage": {"enabled": False}}
        with Delivery.from_settings(settings, tmp_path) as delivery:
            delivery.offer([alert(1)])
            wait_until(lambda: health_of(delivery, "email").sent == 1, 20, "1 mail over implicit TLS")
    finally:
        controller.stop()
    assert [str(message_from_bytes(raw)["Subject"]) for raw in mailbox.messages] == [
        "[txmon] ALERT 951.0 RON at Metro"]


def test_a_merchant_with_line_breaks_neither_splits_the_subject_nor_blocks_the_mails_behind_it(
    tmp_path: Path, smtp: SimpleNamespace
) -> None:
    smtp.controller.start()
    smtp.running = True
    poison = alert(1, merchant="Evil\r\nBcc: victim@example.org")
    with Delivery.from_settings(email_settings(smtp), tmp_path) as delivery:
        delivery.offer([poison, alert(2), alert(3)])
        wait_until(lambda: health_of(delivery, "email").sent == 3, 20, "3 mails delivered")
        assert health_of(delivery, "email").quarantined == 0
    mails = [message_from_bytes(raw) for raw in smtp.mailbox.messages]
    assert [str(m["Subject"]) for m in mails] == [
        "[txmon] ALERT 951.0 RON at Evil Bcc: victim@example.org", "[txmon] ALERT 952.0 RON at Metro",
        "[txmon] ALERT 953.0 RON at Metro"]
    assert all(m["Bcc"] is None for m in mails)


def test_a_wrong_password_shows_as_down_without_the_password(
    tmp_path: Path, smtp: SimpleNamespace, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    smtp.controller.start()
    smtp.running = True
    wrong = "wrong-Pa55-never-shown"
    with Delivery.from_settings(email_settings(smtp, password=wrong), tmp_path) as delivery:
        delivery.offer([alert(1)])
        down = wait_until(lambda: (h := health_of(delivery, "email")).state == DOWN and h, 10,
                          "the email sink to be reported down")
    assert "535" in (down.last_error or "") and down.pending == 1
    assert wrong not in (down.last_error or "") and wrong not in caplog.text
    assert smtp.mailbox.messages == []


# ---- JSONL and SQLite -------------------------------------------------------------------------------

def test_jsonl_and_database_hold_each_distinct_alert_once(tmp_path: Path) -> None:
    other = "RO49RZBR0000060099999999"
    batch = [alert(1), alert(2, level="large"), alert(3, account=other, ts="2026-11-26T08:00:00.000Z"),
             alert(1, level="velocity")]
    with Delivery.from_settings({"sinks": {"jsonl": {}}, "storage": {}}, tmp_path) as delivery:
        delivery.offer(batch)
        delivery.offer(batch[:2] + [batch[0]])
        wait_until(lambda: all(h.sent == 4 for h in delivery.health()), 10, "4 alerts in file and database")
        assert [h.name for h in delivery.health()] == ["database", "jsonl"]
        assert all(h.duplicates == 3 for h in delivery.health())
    lines = (tmp_path / "alerts.jsonl").read_bytes().splitlines()
    assert [orjson.loads(line) for line in lines] == [orjson.loads(payload(a)) for a in batch]
    store = AlertStore(f"sqlite:///{tmp_path / 'alerts.sqlite'}")
    try:
        assert store.counts_per_level() == {"alert": 2, "large": 1, "velocity": 1}
        assert [a.tx_id for a in store.alerts(account=other)] == ["p1-000000000003"]
        assert [a.alert_id for a in store.alerts(level="velocity")] == ["p1-000000000001:velocity"]
        day_one = store.alerts(since=1795564800.0, until=1795651200.0)  # 2026-11-25 UTC
        assert len(day_one) == 3 and all(a.ts and a.ts.startswith("2026-11-25") for a in day_one)
        assert store.counts_per_level(since=1795651200.0) == {"alert": 1}
    finally:
        store.close()


def test_jsonl_lines_written_just_before_a_crash_are_not_written_again(tmp_path: Path) -> None:
    config = delivery_config({"sinks": {"jsonl": {}}, "storage": {"enabled": False}}, tmp_path)
    batch = [alert(n) for n in range(5)]
    # The state a crash leaves: all five in the outbox, the first two already in the file, cursor at 0.
    outbox = Outbox(config.outbox_path)
    outbox.register("jsonl")
    outbox.add([(id_of(a), payload(a)) for a in batch], 0.0)
    outbox.close()
    (tmp_path / "alerts.jsonl").write_bytes(b"".join(payload(a) + b"\n" for a in batch[:2]))
    with Delivery(config) as delivery:
        wait_until(lambda: health_of(delivery, "jsonl").pending == 0, 10, "the outbox drained")
    ids = [orjson.loads(line)["tx_id"] for line in (tmp_path / "alerts.jsonl").read_bytes().splitlines()]
    assert ids == [a.tx_id for a in batch]


def test_report_prints_alerts_from_the_database(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with Delivery.from_settings({"storage": {}}, tmp_path) as delivery:
        delivery.offer([alert(1), alert(2, level="large"), alert(3)])
        wait_until(lambda: health_of(delivery, "database").sent == 3, 10, "3 alerts stored")
    assert cli.main(["report", "--alerts", "--data-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"alert\s+2", out) and re.search(r"large\s+1", out) and "p1-000000000003" in out
    assert cli.main(["report", "--alerts", "--level", "large", "--data-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "p1-000000000002" in out and "p1-000000000003" not in out


# ---- Prometheus ---------------------------------------------------------------------------------------

def dashboard_metric_names() -> set[str]:
    dashboard = json.loads((ROOT / "dashboards" / "txmon-grafana.json").read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    assert exprs, "the dashboard has no queries"
    return {name for expr in exprs for name in re.findall(r"\btxmon_[a-z_]+", expr)}


def test_prometheus_endpoint_scraped_over_http_matches_the_dashboard(tmp_path: Path) -> None:
    totals = SimpleNamespace(produced=1000, processed=990, flagged=420, alerts=400, dead_letters=3,
                             duplicates=7, undecodable=1, backlog=10)
    with Delivery.from_settings({"sinks": {"jsonl": {}}, "storage": {}}, tmp_path) as delivery:
        delivery.offer([alert(1), alert(2)], received_at=1795608002.123)  # 2 s after the event time
        wait_until(lambda: health_of(delivery, "jsonl").sent == 2, 10, "2 alerts delivered")
        board = MetricsBoard(delivery)
        board.update(totals)
        server = MetricsServer(board.sample, 0)
        server.start()
        try:
            assert server.url.startswith("http://127.0.0.1:")
            with urllib.request.urlopen(server.url, timeout=10) as response:
                text = response.read().decode()
        finally:
            server.close()
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(text) for s in family.samples}
    assert samples[("txmon_produced_total", ())] == 1000
    assert samples[("txmon_dead_letters_total", ())] == 3
    assert samples[("txmon_backlog", ())] == 10
    assert samples[("txmon_detection_latency_seconds_count", ())] == 2
    assert samples[("txmon_detection_latency_seconds_bucket", (("le", "1.0"),))] == 0
    assert samples[("txmon_detection_latency_seconds_bucket", (("le", "2.0"),))] == 2
    assert samples[("txmon_sink_up", (("sink", "jsonl"),))] == 1
    assert samples[("txmon_sink_sent_total", (("sink", "database"),))] == 2
    assert samples[("txmon_distinct_alerts_total", (("level", "alert"),))] == 2
    exported = {name for name, _labels in samples}
    missing = dashboard_metric_names() - exported
    assert not missing, f"the dashboard queries metrics the endpoint does not export: {sorted(missing)}"


def test_without_sinks_or_storage_alerts_still_feed_the_latency_histogram(tmp_path: Path) -> None:
    with Delivery.from_settings({"storage": {"enabled": False}}, tmp_path) as delivery:
        assert delivery.health() == []
        delivery.offer([alert(1), alert(1), alert(2)], received_at=1795608000.623)
        assert delivery.flush()
        assert delivery.latency().total == 2 and delivery.distinct_by_level() == {"alert": 2}
    assert not (tmp_path / "delivery").exists()


def test_the_command_line_says_in_one_line_when_metrics_cannot_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(SystemExit) as exited:
            cli.main(["--headless", "--duration", "1", "--data-dir", str(tmp_path),
                      "--metrics-port", str(port)])
    assert exited.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err == f"txmon-tui: cannot serve metrics on 127.0.0.1:{port}: Address already in use"


def test_the_command_line_rejects_a_bad_sink_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = tmp_path / "txmon.toml"
    settings.write_text('[sinks.webhook]\nurl = "ftp://example.org/x"\n')
    with pytest.raises(SystemExit) as exited:
        cli.main(["--headless", "--duration", "1", "--data-dir", str(tmp_path), "--settings", str(settings)])
    assert exited.value.code == 2
    assert "[sinks.webhook] url: expected an http:// or https:// URL" in capsys.readouterr().err


def test_one_deliverer_per_data_dir(tmp_path: Path) -> None:
    with Delivery.from_settings({"storage": {}}, tmp_path):
        second = Outlets.from_settings({"storage": {}}, tmp_path)
        with pytest.raises(OutletsError, match=r"already delivered by pid \d+"):
            second.start()
    with Delivery.from_settings({"storage": {}}, tmp_path) as again:  # free once the first has closed
        assert [h.name for h in again.health()] == ["database"]


def test_alerts_no_database_takes_are_quarantined_and_the_rest_flow(tmp_path: Path) -> None:
    settings = {"storage": {**FAST_RETRY, "quarantine_after": 2}}
    too_long, with_nul = alert(1, merchant="M" * 201), alert(3, merchant="Lidl\x00")
    batch = [alert(0), too_long, alert(2), with_nul, alert(4)]
    with Delivery.from_settings(settings, tmp_path) as delivery:
        delivery.offer(batch)
        health = wait_until(lambda: (h := health_of(delivery, "database")).sent + h.quarantined == 5 and h,
                            20, "the outbox drained past the two bad alerts")
        assert (health.state, health.sent, health.quarantined) == (OK, 3, 2)
        assert health.describe().endswith("· 2 quarantined")
    outbox = Outbox(tmp_path / "delivery" / "outbox.sqlite")
    try:
        kept = outbox.quarantined("database")
    finally:
        outbox.close()
    assert [(item.alert_id, item.payload) for item, _reason in kept] == [
        (id_of(a), payload(a)) for a in (too_long, with_nul)]
    assert "merchant has 201 characters, over the 200" in kept[0][1]
    assert "merchant holds a NUL character" in kept[1][1]
    store = AlertStore(f"sqlite:///{tmp_path / 'alerts.sqlite'}")
    try:
        assert sorted(a.tx_id for a in store.alerts()) == [alert(n).tx_id for n in (0, 2, 4)]
    finally:
        store.close()
    with Delivery.from_settings(settings, tmp_path) as again:  # still counted after a restart
        assert health_of(again, "database").quarantined == 2


@pytest.mark.parametrize("sink", ["jsonl", "database"])
def test_file_and_database_sinks_blocked_then_free_lose_nothing(tmp_path: Path, sink: str) -> None:
    blocker = tmp_path / "blocked"
    blocker.write_text("a file where the sink's folder should be\n")  # mkdir fails until it is gone
    target = blocker / ("alerts.jsonl" if sink == "jsonl" else "alerts.sqlite")
    settings: dict[str, Any] = (
        {"sinks": {"jsonl": {"path": str(target), **FAST_RETRY}}, "storage": {"enabled": False}}
        if sink == "jsonl" else {"storage": {"url": f"sqlite:///{target}", **FAST_RETRY}}
    )
    batch = [alert(n) for n in range(6)]
    with Delivery.from_settings(settings, tmp_path) as delivery:
        delivery.offer(batch)
        wait_until(lambda: health_of(delivery, sink).state == DOWN, 10, f"the {sink} sink reported down")
        blocker.unlink()
        wait_until(lambda: health_of(delivery, sink).sent == 6, 10, f"6 alerts through the {sink} sink")
        assert health_of(delivery, sink).state == OK
    if sink == "jsonl":
        assert [orjson.loads(line)["tx_id"] for line in target.read_bytes().splitlines()] == [
            a.tx_id for a in batch]
    else:
        store = AlertStore(f"sqlite:///{target}")
        try:
            assert store.counts_per_level() == {"alert": 6}
        finally:
            store.close()
