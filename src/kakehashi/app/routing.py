"""Rules and the router: from a decoded path and a method to an endpoint and its parameters.

A rule is a path such as ``/users/<int:id>/posts/<slug>``.  Each ``/``-separated segment is
either static text or exactly one placeholder ``<name>`` / ``<converter:name>``; a placeholder
cannot share a segment with text.  A rule ending in ``/`` has a final empty segment, so
``/about/`` and ``/about`` are different rules.

Matching (exact, deterministic):

* The whole path must be consumed; ``/greeting/<name>`` does not answer ``/greeting/a/b``.
* At each position a static segment is tried before any placeholder; placeholders are tried
  by converter weight, lowest first (uuid 10, int 20, float 30, str 100, path 200).  When a
  branch fails further down, the next candidate is tried (backtracking), so the first rule in
  this order that matches the whole path wins.
* A converter whose ``to_python`` raises ``ValueError`` does not match.
* If rules match the path but none accepts the method, the answer is 405 with the union of
  their methods; HEAD is served by a GET rule, OPTIONS is always allowed.
* If nothing matches ``/x`` but ``/x/`` would, the router asks for a redirect to ``/x/``.
  The reverse never happens: ``/x/`` does not reach a rule declared as ``/x``.

Conflicts, refused with ``RouteConflictError`` when the rule is registered:

* duplicate: same static text and same converters at the same positions (parameter names do
  not matter) with a method in common;
* ambiguous: two different converters with the same weight at the same position after the
  same prefix, because then only registration order would decide.  ``/a/<x>`` beside
  ``/a/<int:y>`` is fine: the weights order them.

Malformed rules (no leading ``/``, an empty segment, text beside a placeholder, an unknown
converter, a repeated parameter, more than one path converter) raise ``ConfigError``.

The router is a tree of segments compiled at registration, so a lookup costs a dictionary
access per static segment, whatever the number of rules; a rule without placeholders is
found with one dictionary access on the whole path.  Each tree node is visited at most a
few times per lookup (a path converter only tries the ends the rules after it allow), so a
hostile path costs time linear in its length, never quadratic.

This module must not touch WSGI environs, requests or responses.

Invariants: a registered rule is never changed or removed; after ``add`` returns, the tree,
the static-path table and the endpoint table all agree; ``match`` only reads them, so it is
safe from many threads once registration is over.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from kakehashi.errors import (
    BuildError,
    ConfigError,
    HTTPError,
    MethodNotAllowed,
    NotFound,
    RouteConflictError,
)

from .converters import DEFAULT_CONVERTERS, Converter

__all__ = ["BuildError", "Match", "Placeholder", "RequestRedirect", "Router", "Rule"]

_PLACEHOLDER = re.compile(r"<(?:(?P<conv>[A-Za-z_]\w*):)?(?P<name>[A-Za-z_]\w*)>", re.ASCII)
_METHOD = re.compile(r"[!#$%&'*+.^_`|~0-9A-Z-]+")
# RFC 3986 pchar minus the percent sign: what a path segment may hold unescaped.
_SEGMENT_SAFE = "!$&'()*+,;=:@"


class RequestRedirect(HTTPError):
    """The path matches only with a trailing slash; answer 308 towards ``new_path``."""

    status = 308
    default_description = "Permanent Redirect"

    def __init__(self, new_path: str) -> None:
        super().__init__()
        self.new_path = new_path


@dataclass(frozen=True)
class Placeholder:
    name: str
    converter: Converter


Segment = str | Placeholder


@dataclass(frozen=True)
class Rule:
    """One registered rule: its text, parsed segments, endpoint and methods."""

    text: str
    endpoint: str
    methods: frozenset[str]
    segments: tuple[Segment, ...]
    arguments: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        # Computed once: matching reads it on every request.
        names = tuple(s.name for s in self.segments if isinstance(s, Placeholder))
        object.__setattr__(self, "arguments", names)

    def build(self, params: Mapping[str, Any]) -> str:
        """The percent-encoded path for ``params``; extra parameters go to the query."""
        parts: list[str] = []
        for segment in self.segments:
            if isinstance(segment, str):
                parts.append(urllib.parse.quote(segment, safe=_SEGMENT_SAFE))
                continue
            try:
                text = segment.converter.to_url(params[segment.name])
            except (KeyError, ValueError, TypeError) as exc:
                raise BuildError(f"{self.text}: bad value for {segment.name!r}: {exc}") from exc
            if not segment.converter.accepts(text):
                raise BuildError(f"{self.text}: {text!r} does not fit <{segment.name}>")
            safe = _SEGMENT_SAFE + ("/" if segment.converter.spans_segments else "")
            parts.append(urllib.parse.quote(text, safe=safe))
        path = "/" + "/".join(parts)
        extra = [(k, v) for k, v in params.items() if k not in self.arguments and v is not None]
        return path + ("?" + urllib.parse.urlencode(extra, doseq=True) if extra else "")


class Match(NamedTuple):
    rule: Rule
    params: dict[str, Any]


@dataclass
class _Dynamic:
    converter: Converter
    node: _Node


@dataclass
class _Node:
    static: dict[str, _Node] = field(default_factory=dict)
    dynamic: list[_Dynamic] = field(default_factory=list)
    rules: dict[str, Rule] = field(default_factory=dict)
    # How many segments the rules below this node still consume, at least and at most; a
    # path converter uses them to try only the few ends that can possibly match.
    min_rest: int = 1 << 30
    max_rest: int = 0

    def allowed(self) -> set[str]:
        methods = set(self.rules) | {"OPTIONS"}
        if "GET" in methods:
            methods.add("HEAD")
        return methods

    def rule_for(self, method: str) -> Rule | None:
        rule = self.rules.get(method)
        if rule is None and method == "HEAD":
            rule = self.rules.get("GET")
        return rule


class Router:
    """Registers rules and matches paths; see the module docstring for the exact rules."""

    def __init__(self, converters: Mapping[str, type[Converter]] | None = None) -> None:
        self.converters: dict[str, type[Converter]] = dict(DEFAULT_CONVERTERS)
        self.converters.update(converters or {})
        self.rules: list[Rule] = []
        self._root = _Node()
        # Rules without placeholders, by path: such a rule beats every other candidate (static
        # is tried first at each position), so a dictionary hit settles most lookups at once.
        self._static: dict[str, _Node] = {}
        self._by_endpoint: dict[str, list[Rule]] = {}
        self._instances: dict[type[Converter], Converter] = {}

    # --- registration ----------------------------------------------------------------------

    def add(self, text: str, endpoint: str, methods: list[str] | tuple[str, ...]) -> Rule:
        """Parse, check and insert a rule; raises ``ConfigError`` or ``RouteConflictError``."""
        method_set = frozenset(m.upper() for m in methods)
        if not method_set or not all(_METHOD.fullmatch(m) for m in method_set):
            raise ConfigError(f"{text}: bad methods {sorted(methods)!r}")
        rule = Rule(text, endpoint, method_set, self._parse(text))
        node = self._root
        for index, segment in enumerate(rule.segments):
            _note_rest(node, len(rule.segments) - index)
            node = self._child(node, segment, text)
        _note_rest(node, 0)
        common = method_set & set(node.rules)
        if common:
            other = node.rules[min(common)]
            raise RouteConflictError(
                f"{text} duplicates {other.text} (endpoint {other.endpoint!r}) for {sorted(common)}"
            )
        for method in method_set:
            node.rules[method] = rule
        if not rule.arguments:
            self._static[text] = node
        self.rules.append(rule)
        self._by_endpoint.setdefault(endpoint, []).append(rule)
        return rule

    def _parse(self, text: str) -> tuple[Segment, ...]:
        if not text.startswith("/"):
            raise ConfigError(f"rule {text!r} must start with '/'")
        parts = text[1:].split("/")
        segments: list[Segment] = []
        names: set[str] = set()
        for index, part in enumerate(parts):
            if part == "" and index != len(parts) - 1:
                raise ConfigError(f"rule {text!r} has an empty segment")
            found = _PLACEHOLDER.fullmatch(part)
            if found is None:
                if "<" in part or ">" in part:
                    raise ConfigError(f"rule {text!r}: a placeholder must fill a whole segment")
                segments.append(part)
                continue
            name, conv = found["name"], found["conv"] or "default"
            if name in names:
                raise ConfigError(f"rule {text!r} repeats the parameter {name!r}")
            names.add(name)
            segments.append(Placeholder(name, self._converter(conv, text)))
        spanning = [
            s for s in segments if isinstance(s, Placeholder) and s.converter.spans_segments
        ]
        if len(spanning) > 1:
            # Two would make matching cost grow with the square of the path's length.
            raise ConfigError(f"rule {text!r} has more than one path converter")
        return tuple(segments)

    def _converter(self, name: str, text: str) -> Converter:
        cls = self.converters.get(name)
        if cls is None:
            raise ConfigError(f"rule {text!r}: unknown converter {name!r}")
        if cls not in self._instances:
            self._instances[cls] = cls()
        return self._instances[cls]

    def _child(self, node: _Node, segment: Segment, text: str) -> _Node:
        if isinstance(segment, str):
            return node.static.setdefault(segment, _Node())
        converter = segment.converter
        for dynamic in node.dynamic:
            if type(dynamic.converter) is type(converter):
                return dynamic.node
            if dynamic.converter.weight == converter.weight:
                raise RouteConflictError(
                    f"{text}: <{segment.name}> is ambiguous: {type(converter).__name__} and "
                    f"{type(dynamic.converter).__name__} have the same weight {converter.weight}"
                )
        added = _Dynamic(converter, _Node())
        node.dynamic.append(added)
        node.dynamic.sort(key=lambda d: d.converter.weight)
        return added.node

    # --- matching --------------------------------------------------------------------------

    def match(self, method: str, path: str) -> Match:
        """The rule for ``method`` and the decoded ``path``; raises 404, 405 or a redirect."""
        static = self._static.get(path)
        if static is not None and (rule := static.rule_for(method)) is not None:
            return Match(rule, {})
        if not path.startswith("/"):
            raise NotFound()
        segments = path[1:].split("/")
        search = _Search(segments, method)
        rule = search.visit(self._root, 0)
        if rule is not None:
            return Match(rule, dict(zip(rule.arguments, search.values, strict=True)))
        if search.allowed:
            raise MethodNotAllowed(sorted(search.allowed))
        if segments[-1] != "":
            probe = _Search([*segments, ""], method)
            if probe.visit(self._root, 0) is not None or probe.allowed:
                raise RequestRedirect(path + "/")
        raise NotFound()

    def allowed_everywhere(self) -> list[str]:
        """Every method some rule accepts, for ``OPTIONS *``."""
        methods = {"OPTIONS"}
        for rule in self.rules:
            methods |= rule.methods
        if "GET" in methods:
            methods.add("HEAD")
        return sorted(methods)

    # --- building --------------------------------------------------------------------------

    def build(self, endpoint: str, params: Mapping[str, Any]) -> str:
        """The path of the rule of ``endpoint`` that uses the most of ``params``.

        Among rules whose parameters are all given, the one with the most parameters wins
        (the first registered on a tie), so ``/list`` and ``/list/<int:page>`` both build.
        """
        rules = self._by_endpoint.get(endpoint)
        if not rules:
            raise BuildError(f"no endpoint named {endpoint!r}")
        fitting = [r for r in rules if all(name in params for name in r.arguments)]
        if fitting:
            return max(fitting, key=lambda r: len(r.arguments)).build(params)
        wanted = " or ".join(str(list(r.arguments)) for r in rules)
        raise BuildError(f"{endpoint!r} needs the parameters {wanted}, got {sorted(params)}")


def _note_rest(node: _Node, rest: int) -> None:
    node.min_rest = min(node.min_rest, rest)
    node.max_rest = max(node.max_rest, rest)


class _Search:
    """One depth-first walk of the tree: the first rule for ``method`` in priority order wins.

    Nodes that match the path but not the method add their methods to ``allowed``; ``values``
    holds the converted placeholder values along the current branch.
    """

    __slots__ = ("allowed", "method", "segments", "values")

    def __init__(self, segments: list[str], method: str) -> None:
        self.segments = segments
        self.method = method
        self.allowed: set[str] = set()
        self.values: list[Any] = []

    def visit(self, node: _Node, index: int) -> Rule | None:
        if index == len(self.segments):
            if not node.rules:
                return None
            rule = node.rule_for(self.method)
            if rule is None:
                self.allowed |= node.allowed()
            return rule
        child = node.static.get(self.segments[index])
        if child is not None:
            found = self.visit(child, index + 1)
            if found is not None:
                return found
        for dynamic in node.dynamic:
            found = self._visit_dynamic(dynamic, index)
            if found is not None:
                return found
        return None

    def _visit_dynamic(self, dynamic: _Dynamic, index: int) -> Rule | None:
        segments, converter = self.segments, dynamic.converter
        if not converter.spans_segments:
            return self._try(dynamic, segments[index], index + 1)
        # Greedy: the longest text first.  Only ends that leave what the rules below consume
        # are tried, so a long path costs a few attempts, not one per segment.
        after = dynamic.node
        last, first = len(segments) - after.min_rest, max(index, len(segments) - after.max_rest - 1)
        for end in range(last, first, -1):
            found = self._try(dynamic, "/".join(segments[index:end]), end)
            if found is not None:
                return found
        return None

    def _try(self, dynamic: _Dynamic, text: str, end: int) -> Rule | None:
        """Convert ``text`` for ``dynamic`` and go on from ``end``; undo on failure."""
        converter = dynamic.converter
        if converter.pattern.fullmatch(text) is None:
            return None
        try:
            value = converter.to_python(text)
        except ValueError:
            return None
        self.values.append(value)
        found = self.visit(dynamic.node, end)
        if found is None:
            self.values.pop()
        return found
