"""<get-schema> (RFC 6022 3.1): a module or submodule of the server's context, as YANG text or a YIN document.

The schemas are those of the `schemas` list (`mgmt.schemas`, every revision of every module and submodule). YANG is
returned as text in `<data>`, YIN as XML content of `<data>` (the YIN document without its XML declaration).
Errors as the rpc's description says: no such schema (identifier, version or format) is invalid-value; more than
one version matching an identifier given without one is operation-failed with error-app-tag data-not-unique.
"""

from __future__ import annotations

from singbox_agent.mgmt import schemas
from singbox_agent.mgmt.errors import APPLICATION, MgmtError, MgmtException, clip, invalid_value
from singbox_agent.netconf.dispatch import OpContext, register
from singbox_agent.netconf.messages import escape
from singbox_agent.netconf.ops.common import leaf

NCM_NS = "urn:ietf:params:xml:ns:yang:ietf-netconf-monitoring"


@register(NCM_NS, "get-schema")
def handle(ctx: OpContext) -> str:
    identifier = leaf(ctx, "identifier") or ""
    version = leaf(ctx, "version")
    # Without <format> the answer is YANG. Read to the letter, the description makes an absent format with more
    # than one format on the server ("If this parameter is not present, and more than one formats of the schema
    # exists on the server, a 'data-not-unique' error is returned") an error here, as every schema is served as
    # yang and yin; but clients send none and expect YANG (ncclient's get_schema leaves it out unless asked), and
    # netopeer2 answers YANG too (np2srv_rpc_getschema_cb: "!format || yang"): that error would only break them.
    # YANG is the one format RFC 6022 makes mandatory ("'yang' format MUST be supported").
    given_format = leaf(ctx, "format")
    try:
        fmt = schemas.schema_format(given_format)
    except ValueError:
        raise invalid_value(f'Schema format "{clip(given_format or "")}" is not supported.',
                            error_type=APPLICATION) from None
    found = schemas.matching(ctx.ly, identifier, version)
    if not found:
        known = version is not None and schemas.matching(ctx.ly, identifier)
        what = f'"{clip(identifier)}"' + (f' version "{clip(version)}"' if version is not None else "")
        raise invalid_value(f"No schema {what} on this server"
                            + (" (it has other versions)." if known else "."), error_type=APPLICATION)
    if len(found) > 1:
        versions = ", ".join(f'"{s.version}"' for s in found)
        raise MgmtException(MgmtError(
            APPLICATION, "operation-failed",
            f'More than one version of schema "{clip(identifier)}" ({versions}): give <version>.',
            "data-not-unique"))
    text = schemas.print_schema(found[0], fmt)
    if fmt == "yin":
        return f'<data xmlns="{NCM_NS}">{schemas.without_xml_declaration(text)}</data>'
    return f'<data xmlns="{NCM_NS}">{escape(text)}</data>'
