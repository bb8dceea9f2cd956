"""The hub: the newest frame of every (module, data product), and the subscribers that read it.

Sources publish on the event loop and never wait: publishing replaces one table entry, bumps a
process-wide sequence number and wakes only the subscribers that are idle and want that
(module, dp). Subscribers track, per (module, dp), the sequence number they last received, so a
busy module can never hide a quiet one (docs/daqdata.md, "StreamImages"), and since the sequence
is never reset a re-init cannot make old frames look new or new ones look old.

An every-frame subscription (StreamImages every_frame) also gets each wanted frame appended to
its own bounded queue as it is published; when the queue is full the oldest frame is dropped and
counted, so a slow client loses frames, never stalls a source or another client.
"""

from __future__ import annotations

import asyncio
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from panoseti_appliance.daqdata.server.frame import Frame
from panoseti_appliance.products import ALL, DataProduct

#: Order of products within one module in a tick: img16, img8, ph256, ph1024.
_DP_RANK = {dp.name: rank for rank, dp in enumerate(ALL)}

Key = tuple[int, str]


@dataclass(slots=True)
class _Entry:
    seq: int
    frame: Frame


@dataclass(eq=False)
class Subscription:
    """One reader's filters and what it has already been sent.

    `modules` None means every module. `wakeup` is set when a wanted frame arrives while the
    subscriber is idle, or when the subscription is ended (`ended` then holds why).
    """

    products: frozenset[str]
    modules: frozenset[int] | None
    last_sent: dict[Key, int] = field(default_factory=dict)
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    ended: object | None = None
    #: Every-frame subscriptions: the frames not yet sent, oldest first, and how many were
    #: dropped from its front since `take_queued` last reported them (`Hub.publish` pushes).
    queue: deque[Frame] | None = None
    lost: int = 0

    def push(self, frame: Frame) -> None:
        """Queue `frame`; a full queue drops its oldest frame."""
        queue = self.queue
        assert queue is not None
        if len(queue) == queue.maxlen:
            self.lost += 1  # the deque drops the oldest on append
        queue.append(frame)
        self.wakeup.set()

    def take_queued(self, most: int) -> tuple[list[Frame], int]:
        """Up to `most` queued frames, oldest first, and how many were dropped before them
        since the previous call."""
        queue = self.queue
        assert queue is not None
        frames = [queue.popleft() for _ in range(min(most, len(queue)))]
        lost, self.lost = self.lost, 0
        return frames, lost

    async def wait_queued(self) -> None:
        """Return once a frame is queued or the subscription is ended."""
        while self.ended is None and not self.queue:
            self.wakeup.clear()
            await self.wakeup.wait()

    def wants(self, key: Key) -> bool:
        module, dp = key
        return dp in self.products and (self.modules is None or module in self.modules)

    def end(self, reason: object) -> None:
        """Stop this subscription; the reader sees `ended` after its next wake-up."""
        if self.ended is None:
            self.ended = reason
        self.wakeup.set()


class Hub:
    """Newest frame per (module, dp) and the subscriptions reading from it."""

    def __init__(self) -> None:
        self._latest: dict[Key, _Entry] = {}
        self._order: list[Key] = []  # keys sorted by (module, product rank)
        self._seq = 0
        self._idle: set[Subscription] = set()
        self._every: set[Subscription] = set()
        self.published = 0
        self.published_by_key: Counter[Key] = Counter()

    @property
    def sequence(self) -> int:
        """The sequence number of the newest frame ever published (0 before the first)."""
        return self._seq

    def publish(self, frame: Frame) -> None:
        """Store `frame` as the newest of its (module, dp) and wake idle subscribers wanting it."""
        key = (frame.module_id, frame.dp.name)
        self._seq += 1
        self.published += 1
        self.published_by_key[key] += 1
        entry = self._latest.get(key)
        if entry is None:
            self._latest[key] = _Entry(self._seq, frame)
            self._order.append(key)
            self._order.sort(key=lambda k: (k[0], _DP_RANK[k[1]]))
        else:
            entry.seq = self._seq
            entry.frame = frame
        for sub in self._every:
            if sub.wants(key):
                sub.push(frame)
        if self._idle:
            woken = [sub for sub in self._idle if sub.wants(key)]
            for sub in woken:
                self._idle.discard(sub)
                sub.wakeup.set()

    def clear(self) -> None:
        """Forget every stored frame (re-init); the sequence keeps counting."""
        self._latest.clear()
        self._order.clear()

    def subscribe(
        self,
        products: Iterable[DataProduct],
        modules: Iterable[int] | None = None,
        queue_frames: int | None = None,
    ) -> Subscription:
        """A new subscription; empty or None `modules` means every module. With `queue_frames`
        it is an every-frame subscription queueing up to that many frames."""
        wanted = frozenset(modules) if modules else None
        sub = Subscription(frozenset(dp.name for dp in products), wanted)
        if queue_frames is not None:
            sub.queue = deque(maxlen=queue_frames)
            self._every.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._idle.discard(sub)
        self._every.discard(sub)

    def take_new(self, sub: Subscription) -> list[Frame]:
        """The newest unseen frame of each wanted (module, dp), in delivery order, marked sent."""
        out: list[Frame] = []
        for key in self._order:
            entry = self._latest[key]
            if entry.seq > sub.last_sent.get(key, 0) and sub.wants(key):
                sub.last_sent[key] = entry.seq
                out.append(entry.frame)
        return out

    def has_new(self, sub: Subscription) -> bool:
        """True if some wanted (module, dp) has a frame `sub` has not been sent."""
        return any(
            entry.seq > sub.last_sent.get(key, 0) and sub.wants(key)
            for key, entry in self._latest.items()
        )

    async def wait_new(self, sub: Subscription) -> None:
        """Return once `sub` has an unseen wanted frame or is ended; never polls."""
        while sub.ended is None and not self.has_new(sub):
            sub.wakeup.clear()
            self._idle.add(sub)
            try:
                await sub.wakeup.wait()
            finally:
                self._idle.discard(sub)

    def keys(self) -> list[Key]:
        """The (module, dp) entries currently held, in delivery order."""
        return list(self._order)
