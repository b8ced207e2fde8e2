"""A TCP proxy in front of a real redis-server that drops a client's connection the moment it
sends a chosen command: a Redis outage at an exact point of a worker's protocol, repeatably."""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType


class CuttingProxy:
    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = 0
        self.cut_on: bytes | None = None  # armed: the next chunk naming this command is cut
        self.cuts = 0
        self.cut = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def arm(self, command: str) -> None:
        """Cut the first connection that sends `command` (RESP: the name as a bulk string)."""
        name = command.upper().encode()
        self.cut_on = b"$%d\r\n%s\r\n" % (len(name), name)
        self.cut.clear()

    async def __aenter__(self) -> CuttingProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._pipes):
            task.cancel()
        for task in list(self._pipes):
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await task
        await self._server.wait_closed()

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        up_r, up_w = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        upward = asyncio.create_task(self._pump(client_r, up_w, check=True))
        downward = asyncio.create_task(self._pump(up_r, client_w, check=False))
        self._pipes |= {upward, downward}
        try:
            await asyncio.wait({upward, downward}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (upward, downward):
                task.cancel()
                self._pipes.discard(task)
            for writer in (up_w, client_w):
                writer.close()

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, check: bool
    ) -> None:
        while data := await reader.read(65536):
            if check and self.cut_on is not None and self.cut_on in data.upper():
                self.cut_on = None
                self.cuts += 1
                self.cut.set()
                return  # the connection drops before Redis sees the command
            writer.write(data)
            await writer.drain()
