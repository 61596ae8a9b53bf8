"""Media types of RFC 8040 §5.2 / RFC 8072 §2.1 and their negotiation (Accept -> response, Content-Type -> body)."""

from __future__ import annotations

import enum

from singbox_agent.restconf.errors import not_acceptable, unsupported_media_type
from singbox_agent.restconf.uri import Encoding

YANG_DATA_JSON = "application/yang-data+json"
YANG_DATA_XML = "application/yang-data+xml"
YANG_PATCH_JSON = "application/yang-patch+json"
YANG_PATCH_XML = "application/yang-patch+xml"
XRD_XML = "application/xrd+xml"

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
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        out.append((media, q, pos))
    return out


def response_encoding(accept: str | None, default: Encoding = Encoding.JSON) -> Encoding:
    """The encoding of the response; 406 when Accept names nothing we produce."""
    if accept is None or accept.strip() == "":
        return default
    best: tuple[float, int, Encoding] | None = None
    for media, q, pos in _media_ranges(accept):
        if q <= 0:
            continue
        if media in _ACCEPT_TYPES:
            enc = _ACCEPT_TYPES[media]
            rank = (q, 2, enc)
        elif media in ("*/*", "application/*"):
            rank = (q, 1, default)
        else:
            continue
        if best is None or (rank[0], rank[1]) > (best[0], best[1]):
            best = rank
        del pos
    if best is None:
        raise not_acceptable(f"None of the media types in Accept ({accept}) is supported: use {YANG_DATA_JSON} or {YANG_DATA_XML}")
    return best[2]


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
