"""A secured embedded broker: TLS material made on the spot, SCRAM users, and the settings on each side.

The broker's client listener becomes SASL_SSL with SCRAM-SHA-512 (users are written into the metadata
log when storage is formatted, `--add-scram`); the controller listener stays PLAINTEXT on 127.0.0.1,
because KRaft does not support SCRAM between controllers, and it never leaves loopback. Keys are made
with `openssl` (a throw-away CA, and a server certificate for 127.0.0.1/localhost) and kept in files
only the user can read. Also: secrets kept out of command lines, logs and error messages.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

MECHANISM = "SCRAM-SHA-512"
SCRAM_MODULE = "org.apache.kafka.common.security.scram.ScramLoginModule"
LISTENER = "SASL_SSL"
CERT_DAYS = "2"  # made for one test or demo run; nobody should trust it for long
REDACTED = "[redacted]"
# A secret inside a longer text: key=value pairs and JAAS `password="…"`.
_SECRET_IN_TEXT = re.compile(
    r"""(?P<key>[\w.\-]*(?:password|secret|token|sasl\.jaas\.config)[\w.\-]*)(?P<sep>\s*[=:]\s*)"""
    r"""(?P<value>"[^"]*"|'[^']*'|[^\s,;]+)""",
    re.IGNORECASE,
)


class SecurityError(RuntimeError):
    """TLS material could not be made (openssl missing or failing)."""


def redact_text(text: str, known: Iterable[str] = ()) -> str:
    """`text` with `key=secret` pairs and every known secret value replaced."""
    text = _SECRET_IN_TEXT.sub(lambda m: f"{m.group('key')}{m.group('sep')}{REDACTED}", text)
    for secret in known:
        if secret:
            text = text.replace(secret, REDACTED)
    return text


def write_private(path: Path, text: str) -> Path:
    """Write `text` to a file only the user can read (created 0600, never world-readable meanwhile)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(path, 0o600)  # an existing file keeps its old mode through O_CREAT
    return path


@dataclass(frozen=True)
class ScramUser:
    """A SCRAM user name and password."""

    name: str
    password: str = field(repr=False)

    @classmethod
    def generated(cls, name: str) -> ScramUser:
        """A user with a fresh random password."""
        return cls(name, secrets.token_urlsafe(18))


@dataclass(frozen=True)
class TlsMaterial:
    """A CA certificate (PEM, for clients) and the broker's PKCS12 keystore signed by it."""

    ca_pem: Path
    keystore: Path
    keystore_password: str = field(repr=False)


