"""Properties of `--config FILE` (client settings kept off command lines) and of secret redaction."""

from __future__ import annotations

import argparse
import stat
import string
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from txmon_core import options
from txmon_core.secure import REDACTED, redact_text, write_client_config

keys = st.text(string.ascii_letters + string.digits + "._-", min_size=1, max_size=30)
# Values as a file line can hold them: no line breaks, no surrounding blanks.
values = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), max_size=40).map(str.strip)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="t")
    options.add_kafka_options(p)
    return p


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(keys, values, max_size=8))
def test_config_file_round_trips(tmp_path_factory: pytest.TempPathFactory, settings_: dict[str, str]) -> None:
    path = write_client_config(tmp_path_factory.mktemp("conf") / "client.conf", settings_)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert options.config_file(str(path)) == settings_


def test_dash_x_and_bootstrap_override_the_file(tmp_path: Path) -> None:
    path = write_client_config(tmp_path / "c.conf", {"sasl.password": "file", "bootstrap.servers": "f:1",
                                                     "security.protocol": "SASL_SSL"})
    path.write_text("# a comment\n\n" + path.read_text())
    args = parser().parse_args(["--config", str(path), "-X", "sasl.password=x", "-b", "b:2"])
    assert options.client_config(args) == {"sasl.password": "x", "bootstrap.servers": "b:2",
                                           "security.protocol": "SASL_SSL"}


def test_a_bad_line_is_named_but_never_shown(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "c.conf"
    path.write_text("sasl.username=alice\nhunter2\n")
    with pytest.raises(SystemExit):
        parser().parse_args(["--config", str(path)])
    err = capsys.readouterr().err
    assert "line 2: expected key=value" in err and "hunter2" not in err


@settings(max_examples=200, deadline=None)
@given(st.text(string.ascii_letters + string.digits + "!#$%&()*+-/<>?@[]^_{|}~", min_size=4, max_size=30))
def test_redaction_hides_any_password(secret: str) -> None:
    for text in (f"sasl.password={secret}", f'password="{secret}"', f"-X sasl.password={secret} rest"):
        assert secret not in redact_text(text), text
        assert REDACTED in redact_text(text)
    assert secret not in redact_text(f"error near {secret}!", known=[secret])
