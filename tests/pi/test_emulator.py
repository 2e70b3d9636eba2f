"""The emulated Pi's set-up helpers: where Debian's packages come from, and caches that are
either whole or absent."""

from __future__ import annotations

import pytest

from tests.pi.emulator import EmulatorUnavailable, _built, debian_mirror


@pytest.fixture
def etc_apt(tmp_path, monkeypatch):
    monkeypatch.delenv("LSTM_EDGE_DEBIAN_MIRROR", raising=False)
    (tmp_path / "sources.list.d").mkdir()
    return tmp_path


def test_mirror_from_deb822_sources_skips_security_and_foreign_repositories(etc_apt):
    (etc_apt / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://security.example/debian-security\nSuites: bookworm-security\n"
        "Components: main\n\nTypes: deb\nURIs: http://mirror.example/debian/\nSuites: bookworm bookworm-updates\n"
        "Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n")
    (etc_apt / "sources.list.d" / "other.list").write_text("deb https://vendor.example/apt nodistro main\n")
    assert debian_mirror(str(etc_apt)) == "http://mirror.example/debian"


def test_mirror_from_one_line_sources_with_options(etc_apt):
    (etc_apt / "sources.list").write_text("# comment\ndeb [arch=amd64 signed-by=/k.gpg] http://m.example/debian trixie "
                                          "main\n")
    assert debian_mirror(str(etc_apt)) == "http://m.example/debian"


def test_mirror_from_the_environment_first(etc_apt, monkeypatch):
    monkeypatch.setenv("LSTM_EDGE_DEBIAN_MIRROR", "http://local.example/debian/")
    assert debian_mirror(str(etc_apt)) == "http://local.example/debian"


def test_no_mirror_makes_the_emulator_unavailable_with_the_way_out(etc_apt):
    with pytest.raises(EmulatorUnavailable, match="set LSTM_EDGE_DEBIAN_MIRROR"):
        debian_mirror(str(etc_apt))


def test_a_failed_build_leaves_no_cache_behind(tmp_path):
    def fails(out):
        (out / "half").write_text("written before the failure")
        raise RuntimeError("download failed")

    with pytest.raises(RuntimeError):
        _built(tmp_path / "root", fails)
    assert list(tmp_path.iterdir()) == []
    assert _built(tmp_path / "root", lambda out: (out / "whole").write_text("ok")) == tmp_path / "root"
    assert (tmp_path / "root" / "whole").is_file()
