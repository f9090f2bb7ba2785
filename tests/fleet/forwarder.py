"""A TCP forwarder: ``python forwarder.py LISTEN_HOST:PORT=TARGET_HOST:PORT ...``.

PostgreSQL and Redis listen on 127.0.0.1 of the root namespace, which no
fleet host can reach; this process listens on the bridge's address and
copies bytes both ways, so the hosts reach them as they would a database
host. It prints a ``ready`` line once every listener is bound and runs until
SIGTERM. It is its own process so that the test's event loop never carries
the fleet's database traffic.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys

_CHUNK = 64 * 1024


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(_CHUNK):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        writer.close()


def _handler(target_host: str, target_port: int):  # type: ignore[no-untyped-def]
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(
                target_host, target_port
            )
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))

    return handle


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


async def main(routes: list[str]) -> None:
    servers = []
    for route in routes:
        listen, _, target = route.partition("=")
        handler = _handler(*_address(target))
        servers.append(await asyncio.start_server(handler, *_address(listen)))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    print('{"event": "ready"}', flush=True)
    await stop.wait()
    for server in servers:
        server.close()
        with contextlib.suppress(Exception):
            await server.wait_closed()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