def _openssl(*args: str, cwd: Path) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        raise SecurityError("`openssl` was not found: install it (Debian/Ubuntu: apt-get install openssl)")
    result = subprocess.run([openssl, *args], cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise SecurityError(f"openssl {args[0]} failed: {result.stderr.strip().splitlines()[-1:]}")


def make_tls_material(folder: Path) -> TlsMaterial:
    """A throw-away CA and a server certificate for 127.0.0.1 and localhost, made with openssl."""
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    password = secrets.token_urlsafe(18)
    # The keystore password goes to openssl through a 0600 file, never on its command line.
    pass_file = write_private(folder / "keystore.pass", password + "\n")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
             "-days", CERT_DAYS, "-subj", "/CN=txmon test CA", "-addext", "basicConstraints=critical,CA:true",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=folder)
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
             "-subj", "/CN=127.0.0.1", cwd=folder)
    write_private(folder / "server.ext", "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                  "extendedKeyUsage=serverAuth,clientAuth\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", "server.pem", "-days", CERT_DAYS, "-extfile", "server.ext", cwd=folder)
    _openssl("pkcs12", "-export", "-in", "server.pem", "-inkey", "server.key", "-certfile", "ca.pem",
             "-name", "broker", "-out", "broker.p12", "-passout", f"file:{pass_file}", cwd=folder)
    for name in ("ca.key", "server.key", "broker.p12"):
        os.chmod(folder / name, 0o600)
    return TlsMaterial(folder / "ca.pem", folder / "broker.p12", password)


def jaas_line(user: ScramUser) -> str:
    """The JAAS configuration a Java client or broker uses to log in as `user`."""
    return f'{SCRAM_MODULE} required username="{user.name}" password="{user.password}";'


@dataclass(frozen=True)
class BrokerSecurity:
    """What makes an embedded broker secured: its TLS material, its own user, and its clients' users."""

    tls: TlsMaterial
    admin: ScramUser  # the broker's own identity on its SASL_SSL listener (inter-broker)
    users: tuple[ScramUser, ...] = ()

    @classmethod
    def generated(cls, folder: Path, *user_names: str) -> BrokerSecurity:
        """Fresh TLS material in `folder` and random passwords for the admin and each named user."""
        return cls(make_tls_material(folder), ScramUser.generated("admin"),
                   tuple(ScramUser.generated(name) for name in user_names))

    def scram_format_args(self) -> list[str]:
        """`--add-scram` arguments for the storage tool: every user's credential, at format time."""
        args = []
        for user in (self.admin, *self.users):
            args += ["--add-scram", f"{MECHANISM}=[name={user.name},password={user.password}]"]
        return args

    def broker_settings(self, port: int, controller_port: int) -> dict[str, str]:
        """server.properties entries that replace the PLAINTEXT client listener by SASL_SSL."""
        listeners = f"{LISTENER}://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}"
        return {
            "listeners": listeners,
            "advertised.listeners": listeners,
            "inter.broker.listener.name": LISTENER,
            "listener.security.protocol.map": f"CONTROLLER:PLAINTEXT,{LISTENER}:{LISTENER}",
            "sasl.enabled.mechanisms": MECHANISM,
            "sasl.mechanism.inter.broker.protocol": MECHANISM,
            f"listener.name.{LISTENER.lower()}.{MECHANISM.lower()}.sasl.jaas.config": jaas_line(self.admin),
            "ssl.keystore.type": "PKCS12",
            "ssl.keystore.location": str(self.tls.keystore),
            "ssl.keystore.password": self.tls.keystore_password,
            "ssl.key.password": self.tls.keystore_password,
            # The broker as a client of itself (inter-broker) trusts the same CA.
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": str(self.tls.ca_pem),
        }

    def client_settings(self, user: ScramUser | None = None) -> dict[str, str]:
        """librdkafka settings (`-X`) for `user` (default the admin)."""
        user = user or self.admin
        return {
            "security.protocol": LISTENER,
            "sasl.mechanisms": MECHANISM,
            "sasl.username": user.name,
            "sasl.password": user.password,
            "ssl.ca.location": str(self.tls.ca_pem),
        }

    def secrets(self) -> list[str]:
        """Every password this security holds (for redaction and for leak checks)."""
        return [self.tls.keystore_password, self.admin.password, *(u.password for u in self.users)]


def write_client_config(path: Path, settings: Mapping[str, str]) -> Path:
    """A `--config FILE` of client settings (`key=value` lines), readable by the user only."""
    return write_private(path, "".join(f"{key}={value}\n" for key, value in settings.items()))


LOCAL_MECHANISM = "SCRAM-SHA-256"
LOCAL_LISTENER = "SASL_PLAINTEXT"
LOGIN_USER = "txmon"


def read_client_config(path: Path) -> dict[str, str]:
    """The `key=value` lines of a client settings file written by write_client_config."""
    pairs = (line.partition("=") for line in path.read_text().splitlines() if "=" in line)
    return {key.strip(): value.strip() for key, _sep, value in pairs}


@dataclass(frozen=True)
class LocalLogin:
    """A SCRAM-SHA-256 login for a broker listening on 127.0.0.1 only: one user, a random password.

    The listener is SASL_PLAINTEXT: SCRAM proves the password without sending it, and loopback traffic
    is not visible to other users, so no TLS material is needed. The user's client settings are kept in
    a 0600 file that every command reads with `--config FILE`; the broker uses the same login itself.
    """

    user: ScramUser
    path: Path

    @classmethod
    def load_or_create(cls, path: Path) -> LocalLogin:
        """The login kept in `path`, or a new one with a random password written there (0600)."""
        if path.exists():
            settings = read_client_config(path)
            return cls(ScramUser(settings["sasl.username"], settings["sasl.password"]), path)
        login = cls(ScramUser.generated(LOGIN_USER), path)
        write_client_config(path, login.client_settings())
        return login

    def scram_format_args(self) -> list[str]:
        """`--add-scram` for the storage tool: the user's credential, at format time."""
        return ["--add-scram", f"{LOCAL_MECHANISM}=[name={self.user.name},password={self.user.password}]"]

    def broker_settings(self, port: int, controller_port: int) -> dict[str, str]:
        """server.properties entries that replace the PLAINTEXT client listener by SASL_PLAINTEXT."""
        listeners = f"{LOCAL_LISTENER}://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}"
        return {
            "listeners": listeners,
            "advertised.listeners": listeners,
            "inter.broker.listener.name": LOCAL_LISTENER,
            "listener.security.protocol.map": f"CONTROLLER:PLAINTEXT,{LOCAL_LISTENER}:{LOCAL_LISTENER}",
            "sasl.enabled.mechanisms": LOCAL_MECHANISM,
            "sasl.mechanism.inter.broker.protocol": LOCAL_MECHANISM,
            f"listener.name.{LOCAL_LISTENER.lower()}.{LOCAL_MECHANISM.lower()}.sasl.jaas.config":
                jaas_line(self.user),
        }

    def client_settings(self) -> dict[str, str]:
        """librdkafka settings of the user."""
        return {
            "security.protocol": LOCAL_LISTENER,
            "sasl.mechanisms": LOCAL_MECHANISM,
            "sasl.username": self.user.name,
            "sasl.password": self.user.password,
        }

    def secrets(self) -> list[str]:
        """The password (for redaction and leak checks)."""
        return [self.user.password]
