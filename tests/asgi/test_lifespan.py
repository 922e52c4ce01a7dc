"""The lifespan cycle as a state machine (asgiref lifespan.rst), without a loop."""

from __future__ import annotations

import pytest

from kakehashi.asgi import LifespanCycle, LifespanPhase
from kakehashi.errors import LocalProtocolError


def test_startup_then_shutdown() -> None:
    life = LifespanCycle()
    scope = life.scope()
    assert scope["type"] == "lifespan" and scope["asgi"]["version"] == "3.0"
    assert scope["state"] is life.state
    assert life.next_message() == {"type": "lifespan.startup"}
    assert life.next_message() is None  # nothing more until the server stops
    life.app_sent({"type": "lifespan.startup.complete"})
    assert life.phase is LifespanPhase.STARTED and life.serving
    assert life.ask_shutdown()
    assert life.next_message() == {"type": "lifespan.shutdown"}
    life.app_sent({"type": "lifespan.shutdown.complete", "extra": 1})
    assert life.phase is LifespanPhase.STOPPED
    life.app_ended(None)
    assert life.phase is LifespanPhase.STOPPED


def test_startup_failed_carries_the_message() -> None:
    life = LifespanCycle()
    life.next_message()
    life.app_sent({"type": "lifespan.startup.failed", "message": "no database"})
    assert (life.phase, life.message) == (LifespanPhase.FAILED, "no database")
    assert not life.serving and not life.ask_shutdown()
    life.app_ended(RuntimeError("raised after failing"))
    assert life.phase is LifespanPhase.FAILED  # the first reason stays


@pytest.mark.parametrize("error", [None, TypeError("app() takes 2 arguments")])
def test_an_app_that_ends_before_answering_does_not_support_lifespan(
    error: Exception | None,
) -> None:
    life = LifespanCycle()
    life.next_message()
    life.app_ended(error)
    assert life.phase is LifespanPhase.UNSUPPORTED and life.serving
    assert not life.ask_shutdown()  # never told about the shutdown


def test_shutdown_failed_and_an_app_raising_while_stopping() -> None:
    life = LifespanCycle()
    life.next_message()
    life.app_sent({"type": "lifespan.startup.complete"})
    life.ask_shutdown()
    life.next_message()
    life.app_sent({"type": "lifespan.shutdown.failed", "message": "flush failed"})
    assert (life.phase, life.message) == (LifespanPhase.FAILED, "flush failed")
    other = LifespanCycle()
    other.next_message()
    other.app_sent({"type": "lifespan.startup.complete"})
    other.ask_shutdown()
    other.next_message()
    other.app_ended(ValueError("boom"))
    assert (other.phase, other.message) == (LifespanPhase.FAILED, "ValueError: boom")


@pytest.mark.parametrize(
    "message",
    [
        {"type": "lifespan.shutdown.complete"},  # wrong phase
        {"type": "http.response.start"},
        {"no": "type"},
        {"type": "lifespan.startup.failed", "message": b"bytes"},
    ],
)
def test_invalid_or_out_of_order_messages_raise(message: dict[str, object]) -> None:
    life = LifespanCycle()
    life.next_message()
    with pytest.raises(LocalProtocolError):
        life.app_sent(message)


def test_an_answer_before_the_question_raises() -> None:
    with pytest.raises(LocalProtocolError):
        LifespanCycle().app_sent({"type": "lifespan.startup.complete"})
    life = LifespanCycle()
    life.next_message()
    life.app_sent({"type": "lifespan.startup.complete"})
    life.ask_shutdown()
    with pytest.raises(LocalProtocolError):  # shutdown not delivered yet
        life.app_sent({"type": "lifespan.shutdown.complete"})


def test_an_app_returning_while_stopping_has_stopped() -> None:
    life = LifespanCycle()
    life.next_message()
    life.app_sent({"type": "lifespan.startup.complete"})
    life.ask_shutdown()
    life.app_ended(None)  # returned without answering the shutdown: it is done all the same
    assert life.phase is LifespanPhase.STOPPED
