"""A TCP proxy on loopback that adds a network's round trip to every request.

The embedded servers answer over loopback in microseconds, where an object store across a
network takes milliseconds to answer anything: the cost that batching and requests in
flight save. :class:`DelayingProxy` stands between a client and a server and holds every
byte the client sends for ``delay`` seconds before passing it on (what comes back passes at
once), so each request's answer arrives one round trip later than it would; requests on
other connections are delayed alongside, not behind it, as on a network.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any

LOOPBACK = "127.0.0.1"
CHUNK = 64 * 1024


class DelayingProxy:
    """Listens on a free loopback port and forwards to ``target_port``, ``delay`` late.

    :param target_port: the server's port on loopback.
    :param delay: seconds each byte from the client waits before it is forwarded.
    """

    def __init__(self, target_port: int, delay: float) -> None:
        self.target_port = target_port
        self.delay = delay
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.base_events.Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> int:
        """Start forwarding in a thread of its own; :return: the port to connect to."""
        ready = threading.Event()

        def serve() -> None:
            asyncio.set_event_loop(self._loop)
            self._server = self._loop.run_until_complete(
                asyncio.start_server(self._connect, LOOPBACK, 0)
            )
            self.port = self._server.sockets[0].getsockname()[1]
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=serve, name="bench-delaying-proxy", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the delaying proxy did not start")
        return self.port

    def stop(self) -> None:
        if self._thread is None:
            return

        def close() -> None:
            if self._server is not None:
                self._server.close()
            self._loop.stop()

        self._loop.call_soon_threadsafe(close)
        self._thread.join(timeout=10)
        self._thread = None

    async def _connect(self, client_in: asyncio.StreamReader, client_out: Any) -> None:
        try:
            server_in, server_out = await asyncio.open_connection(LOOPBACK, self.target_port)
        except OSError:
            client_out.close()
            return
        await asyncio.gather(
            self._forward(client_in, server_out, self.delay),
            self._forward(server_in, client_out, 0.0),
            return_exceptions=True,
        )

    async def _forward(self, source: asyncio.StreamReader, sink: Any, delay: float) -> None:
        """Copy ``source`` to ``sink``, each chunk ``delay`` seconds after it arrived (in
        order, and a chunk's wait does not add to the next one's)."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes | None]] = asyncio.Queue()

        async def deliver() -> None:
            try:
                while True:
                    due, chunk = await queue.get()
                    if chunk is None:
                        return
                    wait = due - loop.time()
                    if wait > 0:
                        await asyncio.sleep(wait)
                    sink.write(chunk)
                    await sink.drain()
            finally:
                with contextlib.suppress(OSError, RuntimeError):
                    sink.close()

        delivering = asyncio.create_task(deliver())
        try:
            while chunk := await source.read(CHUNK):
                queue.put_nowait((loop.time() + delay, chunk))
        except OSError:
            pass
        finally:
            queue.put_nowait((0.0, None))
            await delivering
