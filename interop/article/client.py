import argparse
import asyncio
from typing import cast

#
import main_pb2
from grpc.aio import insecure_channel

target = "localhost:8100"


async def main(query: str):
    channel = insecure_channel(target)
    search = channel.unary_unary(
        "/Search/search",
        request_serializer=main_pb2.SearchParam.SerializeToString,
        response_deserializer=main_pb2.SearchStatus.FromString,
    )
    request = main_pb2.SearchParam(query=query)
    response = cast(main_pb2.SearchStatus, await search(request))
    print(f"status={response.status}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("query")
    args = parser.parse_args()
    asyncio.run(main(args.query))
