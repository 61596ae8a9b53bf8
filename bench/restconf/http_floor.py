#!/usr/bin/env python3
"""The HTTP floor of the RESTCONF benchmark: the same ASGI server (Hypercorn), TLS, ALPN and worker-thread hop as
the RESTCONF server, answering every request at once with a fixed small body (PUT: 204 after reading the body).

What a request costs before any RESTCONF or sysrepo work: the benchmark times it next to the real server, so the
ratio can be split into what the HTTP stack costs and what the server adds.

    python bench/restconf/http_floor.py --cert PEM --key PEM --ready-file FILE
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import socket
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from hypercorn.asyncio import serve
from hypercorn.config import Config

BODY = b'{"vpp-singbox:port": 1080}\n'


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--cert", type=Path, required=True)
    parser.add_argument("--key", type=Path, required=True)
    parser.add_argument("--ready-file", type=Path, required=True)
    opts = parser.parse_args()
    executor = ThreadPoolExecutor(max_workers=16)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        while True:  # the body, as the server reads it
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body", False):
                break
        await asyncio.get_running_loop().run_in_executor(executor, lambda: None)  # the server's one thread hop
        put = scope["method"] == "PUT"
        body = b"" if put else BODY
        headers = [(b"content-length", str(len(body)).encode())]
        if not put:
            headers.append((b"content-type", b"application/yang-data+json"))
        await send({"type": "http.response.start", "status": 204 if put else 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def run() -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        sock.setblocking(False)
        config = Config()
        config.bind = [f"fd://{sock.fileno()}"]
        config.accesslog = None
        config.errorlog = None
        config.keep_alive_max_requests = 2**31
        config.certfile, config.keyfile = str(opts.cert), str(opts.key)
        config.alpn_protocols = ["h2", "http/1.1"]
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        server = asyncio.ensure_future(serve(app, config, shutdown_trigger=stop.wait))  # type: ignore[arg-type]
        await asyncio.sleep(0.05)
        opts.ready_file.write_text(json.dumps({"base_url": f"https://127.0.0.1:{sock.getsockname()[1]}"}))
        await server
        sock.detach()

    asyncio.run(run())
    executor.shutdown(wait=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
