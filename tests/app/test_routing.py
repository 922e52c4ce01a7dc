from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kakehashi.app import BuildError, Converter
from kakehashi.app.routing import RequestRedirect, Router
from kakehashi.errors import ConfigError, MethodNotAllowed, NotFound, RouteConflictError


def router(*rules: str | tuple[str, list[str]]) -> Router:
    r = Router()
    for index, rule in enumerate(rules):
        text, methods = (rule, ["GET"]) if isinstance(rule, str) else rule
        r.add(text, f"e{index}", methods)
    return r


def endpoint(r: Router, path: str, method: str = "GET") -> tuple[str, dict[str, Any]]:
    found = r.match(method, path)
    return found.rule.endpoint, found.params


# --- matching ----------------------------------------------------------------------------


def test_static_and_root() -> None:
    r = router("/", "/about", "/a/b")
    assert endpoint(r, "/") == ("e0", {})
    assert endpoint(r, "/about") == ("e1", {})
    assert endpoint(r, "/a/b") == ("e2", {})


@pytest.mark.parametrize("path", ["/greeting/Taro/anything", "/greeting/", "/greeting", "/x"])
def test_matching_is_exact(path: str) -> None:
    with pytest.raises(NotFound):
        router("/greeting/<name>").match("GET", path)


def test_unicode_segment() -> None:
    assert endpoint(router("/greeting/<name>"), "/greeting/太郎") == ("e0", {"name": "太郎"})


def test_path_not_starting_with_slash_is_404() -> None:
    with pytest.raises(NotFound):
        router("/").match("GET", "*")


@pytest.mark.parametrize("order", [1, -1])
def test_static_beats_dynamic_whatever_the_order(order: int) -> None:
    r = Router()
    for name, text in [("static", "/users/me"), ("dynamic", "/users/<name>")][::order]:
        r.add(text, name, ["GET"])
    assert endpoint(r, "/users/me") == ("static", {})
    assert endpoint(r, "/users/you") == ("dynamic", {"name": "you"})


def test_weights_pick_the_most_specific_converter() -> None:
    r = Router()
    r.add("/v/<path:p>", "path", ["GET"])
    r.add("/v/<s>", "str", ["GET"])
    r.add("/v/<float:f>", "float", ["GET"])
    r.add("/v/<int:i>", "int", ["GET"])
    r.add("/v/<uuid:u>", "uuid", ["GET"])
    u = "12345678-1234-5678-1234-567812345678"
    assert endpoint(r, "/v/12") == ("int", {"i": 12})
    assert endpoint(r, "/v/1.5") == ("float", {"f": 1.5})
    assert endpoint(r, "/v/abc") == ("str", {"s": "abc"})
    assert endpoint(r, "/v/a/b") == ("path", {"p": "a/b"})
    assert endpoint(r, f"/v/{u}") == ("uuid", {"u": uuid.UUID(u)})


def test_backtracking_when_static_branch_fails_deeper() -> None:
    r = router("/a/b/c", "/a/<x>/d")
    assert endpoint(r, "/a/b/c") == ("e0", {})
    assert endpoint(r, "/a/b/d") == ("e1", {"x": "b"})


def test_path_converter_in_the_middle_and_at_the_end() -> None:
    r = router("/files/<path:p>/edit", "/static/<path:rest>")
    assert endpoint(r, "/files/a/b/edit") == ("e0", {"p": "a/b"})
    assert endpoint(r, "/files/edit/edit") == ("e0", {"p": "edit"})
    assert endpoint(r, "/static/css/site.css") == ("e1", {"rest": "css/site.css"})
    for bad in ("/files/edit", "/static/", "/static/a//b"):
        with pytest.raises(NotFound):
            r.match("GET", bad)


class EvenConverter(Converter):
    regex = r"[0-9]+"
    weight = 15

    def to_python(self, value: str) -> int:
        if int(value) % 2:
            raise ValueError("odd")
        return int(value)


def test_custom_converter_value_error_means_no_match() -> None:
    r = Router({"even": EvenConverter})
    r.add("/n/<even:n>", "even", ["GET"])
    r.add("/n/<int:n>", "int", ["GET"])
    assert endpoint(r, "/n/4") == ("even", {"n": 4})
    assert endpoint(r, "/n/5") == ("int", {"n": 5})


def test_405_lists_the_union_of_methods_of_every_matching_rule() -> None:
    r = router(("/x/<int:i>", ["GET"]), ("/x/<s>", ["POST", "DELETE"]))
    assert endpoint(r, "/x/1", "POST") == ("e1", {"s": "1"})
    with pytest.raises(MethodNotAllowed) as caught:
        r.match("PUT", "/x/1")
    assert caught.value.allowed == ["DELETE", "GET", "HEAD", "OPTIONS", "POST"]
    with pytest.raises(MethodNotAllowed) as caught:
        r.match("GET", "/x/abc")
    assert caught.value.allowed == ["DELETE", "OPTIONS", "POST"]


def test_head_is_served_by_get_unless_declared() -> None:
    r = router(("/a", ["GET"]), ("/b", ["GET"]), ("/b", ["HEAD"]))
    assert endpoint(r, "/a", "HEAD") == ("e0", {})
    assert endpoint(r, "/b", "HEAD") == ("e2", {})


def test_trailing_slash_redirect_only_for_rules_declared_with_it() -> None:
    r = router("/dir/", "/file", "/tree/<path:p>/")
    with pytest.raises(RequestRedirect) as caught:
        r.match("GET", "/dir")
    assert caught.value.new_path == "/dir/"
    assert caught.value.status == 308
    with pytest.raises(RequestRedirect):
        r.match("POST", "/tree/a/b")
    with pytest.raises(NotFound):
        r.match("GET", "/file/")
    assert endpoint(r, "/dir/") == ("e0", {})


