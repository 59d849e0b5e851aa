"""The demo's own ports: a port taken without anything serving on it (another connection's end,
a socket bound but not listening) is not taken for free. A demo once picked such a port for the
sandbox's SMTP server, which then could not start."""

from __future__ import annotations

import socket

from bss.tools.demo import _free_near
from bss.tools.processes import can_bind, port_in_use


def test_a_port_bound_but_not_served_is_skipped():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))  # bound, not listening: nothing answers on it
        port = taken.getsockname()[1]
        assert not port_in_use(port)  # what the demo used to look at alone
        assert not can_bind(port)
        assert _free_near(port) > port


def test_a_served_port_is_skipped_and_a_free_one_is_taken():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert port_in_use(port) and not can_bind(port)
        assert _free_near(port) > port
    assert can_bind(port)
    assert _free_near(port) == port


def test_a_port_whose_server_just_stopped_is_free_again():
    # A demo restarted on its port: the stopped server's connections linger (TIME_WAIT)
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        accepted, _ = server.accept()
        accepted.close()  # the server's end closes first: it is the one left in TIME_WAIT
        client.close()
    assert can_bind(port)
