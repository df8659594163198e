"""What the home's sensors tell about the elder's activity: last sign of life, room, bed and doors.

:class:`ActivityTracker` only observes; the escalation engine decides what a silence means. Signs
of life are motion (``occupancy`` true), a door or window that changes state, a button press, the
bed being entered or left, and the elder's voice (:meth:`ActivityTracker.voice`). Periodic reports
that repeat the same state (a door sensor saying "closed" every hour) are not activity.

The room is the last room where motion or a door was noticed; ``room_since`` is when she entered it,
which is what "in the bathroom too long" needs. zigbee2mqtt motion sensors report no motion after a
minute or two of stillness, so the room is only left when activity shows up somewhere else.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from devices.sensors import SensorEvent


class ActivityTracker:
    """Activity state of one home, fed with sensor events in arrival order; not thread-safe (the engine locks)."""

    def __init__(self, started: dt.datetime, *, doors: Iterable[str] = (),
                 last_activity: dt.datetime | None = None) -> None:
        """Start observing at ``started``; ``doors`` are the contacts watched for "open since";
        ``last_activity`` is remembered from before a restart."""
        self.doors = frozenset(doors)
        self.last_activity = last_activity
        """latest sign of life, None = none seen"""
        self.room = ""
        """room of the latest motion or door change, "" = unknown"""
        self.room_since = started
        """when the elder entered ``room``"""
        self.bed: tuple[bool, dt.datetime] | None = None
        """(occupied, since when) of the bed sensor, None = not reported yet"""
        self.doors_open: dict[str, dt.datetime] = {}
        """watched doors that are open, with the time they were first seen open"""
        self._contacts: dict[str, bool] = {}

    def observe(self, event: SensorEvent) -> bool:
        """Update the state from ``event``; True if it was a sign of life."""
        at, value = event.at, event.value
        alive = False
        if event.kind == "occupancy":
            if event.role == "bed":
                if self.bed is None or self.bed[0] != value:
                    self.bed = (bool(value), at)
                    alive = True
            else:
                alive = bool(value)
            if value and event.room:
                self._enter(event.room, at)
        elif event.kind == "contact":
            before = self._contacts.get(event.device)
            self._contacts[event.device] = bool(value)
            if before is not None and before != value:
                alive = True
                if event.room:
                    self._enter(event.room, at)
            if event.device in self.doors:
                if value:
                    self.doors_open.pop(event.device, None)
                else:
                    self.doors_open.setdefault(event.device, at)
        elif event.kind == "action":
            alive = True
        if alive:
            self._alive(at)
        return alive

    def voice(self, at: dt.datetime) -> None:
        """The elder spoke."""
        self._alive(at)

    def _alive(self, at: dt.datetime) -> None:
        if self.last_activity is None or at > self.last_activity:
            self.last_activity = at

    def _enter(self, room: str, at: dt.datetime) -> None:
        if room != self.room:
            self.room, self.room_since = room, at
