"""Rendering and reading deploy/nginx/m2fp.conf.template, the way nginx itself reads it.

Rendering is envsubst restricted to the template's own ``${NGINX_...}`` names (nginx's
``$variables`` stay untouched). The reader turns the text into nested blocks of directives, so
tests can ask what a given ``server`` block does instead of grepping the whole file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
TEMPLATE = DEPLOY / "nginx" / "m2fp.conf.template"
HOST_CONF = DEPLOY / "nginx" / "m2fp.conf"
PLACEHOLDER = re.compile(r"\$\{(NGINX_[A-Z0-9_]+)\}")
_TOKEN = re.compile(r"""'[^']*'|"[^"]*"|#[^\n]*|[{};]|[^\s{};'"]+""")


def placeholders(text: str) -> set[str]:
    """The ``${NGINX_...}`` names a template uses."""
    return set(PLACEHOLDER.findall(text))


def render(text: str, values: dict[str, str]) -> str:
    """``text`` with every placeholder replaced; a missing value is an error, not a blank."""
    missing = placeholders(text) - values.keys()
    if missing:
        raise KeyError(f"no value for {sorted(missing)}")
    return PLACEHOLDER.sub(lambda match: values[match.group(1)], text)


@dataclass
class Block:
    """A context (``main``, ``http``, ``server``, ``location /``...) and what it contains."""

    name: str
    args: list[str] = field(default_factory=list)
    directives: list[tuple[str, list[str]]] = field(default_factory=list)
    children: list[Block] = field(default_factory=list)

    def values(self, directive: str) -> list[list[str]]:
        """The arguments of every ``directive`` written directly in this block."""
        return [args for name, args in self.directives if name == directive]

    def value(self, directive: str) -> list[str]:
        """The arguments of the one ``directive`` of this block."""
        found = self.values(directive)
        assert len(found) == 1, f"{directive}: {len(found)} in {self.name} {self.args}"
        return found[0]

    def blocks(self, name: str) -> list[Block]:
        return [child for child in self.children if child.name == name]


def parse(text: str) -> Block:
    """The block tree of an nginx configuration (comments dropped, quotes removed)."""
    root = Block("main")
    stack = [root]
    words: list[str] = []
    for token in _TOKEN.findall(text):
        if token.startswith("#"):
            continue
        if token == "{":
            block = Block(words[0], [_unquote(w) for w in words[1:]])
            stack[-1].children.append(block)
            stack.append(block)
            words = []
        elif token == ";":
            stack[-1].directives.append((words[0], [_unquote(w) for w in words[1:]]))
            words = []
        elif token == "}":
            assert not words, f"unterminated directive {words}"
            stack.pop()
        else:
            words.append(token)
    assert len(stack) == 1 and not words, "unbalanced braces"
    return root


def _unquote(word: str) -> str:
    if len(word) >= 2 and word[0] == word[-1] and word[0] in "'\"":
        return word[1:-1]
    return word


def size_bytes(text: str) -> int:
    """An nginx size (``10m``, ``64k``, ``1024``) in bytes."""
    units = {"k": 1024, "m": 1024**2, "g": 1024**3}
    suffix = text[-1].lower()
    return int(text[:-1]) * units[suffix] if suffix in units else int(text)
