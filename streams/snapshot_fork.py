"""Engine snapshots pickled in a forked child, so the stream does not stop while they are made (issue 18).

Pickling a pilot's engines takes about a second and grows with its accounts; done by the worker it paused
every batch behind it, and the event -> metric latency's p99 was the snapshot's duration. Copying the state
first would cost as much as pickling it: its dicts, deques and windows are mutated by the next batch.
``fork`` gives the child the engines exactly as they are at that instant (copy-on-write: a page is copied
only when one side writes it), the worker goes on with the next batch at once, and the child pickles and
compresses each engine (``engine_snapshots.dump``, the same bytes a snapshot always had) into a pipe. The
fork takes milliseconds to a few hundred (it copies the page tables of the whole process); the child costs
a core, at a lower priority than the stream's, and, at most, a second copy of the engines' pages. While it
runs, the parent's collector leaves the objects of the fork alone (``gc.freeze``): a full collection
would write to each of them and so copy every page of the heap. One child at a time per process.

The parent has threads (the monitor's, chdb's, clickhouse-driver's, the metrics server's): the child holds
only the forking thread and none of their locks, so it touches nothing but the engines and the pipe, runs
no garbage collection (no finalizer of a shared socket or file may run in it) and leaves with ``_exit``:
no atexit handler, no flush of the parent's buffers or sockets. Each blob is framed by its length, so a
child killed part way is never taken for a whole snapshot."""

from __future__ import annotations

import contextlib
import gc
import os
import select
import signal
import struct
import threading
import time
from collections.abc import Sequence

from sandboxwatch.rules_engine.engine import Engine
from sandboxwatch.streams.engine_snapshots import dump

# A child still pickling after this long is stuck (a healthy one takes seconds): it is killed and the
# snapshot made in place, so a stuck child can never stop snapshots (and so offset commits) for good.
CHILD_TIMEOUT_SECONDS = 600.0
# The child yields to the stream where they share a core: a snapshot may take longer, a batch may not.
CHILD_NICENESS = 10
_FRAME = struct.Struct(">Q")
_READ = 1 << 20


class SnapshotChildError(RuntimeError):
    """The child did not deliver every blob whole (killed, crashed, or timed out)."""


def can_fork() -> bool:
    return hasattr(os, "fork")


