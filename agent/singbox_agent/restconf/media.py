"""Media types of RFC 8040 §5.2 / RFC 8072 §2.1 and their negotiation (Accept -> response, Content-Type -> body)."""

from __future__ import annotations

import enum
import re

from singbox_agent.restconf.errors import not_acceptable, unsupported_media_type
from singbox_agent.restconf.uri import Encoding

YANG_DATA_JSON = "application/yang-data+json"
YANG_DATA_XML = "application/yang-data+xml"
YANG_PATCH_JSON = "application/yang-patch+json"
YANG_PATCH_XML = "application/yang-patch+xml"
XRD_XML = "application/xrd+xml"

_QVALUE_RE = re.compile(r"^(?:0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?)$")

RESPONSE_TYPES = {Encoding.JSON: YANG_DATA_JSON, Encoding.XML: YANG_DATA_XML}


class BodyKind(enum.Enum):
    DATA = "data"
    YANG_PATCH = "yang-patch"


_REQUEST_TYPES = {
    YANG_DATA_JSON: (BodyKind.DATA, Encoding.JSON),
    YANG_DATA_XML: (BodyKind.DATA, Encoding.XML),
    YANG_PATCH_JSON: (BodyKind.YANG_PATCH, Encoding.JSON),
    YANG_PATCH_XML: (BodyKind.YANG_PATCH, Encoding.XML),
}

# What "*/*", "application/*" and the generic JSON/XML types select.
_ACCEPT_TYPES = {
    YANG_DATA_JSON: Encoding.JSON,
    YANG_DATA_XML: Encoding.XML,
    "application/json": Encoding.JSON,
    "application/xml": Encoding.XML,
    "text/xml": Encoding.XML,
}


def _media_ranges(header: str) -> list[tuple[str, float, int]]:
    """Accept header -> (media range, q, position), RFC 9110 §12.5.1."""
    out: list[tuple[str, float, int]] = []
    for pos, item in enumerate(header.split(",")):
        parts = [p.strip() for p in item.split(";")]
        media = parts[0].lower()
        if not media:
            continue
        q = 1.0
        for param in parts[1:]:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                # RFC 9110 §12.4.2 qvalue: 0 to 1, at most three decimals ("nan", "inf", "2" are no weights)
                q = float(value) if _QVALUE_RE.match(value.strip()) else 0.0
        out.append((media, q, pos))
    return out


def response_encoding(accept: str | None, default: Encoding = Encoding.JSON) -> Encoding:
    """The encoding of the response; 406 when Accept names nothing we produce.

    RFC 9110 §12.5.1: each encoding's quality is that of the most specific range naming it (its media type, then
    `application/*`, then `*/*`), so `application/yang-data+json;q=0, */*` excludes JSON (it was chosen through
    `*/*`). The highest quality above 0 wins; on a tie, an encoding named by its type before one reached through a
    wildcard, then the one named first, then `default`."""
    if accept is None or accept.strip() == "":
        return default
    ranges = _media_ranges(accept)
    best: tuple[float, int, int, Encoding] | None = None
    for enc in (default, Encoding.XML if default == Encoding.JSON else Encoding.JSON):
        # the RFC 8040 type, else a generic one of the same encoding (application/json, application/xml, text/xml)
        exact = ([(q, pos) for media, q, pos in ranges if media == RESPONSE_TYPES[enc]]
                 or [(q, pos) for media, q, pos in ranges if _ACCEPT_TYPES.get(media) == enc])
        chosen: tuple[float, int, int] | None = None
        for level, names in ((2, None), (1, ("application/*",)), (0, ("*/*",))):
            found = exact if names is None else [(q, pos) for media, q, pos in ranges if media in names]
            if found:
                q, pos = max(found, key=lambda qp: (qp[0], -qp[1]))
                chosen = (q, level, -pos)
                break
        if chosen is None or chosen[0] <= 0:
            continue
        rank = (*chosen, enc)
        if best is None or rank[:3] > best[:3]:
            best = rank
    if best is None:
        raise not_acceptable(f"None of the media types in Accept ({accept}) is supported: use {YANG_DATA_JSON} or {YANG_DATA_XML}")
    return best[3]


def error_encoding(accept: str | None) -> Encoding:
    """Errors follow Accept when it names one of ours, JSON otherwise (even when the failure IS the Accept)."""
    try:
        return response_encoding(accept)
    except Exception:  # noqa: BLE001 - any failure here means "use the default"
        return Encoding.JSON


def request_body_type(content_type: str | None) -> tuple[BodyKind, Encoding]:
    """Content-Type of a request body -> (data or YANG Patch, encoding); 415 otherwise."""
    if content_type is None or content_type.strip() == "":
        raise unsupported_media_type(f"A request body needs a Content-Type: {YANG_DATA_JSON} or {YANG_DATA_XML}")
    media = content_type.split(";")[0].strip().lower()
    try:
        return _REQUEST_TYPES[media]
    except KeyError:
        raise unsupported_media_type(
            f"Unsupported Content-Type {media!r}: use {YANG_DATA_JSON}, {YANG_DATA_XML}, {YANG_PATCH_JSON} or "
            f"{YANG_PATCH_XML}"
        ) from None
