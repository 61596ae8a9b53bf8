"""The YANG contract's files and its examples, as the tests of tests/yang read them.

The rules mirror yang/check-examples.sh (the yanglint side), so both checkers agree on what every example means.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import libyang

TOP = Path(__file__).resolve().parents[2]
YANG_DIR = TOP / "yang"
EXAMPLES_DIR = YANG_DIR / "examples"
VALID_DIR = EXAMPLES_DIR / "valid"
INVALID_DIR = EXAMPLES_DIR / "invalid"
# ietf-netconf-acm is built into sysrepo, not libyang; Debian's sysrepo also installs the file here.
SYSREPO_YANG_DIR = Path("/usr/share/yang/modules/sysrepo")
MODULE_NAME = "vpp-singbox"
# RPCs, replies and notifications are validated against this document as the operational datastore.
OPERATIONAL_DEPENDENCY = VALID_DIR / "config-full.xml"

DOC_TYPES = ("config", "data", "rpc", "reply", "notif")
_OP_TYPES = {
    "rpc": libyang.DataType.RPC_YANG,
    "reply": libyang.DataType.REPLY_YANG,
    "notif": libyang.DataType.NOTIF_YANG,
}


def module_file() -> Path:
    """The one revision of vpp-singbox in yang/."""
    (path,) = YANG_DIR.glob(f"{MODULE_NAME}@*.yang")
    return path


def yang_files() -> list[Path]:
    return sorted(YANG_DIR.glob("*.yang"))


# Where modules of ours live: the product's contract, and the management plane's own next to its code.
OUR_DIRS = [YANG_DIR, TOP / "agent" / "singbox_agent" / "yang", TOP / "agent" / "singbox_agent" / "restconf" / "yang"]


def our_modules() -> list[Path]:
    """Every module of ours (named vpp-singbox*), wherever it lives, plus what yang/ vendors."""
    return sorted({*yang_files(), *(f for d in OUR_DIRS for f in d.glob("vpp-singbox*.yang"))})


def new_context(*, features: bool = True) -> libyang.Context:
    """A libyang context with vpp-singbox implemented, every feature on unless `features` is False."""
    ctx = libyang.Context(f"{YANG_DIR}:{SYSREPO_YANG_DIR}")
    module = ctx.load_module(MODULE_NAME)
    if features:
        module.feature_enable_all()
    return ctx


def doc_format(path: Path) -> str:
    return {".xml": "xml", ".json": "json"}[path.suffix]


def doc_type_from_name(path: Path) -> str:
    kind = path.name.split("-", 1)[0]
    if kind not in DOC_TYPES:
        raise ValueError(f"{path.name}: name must start with one of {DOC_TYPES}")
    return kind


def parse_document(
    ctx: libyang.Context, path: Path, kind: str, dependency: libyang.DNode | None = None
) -> libyang.DNode:
    """Parse and fully validate one instance document; raises libyang.LibyangError if it is invalid."""
    text = path.read_text()
    fmt = doc_format(path)
    if kind in ("config", "data"):
        tree = ctx.parse_data_mem(text, fmt, no_state=kind == "config", strict=True)
        if tree is None:
            raise ValueError(f"{path.name}: empty document")
        return tree
    dtype = _OP_TYPES[kind]
    op = ctx.parse_op_mem(fmt, text, dtype)
    op.validate_op(dtype, dep_tree=dependency)
    return op


def parse_dependency(ctx: libyang.Context) -> libyang.DNode:
    return parse_document(ctx, OPERATIONAL_DEPENDENCY, "config")


def valid_documents() -> list[Path]:
    return sorted([*VALID_DIR.glob("*.xml"), *VALID_DIR.glob("*.json")])


@dataclass(frozen=True)
class InvalidExample:
    """An invalid document and the error that must reject it, read from its .expect file."""

    document: Path
    kind: str
    features: bool
    message: str
    path: str
    reason: str

    @property
    def name(self) -> str:
        return self.document.name


_EXPECT_LINE = re.compile(r"^(type|features|message|path): (.*)$")


def read_expect(expect: Path) -> InvalidExample:
    fields: dict[str, str] = {}
    reason = ""
    for line in expect.read_text().splitlines():
        if line.startswith("#"):
            reason = reason or line.lstrip("# ").strip()
            continue
        if not line.strip():
            continue
        match = _EXPECT_LINE.match(line)
        if not match:
            raise ValueError(f"{expect.name}: cannot read line {line!r}")
        fields[match[1]] = match[2]
    documents = [p for p in (expect.with_suffix(".xml"), expect.with_suffix(".json")) if p.exists()]
    if len(documents) != 1:
        raise ValueError(f"{expect.name}: needs exactly one .xml or .json document beside it, found {documents}")
    missing = {"type", "message", "path"} - fields.keys()
    if missing or not reason:
        raise ValueError(f"{expect.name}: missing {sorted(missing) or 'the # reason line'}")
    if fields["type"] not in DOC_TYPES:
        raise ValueError(f"{expect.name}: unknown type {fields['type']!r}")
    if fields.get("features", "all") not in ("all", "none"):
        raise ValueError(f"{expect.name}: features must be 'all' or 'none'")
    return InvalidExample(
        document=documents[0],
        kind=fields["type"],
        features=fields.get("features", "all") == "all",
        message=fields["message"],
        path=fields["path"],
        reason=reason,
    )


def invalid_examples() -> list[InvalidExample]:
    return [read_expect(e) for e in sorted(INVALID_DIR.glob("*.expect"))]


TREE_BEGIN = "<!-- tree:begin -->"
TREE_END = "<!-- tree:end -->"


def documented_tree(readme: Path) -> str:
    """The tree diagram in README.md: the ```text block between the tree markers."""
    text = readme.read_text()
    start = text.index(TREE_BEGIN) + len(TREE_BEGIN)
    block = text[start : text.index(TREE_END, start)].strip()
    if not (block.startswith("```text\n") and block.endswith("\n```")):
        raise ValueError("the tree markers must enclose exactly one ```text block")
    return block[len("```text\n") : -len("\n```")]
