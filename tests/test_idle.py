"""ui/idle.py: a fragment's timed rerun that comes on time says the browser has finished drawing."""

from __future__ import annotations

import types

from ui import idle


def test_only_a_rerun_on_time_after_an_earlier_one_says_idle(monkeypatch):
    state: dict = {}
    clock = [50.0]
    monkeypatch.setattr(idle, "st", types.SimpleNamespace(session_state=state))
    monkeypatch.setattr(idle.time, "monotonic", lambda: clock[0])
    assert not idle.browser_idle("tick", 0.25)  # the first run: nothing to be on time after
    clock[0] += 0.3
    assert idle.browser_idle("tick", 0.25)  # within 1.5 periods
    clock[0] += 0.4
    assert not idle.browser_idle("tick", 0.25)  # late: the browser's timer waited for its main thread
    clock[0] += 0.25
    assert idle.browser_idle("tick", 0.25)
    assert not idle.browser_idle("other", 0.25)  # each key keeps its own time
