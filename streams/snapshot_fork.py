"""Engine snapshots pickled in a forked child, so the stream does not stop while they are made.

Pickling a pilot's engine takes about a second and grows with its accounts; done in the monitor's thread it
paused every batch behind it, and the event -> metric latency's p99 was the snapshot's duration (issue 18).
Copying the state first would cost as much as pickling it: its dicts, deques and windows are mutated by the
next batch. ``fork`` gives the child the engine exactly as it is at that instant (copy-on-write: a page is
copied only when one side writes it), the monitor goes on with the next batch at once, and the child
pickles and compresses (``engine_snapshots.dump``, the same bytes a snapshot always had) and writes the
blob into a pipe. The fork itself takes milliseconds; the child costs CPU and, at most, a second copy of
the engine's pages while it runs.

Called from the monitor's thread between batches (the only thread that changes engines), so the state is
one the monitor was in. The child touches nothing but the engine and the pipe and leaves with ``_exit``:
no atexit handler, no flush of the parent's buffers or sockets. Where ``fork`` does not exist the blob is
made in place, as before."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import threading
import time
import zlib

from sandboxwatch.rules_engine.engine import Engine
from sandboxwatch.streams.engine_snapshots import dump

# A child still pickling after this long is stuck (a healthy one takes seconds): it is killed and the
# snapshot made in place, so a stuck child can never stop snapshots (and so offset commits) for good.
CHILD_TIMEOUT_SECONDS = 600.0
_READ = 1 << 20


class SnapshotChildError(RuntimeError):
    """The child did not deliver a whole blob (killed, crashed, or timed out)."""


class PendingDump:
    """The blob of one engine as it was when this was made; ``result`` waits for it."""

    def __init__(self, engine: Engine, forked: bool = True) -> None:
        self._engine: Engine | None = None
        self._blob: bytes | None = None
        self._pid = 0
        self._fd = -1
        self._lock = threading.Lock()
        if not forked or not hasattr(os, "fork"):
            self._blob = dump(engine)
            return
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: never returns
            _child(engine, read, write)
        os.close(write)
        self._pid, self._fd = pid, read
        # Kept only to make the blob in place if the child fails: the parent's engine has moved on by then,
        # which is still a state the monitor was in, covering at least the offsets the snapshot claims.
        self._engine = engine

    @property
    def forked(self) -> bool:
        return self._pid != 0

    def result(self, timeout: float = CHILD_TIMEOUT_SECONDS) -> bytes:
        """The blob (blocking; run it off the event loop and off the monitor's thread)."""
        if self._blob is not None:
            return self._blob
        try:
            return self._read(timeout)
        finally:
            self._reap()

    def _read(self, timeout: float) -> bytes:
        parts: list[bytes] = []
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            ready = select.select([self._fd], [], [], max(left, 0))[0] if left > 0 else []
            if not ready:
                raise SnapshotChildError(f"the snapshot child {self._pid} did not finish in {timeout:.0f} s")
            part = os.read(self._fd, _READ)
            if not part:
                break
            parts.append(part)
        status = self._reap()
        blob = b"".join(parts)
        if status is None and _whole(blob):
            return blob  # reaped by someone else (a SIGCHLD handler): the blob itself shows it is whole
        if status != 0:
            raise SnapshotChildError(f"the snapshot child {self._pid} ended with status {status}")
        return blob

    def _reap(self) -> int | None:
        """Kill (if still running) and reap the child, close the pipe; the child's exit code, once (None if
        already reaped, here or elsewhere)."""
        with self._lock:
            if self._pid == 0 or self._fd < 0:
                return None
            pid, fd = self._pid, self._fd
            self._fd = -1
            os.close(fd)  # a child still writing gets EPIPE and ends
            try:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done == 0:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                    done, status = os.waitpid(pid, 0)
            except ChildProcessError:
                return None
            return os.waitstatus_to_exitcode(status)

    def cancel(self) -> None:
        """Stop the child and release it (a cancelled snapshot, a stopping worker)."""
        self._reap()

    def in_place(self) -> bytes:
        """The blob made in this process, when the child failed."""
        assert self._engine is not None
        return dump(self._engine)


def _whole(blob: bytes) -> bool:
    """Whether a blob is a complete zlib stream (a child killed mid-write leaves a truncated one)."""
    inflater = zlib.decompressobj()
    try:
        inflater.decompress(blob)
    except zlib.error:
        return False
    return inflater.eof


def _child(engine: Engine, read: int, write: int) -> None:
    code = 1
    try:
        os.close(read)
        # The parent's signal handlers write to its event loop's wakeup socket, which the child shares: a
        # signal to the child must end the child, never wake or stop the parent.
        with contextlib.suppress(ValueError, OSError):
            signal.set_wakeup_fd(-1)
        for number in (signal.SIGTERM, signal.SIGINT, signal.SIGPIPE):
            with contextlib.suppress(ValueError, OSError):
                signal.signal(number, signal.SIG_DFL)
        view = memoryview(dump(engine))
        while view:
            view = view[os.write(write, view) :]
        code = 0
    finally:
        os._exit(code)


def start_dump(engine: Engine) -> PendingDump:
    return PendingDump(engine)
