"""<hello> and capabilities (RFC 6241 8.1), with the module revisions, features and deviations."""

from __future__ import annotations

from typing import Any

import pytest
from ncclient.operations.rpc import RPCError

from tests.netconf.conftest import SBX_NS, ServerInfo
from tests.netconf.helpers import cfg, running, error_tag


def test_hello_capabilities(netconf_server: ServerInfo) -> None:
    with netconf_server.connect() as m:
        caps = list(m.server_capabilities)
        assert int(m.session_id) >= 1
        for cap in (":base:1.1", ":candidate:1.0", ":confirmed-commit:1.1", ":validate:1.1", ":startup:1.0",
                    ":writable-running:1.0", ":rollback-on-error:1.0", ":xpath:1.0", ":notification:1.0",
                    ":interleave:1.0", "with-defaults:1.0?basic-mode=explicit"):
            assert any(cap in c for c in caps), cap
        sbx = [c for c in caps if c.startswith(SBX_NS + "?")]
        from pathlib import Path

        revision = next((Path(__file__).parents[2] / "yang").glob("vpp-singbox@*.yang")).stem.partition("@")[2]
        assert sbx and "module=vpp-singbox" in sbx[0] and f"revision={revision}" in sbx[0]
        assert "features=udp-associate" in sbx[0]
        assert any("yang-library:1.1?revision=2019-01-04&content-id=" in c for c in caps)
        ncap = [c for c in caps if "module=ietf-netconf&" in c][0]
        assert "candidate" in ncap and "confirmed-commit" in ncap


def test_capabilities_list_deviations(sysrepo_instance: Any, tmp_path: Any) -> None:
    import os
    import subprocess

    from tests.netconf.conftest import bootstrap, start_server, stop_server

    deviation = tmp_path / "sbx-deviations@2026-11-22.yang"
    deviation.write_text(
        "module sbx-deviations {\n  yang-version 1.1;\n  namespace \"urn:test:sbx-deviations\";\n  prefix sd;\n"
        "  import vpp-singbox { prefix sbx; }\n  description \"test\";\n  revision 2026-11-22 { description \"t\"; }\n"
        "  deviation /sbx:singbox/sbx:log-level { deviate not-supported; }\n}\n")
    env = {**os.environ, **sysrepo_instance.env}
    subprocess.run(["sysrepoctl", "-i", str(deviation)], env=env, check=True, capture_output=True)
    bootstrap(env, tmp_path)
    info = start_server(env, tmp_path)
    try:
        with info.connect() as m:
            sbx = [c for c in m.server_capabilities if c.startswith(SBX_NS + "?")][0]
            assert "deviations=sbx-deviations" in sbx, sbx
            with pytest.raises(RPCError) as exc:
                m.edit_config(target="running", config=cfg("<log-level>debug</log-level>"))
            assert error_tag(exc.value) == "unknown-element"
    finally:
        assert stop_server(info) == 0
