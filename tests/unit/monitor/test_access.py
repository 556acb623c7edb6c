"""Who may read and who may review on the dashboard: analysts' tokens, a trusted proxy, a viewer."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import make_mocked_request

from monitor.errors import ConfigError
from monitor.web.access import Access, hash_token, is_loopback, read_tokens_file, redact, write_analyst
from monitor.web.settings import WebSettings


def request(headers: dict[str, str] | None = None, path: str = "/api/snapshot", remote: str = "127.0.0.1") -> Any:
    made = make_mocked_request("GET", path, headers={"Host": "127.0.0.1:6067", **(headers or {})})
    return made.clone(remote=remote)


def test_tokens_are_kept_as_salted_hashes_and_name_their_analyst(tmp_path: Path) -> None:
    path = tmp_path / "analysts"
    write_analyst(path, "dana", "dana-token-1")
    write_analyst(path, "lee", "lee-token-2")
    text = path.read_text()
    assert "dana-token-1" not in text and "lee-token-2" not in text
    assert os.stat(path).st_mode & 0o077 == 0, "readable by its owner only"
    assert hash_token("same") != hash_token("same"), "salted"
    access = Access(WebSettings(tokens_file=path))
    assert access.identify(request({"Authorization": "Bearer dana-token-1"})).analyst == "dana"
    assert access.identify(request({"Cookie": "finmon_token=lee-token-2"})).analyst == "lee"
    assert access.identify(request(path="/dashboard?token=dana-token-1")).analyst == "dana"
    # a login link beats an older cookie (a token that was replaced)
    stale = request({"Cookie": "finmon_token=old-token"}, path="/dashboard?token=lee-token-2")
    assert access.identify(stale).analyst == "lee"
    assert access.identify(request({"Authorization": "Bearer wrong"})) is None
    assert access.identify(request()) is None, "a login is configured: nobody reads without one"
    write_analyst(path, "dana", "dana-token-new")  # a new token replaces the old one, without a restart
    os.utime(path, ns=(1, 1))  # whatever the clock says, a changed stamp means a re-read
    assert access.identify(request({"Authorization": "Bearer dana-token-1"})) is None
    assert access.identify(request({"Authorization": "Bearer dana-token-new"})).analyst == "dana"


def test_a_broken_tokens_file_is_named_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "analysts"
    path.write_text("# desk analysts\n\ndana:plaintext-token\n")
    with pytest.raises(ConfigError, match=r"analysts:3: expected `name:pbkdf2_sha256\$"):
        read_tokens_file(path)
    with pytest.raises(ConfigError, match="cannot read the analysts' tokens file"):
        Access(WebSettings(tokens_file=tmp_path / "missing"))


def test_the_proxy_user_header_is_believed_from_trusted_addresses_only(tmp_path: Path) -> None:
    web = WebSettings(proxy_user_header="X-Forwarded-User", trusted_proxies=["10.1.0.0/16"])
    access = Access(web)
    assert web.trusted_proxies == [ipaddress.ip_network("10.1.0.0/16")]
    assert access.identify(request({"X-Forwarded-User": "kim"}, remote="10.1.2.3")).analyst == "kim"
    assert access.identify(request({"X-Forwarded-User": "kim"}, remote="10.2.0.1")) is None
    assert access.identify(request({"X-Forwarded-User": "kim"}, remote="127.0.0.1")) is None
    with pytest.raises(ValueError, match="needs trusted_proxies"):
        WebSettings(proxy_user_header="X-Forwarded-User")


def test_the_shared_token_reads_but_names_nobody_and_loopback_without_logins_only_reads() -> None:
    viewer = Access(WebSettings(token="viewing-token")).identify(request({"Authorization": "Bearer viewing-token"}))
    assert viewer is not None and viewer.analyst is None and viewer.via == "viewer"
    local = Access(WebSettings()).identify(request())
    assert local is not None and local.analyst is None and local.via == "loopback"
    for host in ("localhost:6067", "[::1]:6067", "127.0.0.1"):
        assert Access(WebSettings()).identify(request({"Host": host})) is not None, host
    # a page of another site that rebinds its name to 127.0.0.1 reads nothing
    assert Access(WebSettings()).identify(request({"Host": "evil.example:6067"})) is None
    assert not WebSettings().authenticated and WebSettings(token="t").authenticated
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.0.0.5")


def test_a_login_link_never_reaches_a_log() -> None:
    line = redact("/dashboard?topic=Macro&token=s3cret-abc&x=1")
    assert line == "/dashboard?topic=Macro&token=***&x=1"
    assert "s3cret" not in redact("/dashboard?TOKEN=s3cret")
