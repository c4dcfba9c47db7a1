"""Training and tagging release the GIL; Ctrl-C stops training cleanly."""

import _thread
import signal
import sys
import threading
import time

import pytest

import septa
from conftest import features, generate


@pytest.fixture(scope="module")
def big():
    sentences, labels = generate(1500, seed=7)
    return features(sentences), labels


@pytest.fixture
def no_preemption():
    # With a huge switch interval Python never preempts the main thread: the other thread runs
    # only while the main thread has released the GIL (as septa does around training).
    old = sys.getswitchinterval()
    sys.setswitchinterval(100.0)
    yield
    sys.setswitchinterval(old)


def test_second_thread_progresses_during_fit(big, no_preemption):
    X, y = big
    counter = [0]
    stop = threading.Event()

    def count():
        while not stop.is_set():
            counter[0] += 1
            time.sleep(0.0002)  # releases the GIL, so callbacks can take it

    seen = []
    thread = threading.Thread(target=count, daemon=True)
    thread.start()
    try:
        crf = septa.CRF(c2=0.1, max_iterations=40, period=1000, delta=0.0, epsilon=0.0)
        crf.fit(X, y, callback=lambda info: seen.append(counter[0]))
    finally:
        stop.set()
        thread.join()
    assert len(seen) >= 10
    # Between the first and the last iteration only C++ ran on the main thread; the counter
    # could advance only if the GIL was released meanwhile.
    assert seen[-1] - seen[0] >= 5, seen


@pytest.fixture
def python_sigint_handler():
    # A process started in the background by a non-interactive shell inherits SIGINT ignored,
    # and Python then leaves it ignored: interrupt_main() would do nothing. Ctrl-C at a terminal
    # reaches Python's default handler, which this test needs.
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, old)


def test_ctrl_c_stops_training_cleanly(big, python_sigint_handler):
    X, y = big

    def interrupt(info):
        if info["iteration"] == 3:
            _thread.interrupt_main()  # as if Ctrl-C were pressed now

    crf = septa.CRF(c2=0.1, max_iterations=500, period=1000, delta=0.0, epsilon=0.0)
    with pytest.raises(KeyboardInterrupt):
        crf.fit(X[:200], y[:200], callback=interrupt)
    assert crf.training_log_["cancelled"]
    assert crf.training_log_["iterations"] < 10
    # Training stopped cleanly: the best model so far is kept and usable.
    assert len(crf.predict(X[:3])) == 3


def test_exception_in_callback_stops_training(big):
    X, y = big

    def fail(info):
        raise RuntimeError("stop here")

    crf = septa.CRF(c2=0.1, max_iterations=500)
    with pytest.raises(RuntimeError, match="stop here"):
        crf.fit(X[:100], y[:100], callback=fail)
    assert crf.training_log_["iterations"] <= 2


def test_threads_tag_concurrently(big):
    X, y = big
    crf = septa.CRF(c2=0.1, max_iterations=30).fit(X[:200], y[:200])
    expected = crf.predict(X[:300])
    results = [None] * 4

    def work(i):
        results[i] = crf.predict(X[:300])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r == expected for r in results)
