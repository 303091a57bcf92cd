"""SQLite writers queue in arrival order: the writer queue's thread lock hands itself to the longest
waiter, never to a newcomer, and the thread holding it may enter again (a unit of work inside another)."""

from __future__ import annotations

import threading
import time

from engine.store.sqlite import FairLock


def _queued(lock: FairLock, count: int) -> None:
    deadline = time.monotonic() + 10
    while len(lock._waiters) < count:
        assert time.monotonic() < deadline, f"{count} threads never queued"
        time.sleep(0.001)


def test_waiting_writers_get_the_lock_in_the_order_they_asked_for_it() -> None:
    lock, order = FairLock(), []

    def writer(n: int) -> None:
        lock.acquire()
        order.append(n)
        lock.release()

    lock.acquire()
    threads = []
    for n in range(8):
        thread = threading.Thread(target=writer, args=(n,))
        thread.start()
        _queued(lock, n + 1)  # each one waits before the next asks
        threads.append(thread)
    lock.release()
    for thread in threads:
        thread.join(10)
    assert order == list(range(8))


def test_a_newcomer_does_not_overtake_a_waiting_writer() -> None:
    lock, order = FairLock(), []
    lock.acquire()
    waiter = threading.Thread(target=lambda: (lock.acquire(), order.append("waiter"), lock.release()))
    waiter.start()
    _queued(lock, 1)
    lock.release()  # handed to the waiter, even though this thread asks again at once
    lock.acquire()
    order.append("newcomer")
    lock.release()
    waiter.join(10)
    assert order == ["waiter", "newcomer"]


def test_the_holder_may_enter_again_and_holds_the_lock_until_its_last_release() -> None:
    lock, got = FairLock(), threading.Event()
    lock.acquire()
    lock.acquire()
    other = threading.Thread(target=lambda: (lock.acquire(), got.set(), lock.release()))
    other.start()
    _queued(lock, 1)
    lock.release()
    assert not got.wait(0.05), "the lock was handed on while its holder was still inside"
    lock.release()
    assert got.wait(10)
    other.join(10)
