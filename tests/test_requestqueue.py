"""The request queue of a collection: lanes in turn, a fixed number in flight, fail-fast."""

from __future__ import annotations

import asyncio

import pytest

from reports.source.requestqueue import Job, RequestQueue


class Recorder:
    """Jobs that note when they start and end, and how many ran at once."""

    def __init__(self) -> None:
        self.events: list[str] = []
        self.running = 0
        self.most = 0

    def job(self, name: str, *, seconds: float = 0.0, then: object = None) -> Job:
        async def run() -> None:
            self.running += 1
            self.most = max(self.most, self.running)
            self.events.append(f"start {name}")
            try:
                await asyncio.sleep(seconds)
                if isinstance(then, BaseException):
                    raise then
                if callable(then):
                    then()
            finally:
                self.running -= 1
            self.events.append(f"end {name}")

        return run


def started(recorder: Recorder) -> list[str]:
    return [e.removeprefix("start ") for e in recorder.events if e.startswith("start ")]


async def test_lanes_take_turns_and_the_workers_stay_busy() -> None:
    rec = Recorder()
    queue = RequestQueue(3, ("pages", "series"))
    for i in range(4):
        queue.put("pages", rec.job(f"p{i}", seconds=0.01))
    for i in range(6):
        queue.put("series", rec.job(f"s{i}", seconds=0.01))
    await queue.run()
    assert started(rec) == ["p0", "s0", "p1", "s1", "p2", "s2", "p3", "s3", "s4", "s5"]
    assert queue.started == ["pages", "series"] * 4 + ["series"] * 2
    assert rec.most == 3 and rec.running == 0 and queue.pending() == 0


async def test_requests_put_by_a_running_request_interleave_with_the_others() -> None:
    # As in a collection: the first page tells how many pages follow, the course list names
    # the series; from then on pages and series take turns. One worker: a fixed order.
    rec = Recorder()
    queue = RequestQueue(1, ("pages", "series"))

    def more_pages() -> None:
        for i in range(2, 5):
            queue.put("pages", rec.job(f"p{i}"))

    def series() -> None:
        for i in range(4):
            queue.put("series", rec.job(f"s{i}"))

    queue.put("series", rec.job("courses", then=series))
    queue.put("pages", rec.job("p1", then=more_pages))
    await queue.run()
    assert started(rec) == ["p1", "courses", "p2", "s0", "p3", "s1", "p4", "s2", "s3"]


async def test_an_empty_queue_returns_at_once() -> None:
    queue = RequestQueue(4, ("a",))
    await asyncio.wait_for(queue.run(), 1)
    assert queue.started == []


async def test_a_failure_cancels_the_requests_in_flight_and_starts_nothing_more() -> None:
    rec = Recorder()
    queue = RequestQueue(3, ("pages", "series"))
    queue.put("pages", rec.job("slow page 1", seconds=30))
    queue.put("series", rec.job("bad series", seconds=0.01, then=LookupError("course X")))
    queue.put("pages", rec.job("slow page 2", seconds=30))
    for i in range(5):
        queue.put("series", rec.job(f"s{i}", seconds=30))
    with pytest.raises(BaseExceptionGroup) as caught:
        await asyncio.wait_for(queue.run(), 5)
    assert [type(e) for e in caught.value.exceptions] == [LookupError]
    assert str(caught.value.exceptions[0]) == "course X"
    # The two slow pages were in flight and were cancelled (no "end"); the series queued
    # behind the bad one never started.
    assert rec.events == ["start slow page 1", "start bad series", "start slow page 2"]
    assert rec.running == 0
    assert queue.pending() == 5


def test_a_queue_needs_workers_and_lanes() -> None:
    with pytest.raises(ValueError, match="at least one worker"):
        RequestQueue(0, ("a",))
    with pytest.raises(ValueError, match="at least one lane"):
        RequestQueue(1, ())
