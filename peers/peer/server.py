"""A grpc.aio server that behaves like the article's: `Search/search` on
localhost:8100, status 1 when the lowered query holds "banana".

    PYTHONPATH=<dir with search_pb2*.py> python server.py [--listen HOST:PORT]

It prints the address it bound (`localhost:8100`) and serves until SIGTERM
or Ctrl-C, then stops with exit code 0.
"""

import argparse
import asyncio
import signal

import grpc.aio
import search_pb2
import search_pb2_grpc


class Matcher(search_pb2_grpc.SearchServicer):
    """The one RPC: Python's own `in` on the lowered text, as the article has it."""

    async def search(self, request, context):
        found = "banana" in request.query.lower()
        return search_pb2.SearchStatus(status=int(found))


async def serve(listen: str) -> None:
    server = grpc.aio.server()
    search_pb2_grpc.add_SearchServicer_to_server(Matcher(), server)
    port = server.add_insecure_port(listen)
    host = listen.rsplit(":", 1)[0]
    await server.start()
    print(f"{host}:{port}", flush=True)

    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    await stopping.wait()
    await server.stop(grace=1)


if __name__ == "__main__":
    flags = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    flags.add_argument("--listen", default="localhost:8100", help="HOST:PORT to bind (default: localhost:8100)")
    asyncio.run(serve(flags.parse_args().listen))
