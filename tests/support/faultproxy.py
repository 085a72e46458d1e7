"""A TCP proxy on 127.0.0.1 in front of the real SeaweedFS S3 port, that breaks connections on
purpose: deterministic "connection reset mid-read" / "upload cut half-way" for tests, without
mocking S3 (every request still goes to the real server).

    proxy = FaultProxy(("127.0.0.1", s3_port)); endpoint = proxy.endpoint
    proxy.arm(down_after=5_000_000, faults=1)   # RST the connection carrying byte 5,000,001 down
    proxy.arm(up_after=20_000_000, faults=99)   # RST uploads every 20 MB (an upload that fails)
    proxy.disarm(); proxy.close()               # close: new connections refused
"""

from __future__ import annotations

import socket
import struct
import threading
import time


class FaultProxy:
    """``arm(down_after=N)``: the connection that carries the byte past N (server->client,
    counted over all connections since arming, pooled keep-alive ones included) is reset;
    then counting starts again, ``faults`` times in all. ``up_after``: the same client->server."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self._lock = threading.Lock()
        self.limits: dict[str, int | None] = {"down": None, "up": None}
        self.counted = {"down": 0, "up": 0}
        self.faults_left = 0
        self.faults_done = 0
        self.connections = 0
        self.rate_bps: float | None = None  # emulate a slower link: bytes/s server->client per connection
        self.latency_s = 0.0  # ... and a delay before each request is passed on (first-byte latency)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._closed = False
        self._socks: set[socket.socket] = set()
        threading.Thread(target=self._accept, daemon=True).start()

    def arm(self, *, down_after: int | None = None, up_after: int | None = None, faults: int = 1) -> None:
        with self._lock:
            self.limits = {"down": down_after, "up": up_after}
            self.counted = {"down": 0, "up": 0}
            self.faults_left, self.faults_done = faults, 0

    def disarm(self) -> None:
        self.arm(faults=0)

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                _rst(client)
                continue
            with self._lock:
                self.connections += 1
                self._socks.update((client, upstream))
            threading.Thread(target=self._relay, args=(client, upstream), daemon=True).start()

    def _allowance(self, direction: str, n: int) -> int | None:
        """How many of the next ``n`` bytes may pass before a reset, or None: all of them."""
        with self._lock:
            limit = self.limits[direction]
            if limit is None or self.faults_left <= 0:
                return None
            if self.counted[direction] + n <= limit:
                self.counted[direction] += n
                return None
            allowed = limit - self.counted[direction]
            self.counted[direction] = 0
            self.faults_left -= 1
            self.faults_done += 1
            return allowed

    def _relay(self, client: socket.socket, upstream: socket.socket) -> None:
        """One thread per connection, select() over both ends: closing with SO_LINGER 0 here
        really sends RST (a socket another thread is blocked in recv() on would not be released)."""
        import selectors

        peer = {client: (upstream, "up"), upstream: (client, "down")}
        sel = selectors.DefaultSelector()
        for sock in peer:
            sel.register(sock, selectors.EVENT_READ)
        open_ends = 2
        try:
            while open_ends and not self._closed:
                for key, _ in sel.select(timeout=0.5):
                    src = key.fileobj
                    dst, direction = peer[src]
                    data = src.recv(65536)
                    if not data:
                        sel.unregister(src)
                        open_ends -= 1
                        dst.shutdown(socket.SHUT_WR)
                        continue
                    if direction == "up" and self.latency_s:
                        time.sleep(self.latency_s)
                    elif direction == "down" and self.rate_bps:
                        time.sleep(len(data) / self.rate_bps)
                    allowed = self._allowance(direction, len(data))
                    if allowed is not None:
                        if allowed > 0:
                            dst.sendall(data[:allowed])
                        _rst(client)
                        _rst(upstream)
                        return
                    dst.sendall(data)
            if not self._closed:
                client.close()
                upstream.close()
                return
        except OSError:
            pass
        finally:
            sel.close()
        _rst(client)
        _rst(upstream)

    def close(self) -> None:
        """Stop listening (new connections: refused) and reset every open connection."""
        self._closed = True
        self._listener.close()
        with self._lock:
            for s in self._socks:
                _rst(s)


def _rst(sock: socket.socket) -> None:
    """Close with RST (SO_LINGER 0): the peer sees 'connection reset by peer'."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass
