"""In-process publish/subscribe of execution progress, for the server-sent event streams.

Publishing never waits: each subscriber has a bounded queue, and a subscriber too slow to keep
up loses its oldest events and gets a ``lagged`` marker instead of slowing executions down.
(Several server processes will need a shared broker such as Redis; one process does not.)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

__all__ = ["ALL_EXECUTIONS", "EventHub", "Subscription"]

#: the topic every execution event is also published on
ALL_EXECUTIONS = "executions"


class Subscription:
    """A stream of events on one topic; iterate it, and close it (or use ``async with``)."""

    def __init__(self, hub: EventHub, topic: str, size: int) -> None:
        self._hub = hub
        self.topic = topic
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(max(size, 2))

    def put(self, event: dict[str, Any]) -> None:
        if self._queue.full():
            # drop the two oldest events to make room for the marker and the new event
            self._queue.get_nowait()
            self._queue.get_nowait()
            self._queue.put_nowait({"event": "lagged"})
        self._queue.put_nowait(event)

    async def get(self, timeout: float | None = None) -> dict[str, Any] | None:
        """The next event, or ``None`` when ``timeout`` passes first."""
        try:
            return await asyncio.wait_for(self._queue.get(), timeout)
        except TimeoutError:
            return None

    def close(self) -> None:
        self._hub._remove(self)

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(self, *_: object) -> None:
        self.close()

    async def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        while True:
            yield await self._queue.get()


class EventHub:
    """Topics to subscribers; a topic is an execution id or :data:`ALL_EXECUTIONS`."""

    def __init__(self, queue_size: int = 1000) -> None:
        self._topics: dict[str, set[Subscription]] = {}
        self._queue_size = queue_size

    def subscribe(self, topic: str) -> Subscription:
        subscription = Subscription(self, topic, self._queue_size)
        self._topics.setdefault(topic, set()).add(subscription)
        return subscription

    def _remove(self, subscription: Subscription) -> None:
        subscribers = self._topics.get(subscription.topic)
        if subscribers is not None:
            subscribers.discard(subscription)
            if not subscribers:
                del self._topics[subscription.topic]

    def has_subscribers(self, execution_id: str) -> bool:
        return bool(self._topics) and (
            ALL_EXECUTIONS in self._topics or execution_id in self._topics
        )

    def publish(self, execution_id: str, event: dict[str, Any]) -> None:
        """Deliver an event to the execution's subscribers and to those of every execution."""
        for topic in (execution_id, ALL_EXECUTIONS):
            for subscription in tuple(self._topics.get(topic, ())):
                subscription.put(event)

    @property
    def subscriber_count(self) -> int:
        return sum(len(s) for s in self._topics.values())
