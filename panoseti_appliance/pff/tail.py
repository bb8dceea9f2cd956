"""Following a PFF file that the DAQ is still writing, to report its newest complete frame.

Re-reading a growing file on every poll would cost time proportional to its size; `FileTail`
instead remembers where the frames are and normally reads only the last one, while staying
correct when the file is replaced, truncated or rewritten in place.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

from panoseti_appliance.pff.errors import PffError
from panoseti_appliance.pff.frames import PffFrame, frame_at, parse_frame
from panoseti_appliance.pff.headers import header_problem
from panoseti_appliance.pff.layout import HEADER_END, MAX_HEADER_BYTES
from panoseti_appliance.products import DataProduct


class FileTail:
    """Follow one growing file and return its last complete frame.

    Keeps (inode, frame_size, last good offset and index) between calls, so a call normally reads
    only the last frame (plus the first frame once per file). A changed inode or a shrunken file
    resets it. When the size arithmetic does not land on a valid frame (a header changed width, a
    frame is half rewritten), the call scans sequentially from the last good offset instead, and
    the next call tries the arithmetic again. If the bytes at the last good offset are no longer a
    frame start, the file was rewritten in place: the state is dropped and the file rescanned
    (once per change of size or mtime, so a corrupt file is not re-read on every call).
    Blocking: call it from a worker thread.
    """

    def __init__(self, path: str | os.PathLike[str], dp: DataProduct) -> None:
        self.path = Path(path)
        self.dp = dp
        self._inode: int | None = None
        self._size = 0
        self._mtime_ns = 0
        self._forget()

    def _forget(self) -> None:
        self._first_offset = 0
        self._frame_size: int | None = None
        self._good_offset = 0  # frames before this offset were read and are valid
        self._good_index = 0  # index of the frame starting at _good_offset
        self._last: PffFrame | None = None

    def last_frame(self) -> PffFrame | None:
        """The newest complete, valid frame (possibly the same as last time), or None."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self._inode = None
            self._forget()
            return None
        if st.st_ino != self._inode or st.st_size < self._size:
            self._inode = st.st_ino
            self._forget()
        changed = (st.st_size, st.st_mtime_ns) != (self._size, self._mtime_ns)
        self._size, self._mtime_ns = st.st_size, st.st_mtime_ns
        with open(self.path, "rb") as fh:
            if self._frame_size is None and not self._learn(fh):
                return None
            frame = self._by_size(fh, st.st_size)
            if frame is not None:
                return frame
            found = self._scan(fh)
            moved = found == 0 and not self._last_still_there(fh)
            if moved or (found is None and changed):
                self._forget()  # rewritten in place: start over from the first frame
                if not self._learn(fh):
                    return None
                self._scan(fh)
            return self._last

    def _valid(self, frame: PffFrame | None) -> bool:
        return frame is not None and header_problem(frame.header, self.dp) is None

    def _learn(self, fh: BinaryIO) -> bool:
        """Learn this file's frame size from its first frame; False while that is not readable."""
        fh.seek(0)
        head = fh.read(MAX_HEADER_BYTES + 3 + self.dp.bytes_per_image)
        try:
            first = parse_frame(head, self.dp, file=str(self.path))
        except PffError:
            return False  # e.g. a half-rewritten snapshot: try again on the next call
        if first is None or not self._valid(first):
            return False
        self._first_offset = self._good_offset = first.offset
        self._good_index = 0
        self._frame_size = first.size
        return True

    def _by_size(self, fh: BinaryIO, size: int) -> PffFrame | None:
        """The frame at (n-1)·frame_size if it validates there, else None."""
        assert self._frame_size is not None
        fs = self._frame_size
        n = (size - self._first_offset) // fs
        if n <= 0:
            return None
        offset = self._first_offset + (n - 1) * fs
        fh.seek(offset)
        data = fh.read(size - offset)  # the last slot plus the partial tail: under two frames
        frame = frame_at(data, self.dp, 0, str(self.path))
        if frame is None or frame.offset != 0 or frame.size != fs or not self._valid(frame):
            return None
        if self._valid(frame_at(data, self.dp, fs, str(self.path))):
            return None  # later frames are narrower: the slot frame is not the last one
        frame = PffFrame(self.dp, frame.header, frame.header_json, frame.pixels, n - 1, offset)
        self._last = frame
        self._good_offset, self._good_index = frame.end, frame.index + 1
        return frame

    def _last_still_there(self, fh: BinaryIO) -> bool:
        """Whether the frame reported last is still at its offset (a same-size in-place rewrite
        with other header widths can leave nothing new at the last good offset)."""
        last = self._last
        if last is None:
            return True
        fh.seek(last.offset)
        return fh.read(last.size) == last.header_json + HEADER_END + last.pixels

    def _scan(self, fh: BinaryIO) -> int | None:
        """Read frames from the last good offset to the first incomplete one; returns how many,
        or None when the bytes at the last good offset are not a frame (the file changed)."""
        base = self._good_offset
        fh.seek(base)
        data = fh.read()
        pos = 0
        found = 0
        while True:
            try:
                frame = parse_frame(data, self.dp, offset=pos, file=str(self.path))
            except PffError:
                frame = None
                if pos == 0:
                    return None
            if frame is None or not self._valid(frame):
                if frame is not None and pos == 0:
                    return None
                break
            self._last = PffFrame(
                self.dp,
                frame.header,
                frame.header_json,
                frame.pixels,
                self._good_index,
                base + frame.offset,
            )
            self._good_offset = base + frame.end
            self._good_index += 1
            pos = frame.end
            found += 1
        return found
