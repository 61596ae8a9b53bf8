"""The failed-login back-off state machine, with a hand-driven clock."""

from __future__ import annotations

import pytest

from singbox_agent.mgmt.login_guard import BackoffPolicy, LoginGuard, Refusal, source_key


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def guard(**policy: object) -> tuple[LoginGuard, Clock]:
    clock = Clock()
    return LoginGuard(BackoffPolicy(**policy), clock=clock), clock  # type: ignore[arg-type]


def test_free_failures_then_doubling_delays_up_to_the_maximum() -> None:
    g, clock = guard(free_failures=2, initial_delay=1.0, maximum_delay=8.0)
    delays = []
    for _ in range(8):
        assert g.check("192.0.2.1", "admin") is None
        delays.append(g.failed("192.0.2.1", "admin").blocked_for)
        clock.now += 100  # past every delay, within forget-after
    assert delays == [0, 0, 1, 2, 4, 8, 8, 8]


def test_a_blocked_source_is_refused_even_with_the_right_password_until_the_delay_is_over() -> None:
    g, clock = guard(free_failures=1, initial_delay=10.0)
    g.failed("192.0.2.1", "admin")
    g.failed("192.0.2.1", "admin")
    refusal = g.check("192.0.2.1", "admin")
    assert refusal == Refusal("source", 10.0)
    assert g.check("192.0.2.1", "someone-else") == Refusal("source", 10.0)  # the address, whoever it names
    clock.now += 9.5
    assert g.check("192.0.2.1", "admin") == Refusal("source", 0.5)
    clock.now += 0.5
    assert g.check("192.0.2.1", "admin") is None


def test_other_sources_and_other_users_are_never_held_back() -> None:
    g, _ = guard(free_failures=0, initial_delay=60.0)
    for _ in range(5):
        g.failed("192.0.2.1", "admin")
    assert g.check("192.0.2.2", "operator") is None  # another source, another user
    assert g.check("192.0.2.2", None) is None
    assert g.check("192.0.2.2", "admin") == Refusal("user", 60.0)  # the user, from anywhere (doubling capped)


def test_the_users_own_address_keeps_working_while_others_guess_its_password() -> None:
    g, clock = guard(free_failures=0, initial_delay=30.0)
    g.succeeded("192.0.2.9", "admin")  # the real admin, earlier
    for i in range(10):
        g.failed(f"198.51.100.{i}", "admin")  # a guesser spread over many addresses
    assert g.check("192.0.2.9", "admin") is None
    assert isinstance(g.check("192.0.2.10", "admin"), Refusal)
    clock.now += 901  # trust lasts forget-after
    g.failed("198.51.100.99", "admin")
    assert isinstance(g.check("192.0.2.9", "admin"), Refusal)


def test_a_trusted_pair_is_never_held_back_but_its_failures_count() -> None:
    g, _ = guard(free_failures=0, initial_delay=30.0)
    g.succeeded("192.0.2.9", "monitor")
    for _ in range(3):
        g.failed("192.0.2.9", "backup")  # a job on the same host with a stale password
    assert g.check("192.0.2.9", "monitor") is None
    assert g.check("192.0.2.9", "backup") == Refusal("source", 60.0)  # 30 s doubling, capped at 60 s
    assert isinstance(g.check("192.0.2.10", "backup"), Refusal)


def test_success_resets_the_source_but_not_the_user() -> None:
    g, _ = guard(free_failures=1, initial_delay=5.0)
    g.failed("192.0.2.1", "a")
    g.succeeded("192.0.2.1", "b")
    assert g.failed("192.0.2.1", "c").source_failures == 1
    g.failed("192.0.2.2", "a")
    assert g.failed("192.0.2.3", "a").user_failures == 3


def test_failures_are_forgotten_after_a_quiet_period() -> None:
    g, clock = guard(free_failures=1, initial_delay=1.0, forget_after=60.0)
    for _ in range(3):
        g.failed("192.0.2.1", "admin")
    clock.now += 61
    assert g.check("192.0.2.1", "admin") is None
    assert g.failed("192.0.2.1", "admin").source_failures == 1


def test_disabled_never_blocks() -> None:
    g, _ = guard(enabled=False)
    for _ in range(50):
        assert g.failed("192.0.2.1", "admin").blocked_for == 0
    assert g.check("192.0.2.1", "admin") is None


def test_malformed_credentials_count_against_the_source_only() -> None:
    g, _ = guard(free_failures=0, initial_delay=5.0)
    failure = g.failed("192.0.2.1", None)
    assert (failure.source_failures, failure.user_failures, failure.blocked_for) == (1, 0, 5.0)
    assert g.check("192.0.2.2", "admin") is None


def test_tables_are_bounded() -> None:
    g = LoginGuard(BackoffPolicy(free_failures=0), clock=Clock(), max_entries=100)
    for i in range(1000):
        g.failed(f"10.0.{i // 256}.{i % 256}", f"user{i}")
        g.succeeded(f"10.1.{i // 256}.{i % 256}", f"user{i}")
    assert len(g._sources) <= 100 and len(g._users) <= 100 and len(g._trusted) <= 100


@pytest.mark.parametrize("address,key", [
    ("192.0.2.1", "192.0.2.1"),
    ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
    ("2001:db8:1:2::ffff", "2001:db8:1:2::/64"),
    ("::ffff:192.0.2.7", "192.0.2.7"),
    ("fe80::1%eth0", "fe80::/64"),
    ("not-an-address", "not-an-address"),
])
def test_source_keys(address: str, key: str) -> None:
    assert source_key(address) == key
