"""`python -m streamlit` with a clock inside the server: when each rerun's request arrives and its last message leaves.

    MNIST_LAB_SERVER_TIMINGS=reruns.jsonl python -m bench.timed_server run streamlit_app.py [Streamlit's options]

For the load and soak benchmarks only: the app is the same, nothing in pages/ or ui/ knows about it, and without
the variable this is plain `python -m streamlit`. With it, each script run whose `script_finished` reaches the
browser's websocket is appended to the file as one JSON line (a `Rerun`), at the moment that message is written:

  arrived   the `rerun_script` BackMsg asking for the run reaches its session (`AppSession.handle_backmsg`, on the
            server's event loop, right after the websocket frame is read and parsed); None for a run the server
            starts by itself (`st.rerun`, a page switch). A run takes the newest request its session received
            before the run started: a request that comes while a run is going stops it and starts the next run with
            the newest widget values, so the newest request is the one a run answers.
  started   the run's `new_session` message is queued (the event loop has taken up the run's start)
  verdict   the first of its messages that is an alert holding the Draw page's verdict (ANSWER_TEXT) is queued;
            None for a run that shows none. The run goes on after it: the chart, the saliency map, the panel below.
  finished  its `script_finished` message is queued
  sent      that `script_finished`, the run's last message, is written to the websocket (`send_bytes` returned)

with whether it reran fragments only (`metadata.run.fragment_ids`) and how it finished. `Rerun.answers_a_drawing`
says which runs the benchmarks count: the Draw page's canvas and its answer are one `st.fragment`, so a drawing
is answered by a fragment run, asked for by the browser, that finishes and shows the verdict. Times are
`time.monotonic()` seconds of the server process.

It wraps private methods of Streamlit 1.67.0, the version requirements.txt pins; another version is announced
on stderr at start, and the methods below need checking again before its figures are trusted:

  AppSession.handle_backmsg         a rerun request arrives
  AppSession._enqueue_forward_msg   a run's new_session, deltas and script_finished are queued
  Runtime._send_message             a message is handed to its session's websocket client (queued for sending)
  StarletteSessionClient.__init__   its websocket's `send_bytes`, which writes the queued messages in order

Every hook runs on the server's event loop thread (Streamlit queues script-thread events onto it), so the
bookkeeping takes no lock; per-session and per-connection state dies with its session and connection.
"""

from __future__ import annotations

import functools
import json
import os
import re
import sys
import time
import weakref
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path

TIMINGS_ENV = "MNIST_LAB_SERVER_TIMINGS"
WRITTEN_FOR = "1.67.0"
# The Draw page's verdict, as its alert says it; the page-side clock in bench/harness.py looks for the same text.
ANSWER_TEXT = r"It's a|Not sure"
ANSWERED_STATUS = "FINISHED_FRAGMENT_RUN_SUCCESSFULLY"


@dataclass
class Rerun:
    """One script run as the server saw it; times in seconds of the server's monotonic clock."""

    run_id: str
    session: str
    fragment: bool
    arrived: float | None
    started: float
    verdict: float | None = None
    finished: float | None = None
    sent: float | None = None
    status: str = ""

    @property
    def answers_a_drawing(self) -> bool:
        """A fragment run, asked for by the browser, that finished and showed the verdict: the answer to a drawing."""
        return self.fragment and self.arrived is not None and self.verdict is not None and self.status == ANSWERED_STATUS


def read_reruns(path: Path) -> list[Rerun]:
    """The runs a timed server has written to `path` so far, in the order their last messages left it."""
    if not path.exists():
        return []
    return [Rerun(**json.loads(line)) for line in path.read_text().splitlines() if line.strip()]


@dataclass
class _SessionClock:
    arrived: float | None = None  # the newest rerun request not yet taken up by a run
    running: Rerun | None = None
    finishing: dict[str, Rerun] = field(default_factory=dict)  # script_finished queued, not yet handed to the client


@dataclass
class _Wire:
    """One websocket: payloads handed to it and written by it (it writes them in order), and the runs waiting to leave."""

    queued: int = 0
    sent: int = 0
    waiting: deque[tuple[int, Rerun]] = field(default_factory=deque)