def test_many_routes_still_match_exactly() -> None:
    r = Router()
    for i in range(1000):
        r.add(f"/r{i}/<int:id>/items/<name>", f"e{i}", ["GET"])
    assert endpoint(r, "/r999/5/items/x") == ("e999", {"id": 5, "name": "x"})
    with pytest.raises(NotFound):
        r.match("GET", "/r1000/5/items/x")


def test_long_paths_cost_little_even_with_a_path_converter_in_the_middle() -> None:
    r = router("/f/<path:p>/edit", "/f/<path:p>/<x>/<int:n>/z", "/g/<path:p>")
    long = "/a" * 4000
    started = time.perf_counter()
    for _ in range(10):
        with pytest.raises(NotFound):
            r.match("GET", "/f" + long)
        assert endpoint(r, f"/f{long}/edit")[0] == "e0"
        assert endpoint(r, f"/f{long}/b/7/z") == ("e1", {"p": long[1:], "x": "b", "n": 7})
        assert endpoint(r, "/g" + long)[0] == "e2"
    assert time.perf_counter() - started < 2


# --- registration errors -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("/a", "/a"),
        ("/a/<int:x>", "/a/<int:y>"),
        ("/a/<x>", "/a/<string:y>"),
        ("/a/<path:p>/b", "/a/<path:q>/b"),
    ],
)
def test_duplicates_are_refused(first: str, second: str) -> None:
    r = router(first)
    with pytest.raises(RouteConflictError, match="duplicates"):
        r.add(second, "other", ["GET"])


def test_same_rule_with_other_methods_is_fine_but_overlap_is_not() -> None:
    r = router(("/a", ["GET"]), ("/a", ["POST"]))
    with pytest.raises(RouteConflictError):
        r.add("/a", "again", ["PUT", "POST"])
    assert endpoint(r, "/a", "POST") == ("e1", {})


def test_converters_of_equal_weight_are_ambiguous() -> None:
    class Word(Converter):
        regex = r"[a-z]+"

    r = Router({"word": Word})
    r.add("/a/<x>", "str", ["GET"])
    with pytest.raises(RouteConflictError, match="ambiguous"):
        r.add("/a/<word:w>", "word", ["GET"])


def test_different_weights_are_not_ambiguous() -> None:
    r = router("/a/<x>", "/a/<int:y>", "/a/<float:z>")
    assert endpoint(r, "/a/3") == ("e1", {"y": 3})


@pytest.mark.parametrize(
    "rule",
    [
        "nope",
        "/a//b",
        "/a/x<y>",
        "/a/<y",
        "/a/<nope:y>",
        "/a/<x>/<x>",
        "/<1x>",
        "/<path:a>/<path:b>",
    ],
)
def test_malformed_rules_are_refused(rule: str) -> None:
    with pytest.raises(ConfigError):
        Router().add(rule, "e", ["GET"])


@pytest.mark.parametrize("methods", [[], ["GE T"], ["get\n"]])
def test_bad_methods_are_refused(methods: list[str]) -> None:
    with pytest.raises(ConfigError):
        Router().add("/", "e", methods)


def test_methods_are_uppercased() -> None:
    assert endpoint(router(("/", ["post"])), "/", "POST") == ("e0", {})


# --- building ----------------------------------------------------------------------------


def test_build() -> None:
    r = router("/greeting/<name>", "/n/<int:i>", "/static/<path:p>", "/")
    assert r.build("e0", {"name": "太郎"}) == "/greeting/%E5%A4%AA%E9%83%8E"
    assert r.build("e0", {"name": "a b?"}) == "/greeting/a%20b%3F"
    assert r.build("e1", {"i": 3, "q": "x y", "tag": ["a", "b"]}) == "/n/3?q=x+y&tag=a&tag=b"
    assert r.build("e2", {"p": "css/a b.css"}) == "/static/css/a%20b.css"
    assert r.build("e3", {}) == "/"


def test_build_picks_the_rule_whose_parameters_are_given() -> None:
    r = Router()
    r.add("/list", "items", ["GET"])
    r.add("/list/<int:page>", "items", ["GET"])
    assert r.build("items", {}) == "/list"
    assert r.build("items", {"page": 2}) == "/list/2"


@pytest.mark.parametrize(
    ("endpoint_name", "params"),
    [("missing", {}), ("e0", {}), ("e0", {"name": "a/b"}), ("e1", {"i": -1}), ("e1", {"i": "x"})],
)
def test_build_errors(endpoint_name: str, params: dict[str, Any]) -> None:
    r = router("/greeting/<name>", "/n/<int:i>")
    with pytest.raises(BuildError):
        r.build(endpoint_name, params)


def test_allowed_everywhere() -> None:
    assert router(("/", ["GET"]), ("/x", ["PUT"])).allowed_everywhere() == [
        "GET",
        "HEAD",
        "OPTIONS",
        "PUT",
    ]


_SEGMENT = st.text(min_size=1).filter(lambda s: "/" not in s)


@given(name=_SEGMENT)
def test_any_unicode_segment_round_trips(name: str) -> None:
    import urllib.parse

    r = router("/greeting/<name>")
    url = r.build("e0", {"name": name})
    assert url.isascii()
    decoded = urllib.parse.unquote(url, errors="strict")
    assert endpoint(r, decoded) == ("e0", {"name": name})
