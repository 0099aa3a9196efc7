"""A grpc.aio client that behaves like the article's: `python client.py QUERY`
calls /Search/search on localhost:8100 and prints `status=N`.

    PYTHONPATH=<dir with search_pb2.py> python client.py Banana    # status=1
"""

import argparse
import asyncio

import grpc.aio
import search_pb2

METHOD = "/Search/search"


async def ask(target: str, query: str) -> int:
    async with grpc.aio.insecure_channel(target) as channel:
        call = channel.unary_unary(
            METHOD,
            request_serializer=search_pb2.SearchParam.SerializeToString,
            response_deserializer=search_pb2.SearchStatus.FromString,
        )
        answer = await call(search_pb2.SearchParam(query=query))
        return answer.status


if __name__ == "__main__":
    flags = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    flags.add_argument("query", help="the text to look for banana in")
    flags.add_argument("--target", default="localhost:8100", help="HOST:PORT of the server (default: localhost:8100)")
    args = flags.parse_args()
    print(f"status={asyncio.run(ask(args.target, args.query))}")
