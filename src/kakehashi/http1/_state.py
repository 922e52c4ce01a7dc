"""Roles and states of one HTTP/1.1 connection, and the only table of transitions.

No I/O here.  Each side of the connection (ours and theirs) moves through the same states for
each request/response cycle:

    IDLE --head--> SEND_BODY --end of message--> DONE --start_next_cycle--> IDLE
                                                 DONE --not reusable------> MUST_CLOSE
    any --close--> CLOSED          any --protocol error--> ERROR
    IDLE/DONE/MUST_CLOSE --101 to an Upgrade request--> SWITCHED_PROTOCOL (both sides)

After SWITCHED_PROTOCOL the bytes belong to another protocol (a WebSocket): the connection
parses nothing more and hands them on through ``Connection.trailing_data``, as h11 does.

A state changes only through :func:`transition`, which refuses any move not in the table.
"""

from __future__ import annotations

import enum

from kakehashi.errors import LocalProtocolError

__all__ = ["Role", "State", "transition"]


class Role(enum.Enum):
    CLIENT = "client"
    SERVER = "server"


class State(enum.Enum):
    IDLE = "idle"  # between messages: waiting for (or about to send) a head
    SEND_BODY = "send body"  # head done, body in progress
    DONE = "done"  # message complete
    MUST_CLOSE = "must close"  # message complete and the connection will not be reused
    CLOSED = "closed"  # this side closed
    ERROR = "error"  # a protocol error happened; only closing is left
    SWITCHED_PROTOCOL = "switched protocol"  # a 101 was exchanged: the bytes are not HTTP


class Event(enum.Enum):
    HEAD = "head"
    END = "end of message"
    NEXT_CYCLE = "next cycle"
    NOT_REUSABLE = "not reusable"
    CLOSE = "close"
    ERROR = "error"
    SWITCH = "switch protocol"


_TABLE: dict[tuple[State, Event], State] = {
    (State.IDLE, Event.HEAD): State.SEND_BODY,
    (State.SEND_BODY, Event.END): State.DONE,
    (State.DONE, Event.NEXT_CYCLE): State.IDLE,
    (State.DONE, Event.NOT_REUSABLE): State.MUST_CLOSE,
    (State.MUST_CLOSE, Event.NOT_REUSABLE): State.MUST_CLOSE,
    (State.IDLE, Event.SWITCH): State.SWITCHED_PROTOCOL,
    (State.DONE, Event.SWITCH): State.SWITCHED_PROTOCOL,
    (State.MUST_CLOSE, Event.SWITCH): State.SWITCHED_PROTOCOL,
}


def transition(state: State, event: Event) -> State:
    """The state after ``event``.

    Raises:
        LocalProtocolError: the event is not allowed in this state.
    """
    if event is Event.CLOSE:
        return State.CLOSED
    if event is Event.ERROR:
        return State.ERROR
    try:
        return _TABLE[state, event]
    except KeyError:
        raise LocalProtocolError(f"cannot {event.value} in state {state.value}") from None
