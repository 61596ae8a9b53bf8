"""netconf-console2 (a second real client, base:1.1 and 1.0) against the running server."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.netconf.conftest import ADMIN, ADMIN_PASSWORD, SBX_NS, ServerInfo


def ncc(info: ServerInfo, *args: str, version: str = "1.1", stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["netconf-console2", "--host", info.host, "--port", str(info.port), "-u", ADMIN, "-p", ADMIN_PASSWORD,
         "-v", version, *args],
        capture_output=True, text=True, timeout=60, env=info.env, input=stdin,
    )


def test_netconf_console2_session(netconf_server: ServerInfo, tmp_path: Path) -> None:
    hello = ncc(netconf_server, "--hello")
    assert hello.returncode == 0, hello.stderr
    assert "urn:ietf:params:netconf:capability:candidate:1.0" in hello.stdout
    edit = tmp_path / "edit.xml"
    edit.write_text(f'<singbox xmlns="{SBX_NS}"><log-level>debug</log-level><client><endpoint><name>ncc1</name>'
                    "<address>198.18.0.7</address></endpoint></client></singbox>")
    for version in ("1.1", "1.0"):
        out = ncc(netconf_server, "--db", "candidate", "--lock", "--edit-config", str(edit), "--commit",
                  "--unlock", version=version)
        assert out.returncode == 0, out.stdout + out.stderr
        assert "rpc-error" not in out.stdout, out.stdout
        got = ncc(netconf_server, "--get-config", "-x", "/singbox", "-N", f"x={SBX_NS}", version=version)
        assert got.returncode == 0, got.stderr
        assert "<name>ncc1</name>" in got.stdout and "debug" in got.stdout, got.stdout
    schema = ncc(netconf_server, "--get-schema", "vpp-singbox")
    assert "module vpp-singbox" in schema.stdout
    bad = ncc(netconf_server, "--db", "running", "--edit-config", "-",
              stdin=f'<singbox xmlns="{SBX_NS}"><log-level>loud</log-level></singbox>')
    assert "invalid-value" in bad.stdout + bad.stderr
    wd = ncc(netconf_server, "--get-config", "--with-defaults", "report-all-tagged", "-x", "/x:singbox/x:client",
             "-N", f"x={SBX_NS}")
    assert "urn:ietf:params:xml:ns:netconf:default:1.0" in wd.stdout, wd.stdout + wd.stderr
