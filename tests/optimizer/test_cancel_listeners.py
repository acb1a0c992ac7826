"""CancelToken.on_cancel: how a job running elsewhere (a Ray task) hears of its cancel."""

from __future__ import annotations

import threading

from optimizer_svc.cancel import CancelToken


def test_a_listener_is_called_once_with_the_first_reason_set() -> None:
    token = CancelToken()
    seen: list[str] = []
    token.on_cancel(lambda: seen.append(token.reason))
    token.cancel("first")
    token.cancel("second")  # the first reason wins; the listener is not called again
    assert seen == ["first"] and token.reason == "first"


def test_a_listener_registered_after_the_cancel_is_called_at_once() -> None:
    token = CancelToken()
    token.cancel("early", budget="max_lm_calls")
    seen: list[str] = []
    token.on_cancel(lambda: seen.append(token.budget))
    assert seen == ["max_lm_calls"]


def test_an_unregistered_listener_is_not_called() -> None:
    token = CancelToken()
    seen: list[int] = []
    unregister = token.on_cancel(lambda: seen.append(1))
    token.on_cancel(lambda: seen.append(2))
    unregister()
    unregister()  # twice is harmless
    token.cancel()
    assert seen == [2]


def test_a_listener_may_use_the_token_it_was_called_from() -> None:
    # called outside the token's lock (not reentrant): a listener that cancels or registers
    # on the same token, as a Ray cancel racing a second CancelJob may, does not deadlock
    token = CancelToken()
    done = threading.Event()

    def listener() -> None:
        token.cancel("again")
        token.on_cancel(lambda: None)
        done.set()

    token.on_cancel(listener)
    thread = threading.Thread(target=token.cancel, args=("from another thread",))
    thread.start()
    thread.join(10)
    assert not thread.is_alive() and done.is_set()