class ForkedDumps:
    """The blobs of ``engines`` as they were when this was made (forked at once; ``OSError`` if the
    system refuses a process); ``result`` waits for them."""

    def __init__(self, engines: Sequence[Engine]) -> None:
        self.count = len(engines)
        # The pipe and the child stay ours until reaped; a reader (result) reaps them itself, so that
        # cancel never closes a descriptor another thread is reading.
        self._lock = threading.Lock()
        self._reading = False
        # The child's CPU time once reaped here: what the snapshot cost the machine (its wall time also
        # counts the waits for a core).
        self.cpu_seconds = 0.0
        read, write = os.pipe()
        # Until the child is reaped the collector leaves the objects of now alone: a full collection in the
        # parent writes to every object's header, and each page written is copied for the child's sake.
        gc.freeze()
        self._frozen = True
        try:
            pid = os.fork()
        except BaseException:
            os.close(read)
            os.close(write)
            self._thaw()
            raise
        if pid == 0:  # the child: never returns
            _child(engines, read, write)
        os.close(write)
        self.pid, self._fd = pid, read

    def result(self, timeout: float = CHILD_TIMEOUT_SECONDS) -> list[bytes]:
        """One blob per engine, in order (blocking: run it off the event loop and the monitor's thread);
        once only."""
        with self._lock:
            if self._fd < 0 or self._reading:
                raise SnapshotChildError(f"the snapshot child {self.pid} was cancelled")
            self._reading = True
        try:
            data = self._read(timeout)
        except OSError as exc:  # the pipe itself failed: as much the child's failure as a crash
            raise SnapshotChildError(f"the snapshot child {self.pid}'s pipe failed: {exc}") from exc
        finally:
            with self._lock:
                status = self._reap()
        blobs = _frames(data)
        if blobs is None or len(blobs) != self.count:
            raise SnapshotChildError(
                f"the snapshot child {self.pid} ended with status {status} after {len(data)} bytes, "
                f"not {self.count} whole snapshots"
            )
        # A status of None: reaped by someone else (a SIGCHLD handler); the frames show the blobs are whole.
        if status not in (0, None):
            raise SnapshotChildError(f"the snapshot child {self.pid} ended with status {status}")
        return blobs

    def _read(self, timeout: float) -> bytes:
        parts: list[bytes] = []
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._fd], [], [], left)[0]:
                raise SnapshotChildError(f"the snapshot child {self.pid} did not finish in {timeout:.0f} s")
            part = os.read(self._fd, _READ)
            if not part:
                return b"".join(parts)
            parts.append(part)

    def _reap(self) -> int | None:
        """With the lock held: kill the child if it still runs, reap it and close the pipe; its exit code,
        once (None if it was already reaped, here or elsewhere)."""
        if self._fd < 0:
            return None
        fd, self._fd = self._fd, -1
        os.close(fd)  # a child still writing gets EPIPE and ends
        self._thaw()
        try:
            done, status, usage = os.wait4(self.pid, os.WNOHANG)
            if done == 0:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, signal.SIGKILL)
                done, status, usage = os.wait4(self.pid, 0)
        except ChildProcessError:
            return None
        self.cpu_seconds = usage.ru_utime + usage.ru_stime
        return os.waitstatus_to_exitcode(status)

    def _thaw(self) -> None:
        if self._frozen:
            self._frozen = False
            gc.unfreeze()

    def cancel(self) -> None:
        """Stop the child (a dropped snapshot, a stopping or failed worker): killed, and reaped here unless
        a reader is waiting for it (which then sees the end of the pipe and reaps it); idempotent."""
        with self._lock:
            if self._fd < 0:
                return
            if not self._reading:
                self._reap()
                return
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)  # not reaped yet (the lock): still our child's pid


def _frames(data: bytes) -> list[bytes] | None:
    """The length-framed blobs of ``data``, or None when the last one is cut short."""
    blobs = []
    at = 0
    while at < len(data):
        if at + _FRAME.size > len(data):
            return None
        (size,) = _FRAME.unpack_from(data, at)
        at += _FRAME.size
        if at + size > len(data):
            return None
        blobs.append(data[at : at + size])
        at += size
    return blobs


def _child(engines: Sequence[Engine], read: int, write: int) -> None:
    code = 1
    try:
        gc.disable()
        os.close(read)
        # Every other descriptor inherited (the metrics port's listening socket, the broker's and the
        # store's connections) is closed: a child still pickling after its parent's kill -9 would hold the
        # metrics port, and the restarted worker would fail to bind it. Closing a copy touches nothing of
        # the parent's (it keeps its own references; no shutdown, no epoll registration is dropped).
        os.closerange(3, write)
        os.closerange(write + 1, os.sysconf("SC_OPEN_MAX"))
        # The parent's signal handlers write to its event loop's wakeup socket, which the child shares: a
        # signal to the child must end the child, never wake or stop the parent.
        with contextlib.suppress(ValueError, OSError):
            signal.set_wakeup_fd(-1)
        for number in (signal.SIGTERM, signal.SIGINT, signal.SIGPIPE):
            with contextlib.suppress(ValueError, OSError):
                signal.signal(number, signal.SIG_DFL)
        with contextlib.suppress(OSError):
            os.nice(CHILD_NICENESS)
        for engine in engines:
            blob = dump(engine)
            view = memoryview(_FRAME.pack(len(blob)) + blob)
            while view:
                view = view[os.write(write, view) :]
        code = 0
    finally:
        os._exit(code)
