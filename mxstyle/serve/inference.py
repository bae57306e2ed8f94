"""A bounded pool of inference workers with a bounded queue, awaited from the event loop.

Inference runs in worker threads, never on the event loop, so the service keeps answering
(``/healthz``, ``/metrics``, the 503s) while every worker is busy. At most ``workers + max_queue``
jobs are admitted; the next one is refused with :class:`Busy` at once instead of waiting
unboundedly. A job that outlives its request's timeout, or whose client went away, is cancelled
if it has not started; one that has started cannot be interrupted, so it keeps its place in the
count until it ends: abandoned work never lets more jobs in than the pool can run.
"""
import asyncio
import concurrent.futures
import math
import threading
import time

__all__ = ["InferencePool", "Busy", "TimedOut", "ClientGone"]


class Busy(Exception):
    """Every worker is busy and the queue is full; ``retry_after`` is a hint in seconds."""

    def __init__(self, retry_after):
        super().__init__(f"the server is busy; retry in {retry_after} s")
        self.retry_after = retry_after


class TimedOut(Exception):
    """The job did not finish within the request's timeout."""


class ClientGone(Exception):
    """The client disconnected while its job was queued or running."""


class InferencePool:
    """``workers`` threads and room for ``max_queue`` waiting jobs.

    ``submit(fn)`` (any thread) admits a job or raises :class:`Busy`; ``await run(fn, timeout)``
    (the event loop) admits it, waits for it and raises :class:`TimedOut` or :class:`ClientGone`.
    """

    def __init__(self, workers, max_queue, *, name="mxstyle-infer"):
        self.workers, self.max_queue = int(workers), int(max_queue)
        self.capacity = self.workers + self.max_queue
        self._executor = concurrent.futures.ThreadPoolExecutor(self.workers, thread_name_prefix=name)
        self._lock = threading.Lock()
        self._admitted = 0  # queued + running, including jobs whose request gave up on them
        self._running = 0
        self._mean_seconds = None  # exponential average of a job's duration, for Retry-After
        self.counts = {"done": 0, "failed": 0, "cancelled": 0, "rejected": 0, "timed_out": 0, "gone": 0}

    # ------------------------------------------------------------------ state

    @property
    def running(self):
        return self._running

    @property
    def admitted(self):
        """Jobs queued or running (also those whose request already gave up on them)."""
        return self._admitted

    @property
    def queued(self):
        with self._lock:
            return self._admitted - self._running

    @property
    def full(self):
        return self._admitted >= self.capacity

    def retry_after(self):
        """Seconds until a place is likely free: the queue ahead, at the measured job time."""
        with self._lock:
            ahead = self._admitted - self._running + 1
            mean = self._mean_seconds or 1.0
        return int(min(60, max(1, math.ceil(ahead * mean / self.workers))))

    # ------------------------------------------------------------------ jobs

    def submit(self, fn):
        """Admit ``fn`` (called with no arguments in a worker); its ``concurrent.futures.Future``.
        Raises :class:`Busy` when ``workers + max_queue`` jobs are already admitted."""
        with self._lock:
            if self._admitted >= self.capacity:
                self.counts["rejected"] += 1
                busy = True
            else:
                self._admitted += 1
                busy = False
        if busy:
            raise Busy(self.retry_after())
        try:
            future = self._executor.submit(self._call, fn)
        except RuntimeError:  # shut down
            with self._lock:
                self._admitted -= 1
            raise Busy(self.retry_after()) from None
        future.add_done_callback(self._release)
        return future

    def _call(self, fn):
        with self._lock:
            self._running += 1
        started = time.perf_counter()
        try:
            return fn()
        finally:
            seconds = time.perf_counter() - started
            with self._lock:
                self._running -= 1
                self._mean_seconds = seconds if self._mean_seconds is None else \
                    0.8 * self._mean_seconds + 0.2 * seconds

    def _release(self, future):
        with self._lock:
            self._admitted -= 1
            if future.cancelled():
                self.counts["cancelled"] += 1
            elif future.exception() is not None:
                self.counts["failed"] += 1
            else:
                self.counts["done"] += 1

    async def run(self, fn, timeout, *, disconnected=None):
        """Run ``fn`` in a worker and return its result (or raise its exception).

        ``timeout``: seconds from admission (queue wait included); ``disconnected``: an awaitable
        that completes when the client goes away. Raises :class:`Busy`, :class:`TimedOut` or
        :class:`ClientGone`; a job that has not started by then never runs.
        """
        job = self.submit(fn)
        waiting = asyncio.wrap_future(job)
        waiting.add_done_callback(_retrieve)  # the result of a job given up on is dropped quietly
        watcher = asyncio.ensure_future(disconnected) if disconnected is not None else None
        try:
            done, _ = await asyncio.wait({waiting} | ({watcher} if watcher else set()), timeout=timeout,
                                         return_when=asyncio.FIRST_COMPLETED)
        finally:
            if watcher is not None:
                watcher.cancel()
        if waiting in done:
            if waiting.cancelled():  # the pool was shut down before the job started
                raise Busy(1)
            return waiting.result()
        job.cancel()
        with self._lock:
            self.counts["gone" if watcher in done else "timed_out"] += 1
        if watcher is not None and watcher in done:
            raise ClientGone()
        raise TimedOut()

    def shutdown(self):
        """Stop taking jobs; queued ones are cancelled, running ones finish in the background."""
        self._executor.shutdown(wait=False, cancel_futures=True)


def _retrieve(future):
    if not future.cancelled():
        future.exception()
