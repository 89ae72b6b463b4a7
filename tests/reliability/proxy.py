"""A TCP proxy on loopback between the workers and the source database, for the reliability suite to
cut, stall or refuse the source's connections the way a network does (README "Reliability").

Every accepted connection is forwarded to the target by two pump threads. :meth:`TcpProxy.cut_after`
arms a cut: once that many more bytes went from the server to the client, every open connection is
reset (RST: the client sees a lost connection mid-read); :meth:`refuse` closes the listening socket
so new connections are refused until :meth:`accept` reopens it on the same port; :meth:`stall`
stops forwarding for a while without closing anything (a read then waits for its ``read_timeout``).
"""

from __future__ import annotations

import socket
import struct
import threading
import time


class TcpProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.host = "127.0.0.1"
        self._lock = threading.Lock()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._cut_budget: int | None = None
        self._stalled_until = 0.0
        self.cuts = 0  # connections reset
        self.server_bytes = 0  # bytes forwarded from the server to clients
        self._listener: socket.socket | None = None
        self.port = self._listen(0)

    # -- controls ---------------------------------------------------------------------------------
    def cut_after(self, server_bytes: int) -> None:
        """Reset every open connection once ``server_bytes`` more bytes went to clients."""
        with self._lock:
            self._cut_budget = server_bytes

    @property
    def cut_pending(self) -> bool:
        return self._cut_budget is not None

    def cut_now(self) -> int:
        """Reset every open connection; how many there were."""
        with self._lock:
            self._cut_budget = None
            pairs, self._pairs = self._pairs, []
        for pair in pairs:
            for sock in pair:
                _reset(sock)
        self.cuts += len(pairs)
        return len(pairs)

    def stall(self, seconds: float) -> None:
        """Forward nothing for ``seconds`` (connections stay open)."""
        self._stalled_until = time.monotonic() + seconds

    def refuse(self) -> None:
        """Refuse new connections (the port closed) and reset the open ones: the source is gone."""
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        self.cut_now()

    def accept(self) -> None:
        """Listen again on the same port."""
        if self._listener is None:
            self._listen(self.port)

    def close(self) -> None:
        self.refuse()

    # -- forwarding -------------------------------------------------------------------------------
    def _listen(self, port: int) -> int:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept_loop, args=(listener,), daemon=True).start()
        return listener.getsockname()[1]

    def _accept_loop(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:  # closed by refuse()
                return
            try:
                server = socket.create_connection(self.target, timeout=10)
                server.settimeout(None)
            except OSError:
                _reset(client)
                continue
            with self._lock:
                self._pairs.append((client, server))
            threading.Thread(target=self._pump, args=(client, server, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, True), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, to_client: bool) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                while time.monotonic() < self._stalled_until:
                    time.sleep(0.05)
                if to_client and self._spend(len(data)):
                    self.cut_now()
                    return
                sink.sendall(data)
        except OSError:
            pass
        for sock in (source, sink):  # one side ended: end the other
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _spend(self, n: int) -> bool:
        with self._lock:
            self.server_bytes += n
            if self._cut_budget is None:
                return False
            self._cut_budget -= n
            return self._cut_budget <= 0


def _reset(sock: socket.socket) -> None:
    """Close with RST rather than FIN: what a dropped route or a restarted server looks like."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
    except OSError:
        pass
