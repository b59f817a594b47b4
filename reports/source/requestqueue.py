"""One queue for the requests of a collection, served by a fixed number of workers.

A collection learns what to ask for as answers come in (the course list names the series to
fetch, the first user page tells how many pages follow). Each request is put on the queue as soon
as it is known, in a lane (user pages, course series); ``workers`` tasks take requests from the
lanes in turn, so the lanes interleave and none waits for another to drain, and the number in
flight stays at ``workers`` while there is work. A request may put further requests.

The first failure ends the run: the other workers are cancelled (their requests in flight too),
nothing queued is started, and ``run`` raises a group holding that failure (``asyncio.TaskGroup``
semantics). The queue knows nothing of HTTP: a request is any ``async`` function.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Sequence

Job = Callable[[], Awaitable[None]]


class RequestQueue:
    """Requests waiting for one of ``workers`` workers, taken from the lanes in turn."""

    def __init__(self, workers: int, lanes: Sequence[str]) -> None:
        if workers < 1:
            raise ValueError("a request queue needs at least one worker")
        if not lanes:
            raise ValueError("a request queue needs at least one lane")
        self.workers = workers
        self._lanes: dict[str, deque[Job]] = {lane: deque() for lane in lanes}
        self._order = list(self._lanes)
        self._next = 0
        self._busy = 0
        self._changed = asyncio.Event()
        self.started: list[str] = []
        """The lane of every request in the order the workers took them (for tests, benches)."""

    def put(self, lane: str, job: Job) -> None:
        """Queue ``job`` at the end of ``lane``; a free worker starts it at its turn."""
        self._lanes[lane].append(job)
        self._changed.set()

    def pending(self) -> int:
        """Requests queued and not started yet."""
        return sum(len(jobs) for jobs in self._lanes.values())

    async def run(self) -> None:
        """Serve the queue until it is empty and no request is running (or one fails)."""
        async with asyncio.TaskGroup() as group:
            for _ in range(self.workers):
                group.create_task(self._work())

    def _take(self) -> Job | None:
        for step in range(len(self._order)):
            lane = self._order[(self._next + step) % len(self._order)]
            jobs = self._lanes[lane]
            if jobs:
                self._next = (self._next + step + 1) % len(self._order)
                self.started.append(lane)
                return jobs.popleft()
        return None

    async def _work(self) -> None:
        while True:
            job = self._take()
            if job is None:
                if self._busy == 0:  # nothing queued, nothing running that could queue more
                    self._changed.set()  # wake the other idle workers so they end too
                    return
                self._changed.clear()
                await self._changed.wait()
                continue
            self._busy += 1
            try:
                await job()
            finally:
                self._busy -= 1
                self._changed.set()
