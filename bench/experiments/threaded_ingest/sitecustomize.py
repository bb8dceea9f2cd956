"""Experiment, never part of the daemon: Hashpipe framing in one thread per producer connection.

The issue of the every-frame work asked that ingest run where it cannot starve gRPC writes,
"a thread or process per source ... or another design you measure to be better". The daemon
reads each connection on the event loop, 8 KiB at a time, yielding before every read
(runtime/receive.py). This module swaps in the thread design so both can be measured with the
same bench; with this directory on PYTHONPATH, Python imports it at start-up in every process,
and it replaces HashpipeListener._read_loop once the daemon imports that module:

    PYTHONPATH=$PWD/bench/experiments/threaded_ingest .venv/bin/python bench/run_all.py \
        --only 2,8 --no-docs

(an absolute path: the daemons run in directories of their own).

Each connection gets a thread doing blocking reads of up to 64 KiB, framing and parsing the
JSON headers there, and handing each read's frames to the loop in one call_soon_threadsafe;
frames are built and published on the loop as before. It keeps none of the daemon's restart
hand-over or drop logging: it exists to be measured (docs/performance.md has the figures).
"""

from __future__ import annotations

import asyncio
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import threading
from collections.abc import Sequence
from types import ModuleType
from typing import Any

TARGET = "panoseti_appliance.daqdata.server.sources.hashpipe"
RECV_BYTES = 65536


def _patch(hashpipe: Any) -> None:
    async def threaded_read_loop(
        self: Any, conn: Any, sink: Any, first: bytes = b"", ended: bool = False
    ) -> None:
        loop = asyncio.get_running_loop()
        conn.sock.setblocking(True)
        done = asyncio.Event()

        def deliver(frames: list[tuple[int, dict[str, Any], bytes]]) -> None:
            for module, header, pixels in frames:
                self._deliver(sink, conn.dp, module, header, pixels)

        def read() -> None:
            data = first
            try:
                while data or not ended:
                    if data:
                        frames = conn.framer.feed(data)
                        if frames:
                            loop.call_soon_threadsafe(deliver, frames)
                    data = conn.sock.recv(RECV_BYTES)
                    if not data:
                        break
            except OSError:
                pass
            finally:
                loop.call_soon_threadsafe(done.set)

        threading.Thread(target=read, name=f"ingest-{conn.dp.name}", daemon=True).start()
        try:
            await done.wait()
        finally:
            self._conns = {k: c for k, c in self._conns.items() if c is not conn}
            conn.sock.close()

    hashpipe.HashpipeListener._read_loop = threaded_read_loop


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Finds nothing itself: wraps the real loader of TARGET so the module is patched as soon as
    it has run."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != TARGET:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None:
            return spec
        loader: Any = spec.loader
        run = loader.exec_module

        def exec_module(module: ModuleType) -> None:
            run(module)
            _patch(module)

        loader.exec_module = exec_module
        return spec


sys.meta_path.insert(0, _PatchOnImport())
