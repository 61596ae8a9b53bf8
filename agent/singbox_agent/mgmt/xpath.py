"""XPath string literals and schema paths, one way for both servers.

XPath 1.0 has no escape inside a literal: a value is quoted with whichever quote it does not hold, and a value
holding both kinds becomes `concat('a', "'", 'b')`, which any XPath expression (sysrepo's reads, libyang's
lyd_find_xpath) evaluates. A libyang *data path* (lyd_new_path, a list key in an edit) takes only a plain literal,
so there such a value cannot be named at all: `quote(value, in_path=True)` refuses it.
"""

from __future__ import annotations

import re

_PREFIX = re.compile(r"([A-Za-z_][\w.-]*):(?!:)")


def quote(value: str, *, in_path: bool = False) -> str:
    """`value` as an XPath string literal.

    :raises ValueError: `in_path` and the value holds both ' and " (no data path can name it).
    """
    if "'" not in value:
        return f"'{value}'"
    if '"' not in value:
        return f'"{value}"'
    if in_path:
        raise ValueError("a value holding both ' and \" cannot be named in a data path")
    return "concat(" + ", \"'\", ".join(f"'{part}'" for part in value.split("'")) + ")"


def strip_predicates(path: str) -> str:
    """A data path without its predicates (`/m:a/b[k='x]y']/c` -> `/m:a/b/c`): the schema node's path."""
    out: list[str] = []
    depth = 0
    quote_char = ""
    for ch in path:
        if quote_char:
            if ch == quote_char:
                quote_char = ""
            continue
        if depth and ch in "'\"":
            quote_char = ch
        elif ch == "[":
            depth += 1
        elif ch == "]" and depth:
            depth -= 1
        elif not depth:
            out.append(ch)
    return "".join(out)


def prefixes(path: str) -> list[str]:
    """The prefixes a path or XPath uses (`/m:a/b[n:k='x:y']` -> ['m', 'n']), in order, each once; what is inside a
    string literal is not a prefix. Both servers print paths with module names as prefixes."""
    unquoted: list[str] = []
    quote_char = ""
    for ch in path:
        if quote_char:
            if ch == quote_char:
                quote_char = ""
            unquoted.append(" ")
        elif ch in "'\"":
            quote_char = ch
            unquoted.append(" ")
        else:
            unquoted.append(ch)
    return list(dict.fromkeys(_PREFIX.findall("".join(unquoted))))


def parent_path(path: str) -> str:
    """The path of a data path's parent ("" for a top-level node); '/' inside a predicate's quotes is a value's."""
    depth, quote, cut = 0, "", 0
    for i, c in enumerate(path):
        if quote:
            if c == quote:
                quote = ""
        elif c in "'\"":
            quote = c
        elif c == "[":
            depth += 1
        elif c == "]":
            depth -= 1
        elif c == "/" and depth == 0:
            cut = i
    return path[:cut]
