"""Loopback helpers shared by the embedded servers: free ports and reachability checks."""

from __future__ import annotations

import socket
import time

#: Every embedded server listens on this address only.
LOOPBACK = "127.0.0.1"


def free_port(host: str = LOOPBACK) -> int:
    """Ask the kernel for a TCP port that is free right now on ``host``.

    The port is released before returning, so a server binding it later can still lose a
    race; callers that cannot bind port 0 themselves retry on "address in use".

    :param host: the address to probe.
    :return: a port number.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_open(port: int, host: str = LOOPBACK, timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections on ``host:port``.

    :param port: the port to try.
    :param host: the address to try.
    :param timeout: seconds to wait for the connection.
    :return: True when a connection could be opened.
    """
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for_port(port: int, host: str = LOOPBACK, timeout: float = 10.0) -> bool:
    """Poll ``host:port`` until it accepts connections or ``timeout`` seconds pass.

    :param port: the port to wait for.
    :param host: the address to wait for.
    :param timeout: seconds to wait in total.
    :return: True when the port became reachable in time.
    """
    deadline = time.monotonic() + timeout
    while True:
        if port_open(port, host):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
