#!/usr/bin/env python3
# Managed by the llmops.devbox litellm role.
"""TCP switch in front of the LiteLLM blue/green proxy slots.

Each new client connection goes to the backend named in the active file ("host:port"); the file is
re-read whenever it changes, so a config push flips traffic by rewriting it. Connections already
open stay on the backend they started with until they close, which lets the old slot finish its
requests before it is stopped. Standard library only: it runs with the proxy image's Python.
"""

import argparse
import asyncio
import logging
import os
import sys

LOG = logging.getLogger("litellm-switch")
CHUNK = 65536


class Switch:
    def __init__(self, active_file, connect_timeout):
        self.active_file = active_file
        self.connect_timeout = connect_timeout
        self._stamp = None
        self._target = None

    def target(self):
        """(host, port) from the active file, cached until the file changes."""
        try:
            st = os.stat(self.active_file)
        except OSError:
            return None
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        if stamp != self._stamp:
            try:
                with open(self.active_file, encoding="utf-8") as handle:
                    host, _, port = handle.read().strip().rpartition(":")
                target = (host, int(port))
            except (OSError, ValueError) as exc:
                LOG.error("cannot read backend from %s: %s", self.active_file, exc)
                return self._target
            if target != self._target:
                LOG.info("new connections now go to %s:%s", *target)
            self._stamp, self._target = stamp, target
        return self._target

    async def handle(self, client_reader, client_writer):
        target = self.target()
        if target is None:
            LOG.error("no backend: %s is missing", self.active_file)
            client_writer.close()
            return
        try:
            backend_reader, backend_writer = await asyncio.wait_for(
                asyncio.open_connection(*target), self.connect_timeout)
        except (OSError, asyncio.TimeoutError) as exc:
            LOG.error("cannot reach backend %s:%s: %s", target[0], target[1], exc)
            client_writer.close()
            return
        writers = (client_writer, backend_writer)
        await asyncio.gather(_pipe(client_reader, backend_writer, writers),
                             _pipe(backend_reader, client_writer, writers))
        for writer in writers:
            writer.close()


async def _pipe(reader, writer, writers):
    """Copy one direction; pass a clean EOF on (half-close), abort both sides on errors."""
    try:
        while True:
            data = await reader.read(CHUNK)
            if not data:
                break
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof() and not writer.is_closing():
            writer.write_eof()
    except (OSError, asyncio.IncompleteReadError, RuntimeError):
        for other in writers:
            other.close()


async def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", default="0.0.0.0:4000", help="host:port to accept clients on")
    parser.add_argument("--active-file", required=True, help="file holding the backend as host:port")
    parser.add_argument("--connect-timeout", type=float, default=5.0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    host, _, port = args.listen.rpartition(":")
    switch = Switch(args.active_file, args.connect_timeout)
    switch.target()
    server = await asyncio.start_server(switch.handle, host or None, int(port), backlog=512)
    LOG.info("listening on %s", args.listen)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