def install(path: Path) -> None:
    """Wrap Streamlit's session, runtime and websocket so that every run is written to `path` as it leaves."""
    import streamlit
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
    from streamlit.runtime.app_session import AppSession
    from streamlit.runtime.runtime import Runtime
    from streamlit.web.server.starlette.starlette_websocket import StarletteSessionClient

    if streamlit.__version__ != WRITTEN_FOR:
        print(f"bench.timed_server: written for Streamlit {WRITTEN_FOR}, running {streamlit.__version__}: "
              "check the wrapped methods before trusting its times", file=sys.stderr)  # fmt: skip
    verdict = re.compile(ANSWER_TEXT)
    records = open(path, "a", buffering=1)  # one line per run, for the server's whole life
    sessions: weakref.WeakKeyDictionary[AppSession, _SessionClock] = weakref.WeakKeyDictionary()
    wires: weakref.WeakKeyDictionary[StarletteSessionClient, _Wire] = weakref.WeakKeyDictionary()

    def clock(session: AppSession) -> _SessionClock:
        if session not in sessions:
            sessions[session] = _SessionClock()
        return sessions[session]

    def shows_verdict(msg: ForwardMsg) -> bool:
        element = msg.delta.new_element
        return element.WhichOneof("type") == "alert" and verdict.search(element.alert.body) is not None

    @around(AppSession, "handle_backmsg")
    def handle_backmsg(original, self, msg):
        if msg.WhichOneof("type") == "rerun_script":
            clock(self).arrived = time.monotonic()
        return original(self, msg)

    @around(AppSession, "_enqueue_forward_msg")
    def enqueue_forward_msg(original, self, msg):
        kind, now, state = msg.WhichOneof("type"), time.monotonic(), clock(self)
        run = state.running
        if kind == "new_session":
            state.running = Rerun(msg.metadata.run.script_run_id, self.id[:8], bool(msg.metadata.run.fragment_ids),
                                  state.arrived, now)  # fmt: skip
            state.arrived = None
        elif kind == "delta" and run is not None and run.verdict is None and shows_verdict(msg):
            run.verdict = now
        elif kind == "script_finished" and run is not None and run.run_id == msg.metadata.run.script_run_id:
            run.finished, run.status = now, ForwardMsg.ScriptFinishedStatus.Name(msg.script_finished)
            state.finishing[run.run_id] = run
            state.running = None
        return original(self, msg)

    @around(Runtime, "_send_message")
    def send_message(original, self, session_info, msg):
        original(self, session_info, msg)  # raises, queueing nothing, when the client has gone
        wire = wires.get(session_info.client)
        if wire is None:
            return
        wire.queued += 1
        if msg.WhichOneof("type") == "script_finished":
            run = clock(session_info.session).finishing.pop(msg.metadata.run.script_run_id, None)
            if run is not None:
                wire.waiting.append((wire.queued, run))

    @around(StarletteSessionClient, "__init__")
    def client_init(original, self, websocket):
        wire = wires[self] = _Wire()
        send_bytes = websocket.send_bytes

        async def timed_send_bytes(data: bytes) -> None:
            await send_bytes(data)
            wire.sent += 1
            while wire.waiting and wire.waiting[0][0] <= wire.sent:
                run = wire.waiting.popleft()[1]
                run.sent = time.monotonic()
                records.write(json.dumps(asdict(run)) + "\n")

        websocket.send_bytes = timed_send_bytes  # the client's sender task looks it up for every payload
        original(self, websocket)


def around(owner: type, name: str):
    """Replace the method `owner.name` by the decorated hook, which is called with the original method first."""
    original = getattr(owner, name)

    def decorate(hook):
        @functools.wraps(original)
        def method(*args, **kwargs):
            return hook(original, *args, **kwargs)

        setattr(owner, name, method)
        return method

    return decorate


def main() -> None:
    """Streamlit's command line, timed when $MNIST_LAB_SERVER_TIMINGS names a file."""
    if os.environ.get(TIMINGS_ENV):
        install(Path(os.environ[TIMINGS_ENV]))
    from streamlit.web.cli import main as streamlit_main

    streamlit_main(prog_name="streamlit")  # as `python -m streamlit` calls it


if __name__ == "__main__":
    main()
