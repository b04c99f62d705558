"""Messages that travel between the app and its screens."""

from __future__ import annotations

from textual.message import Message


class HeadMoved(Message):
    """The journal's head moved (someone appended): screens refresh what they show."""

    def __init__(self, seq: int) -> None:
        super().__init__()
        self.seq = seq


class ArmedChanged(Message):
    def __init__(self, armed: bool) -> None:
        super().__init__()
        self.armed = armed
