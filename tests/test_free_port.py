"""streams.local.free_port: a listening port outside the range client sockets are given."""

from __future__ import annotations

import socket

from streams.local import _ephemeral_low, free_port


def test_a_free_port_is_below_the_ephemeral_range_and_bindable() -> None:
    """Ports from bind(0) are ephemeral: a Kafka or Redis client connection could take one before
    the server that was to listen on it binds (a CI run failed with "address already in use")."""
    for _ in range(20):
        port = free_port()
        assert 1024 <= port < _ephemeral_low()
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", port))
            s.listen()


def test_a_port_in_use_is_not_handed_out() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        held.bind(("127.0.0.1", free_port()))
        held.listen()
        taken = held.getsockname()[1]
        assert all(free_port() != taken for _ in range(200))
