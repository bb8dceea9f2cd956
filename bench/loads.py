"""The processes that load a daemon during a run: how they are started, paced and stopped.

Every producer and reader is a process of its own (spawned, so each has its own interpreter and
gRPC core): one Python process cannot produce or read as fast as the daemon serves. Each gets a
`Gate`: it sets `ready` once connected, starts when `go` is set and ends when `stop` is set. What
the parent must read while they run (images sent or received) goes through shared counters, one
slot per writer, so no lock is needed; what they return at the end goes through a queue.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.context import SpawnContext, SpawnProcess
from multiprocessing.sharedctypes import RawArray
from multiprocessing.synchronize import Event
from typing import Any

CTX: SpawnContext = mp.get_context("spawn")
#: Channel options of every bench client: a connection of its own per channel, as separate
#: client machines would have (gRPC otherwise shares one connection between a process's channels).
CHANNEL_OPTIONS = [("grpc.use_local_subchannel_pool", 1)]
#: How long a load process may take to start (spawn, imports, connect) or to report at the end.
START_TIMEOUT = 60.0
RESULT_TIMEOUT = 60.0


@dataclass(frozen=True)
class Gate:
    """ready: the process is connected; go: start producing; stop: finish and report."""

    ready: Event
    go: Event
    stop: Event

    @classmethod
    def make(cls) -> Gate:
        return cls(CTX.Event(), CTX.Event(), CTX.Event())


def counters(size: int) -> Any:
    """`size` shared 64-bit counters, zeroed (one writer per slot)."""
    return RawArray("q", size)


@dataclass
class Loads:
    """The load processes of one run: started with a gate each, stopped and reported together."""

    processes: list[tuple[SpawnProcess, Gate, Any]] = field(default_factory=list)

    def start(self, target: Callable[..., None], *args: Any) -> Gate:
        """Start `target(*args, gate, result_queue)` in a new process; wait until it is ready."""
        gate = Gate.make()
        result = CTX.Queue()
        process = CTX.Process(target=target, args=(*args, gate, result), daemon=True)
        process.start()
        self.processes.append((process, gate, result))
        deadline = time.monotonic() + START_TIMEOUT
        while not gate.ready.wait(0.1):
            if not process.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"load process {target.__name__} did not get ready")
        return gate

    def go(self) -> None:
        for _, gate, _ in self.processes:
            gate.go.set()

    def stop(self) -> list[Any]:
        """Stop every process and return what each reported, in start order."""
        for _, gate, _ in self.processes:
            gate.stop.set()
        results = [queue.get(timeout=RESULT_TIMEOUT) for _, _, queue in self.processes]
        self.close()
        return results

    def close(self) -> None:
        """End every process still running (after an error), then forget them."""
        for process, gate, _ in self.processes:
            gate.stop.set()
            process.join(timeout=10)
            if process.is_alive():
                process.terminate()
                process.join()
        self.processes.clear()
