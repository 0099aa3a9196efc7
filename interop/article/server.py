import asyncio
from grpc.aio import server

import main_pb2_grpc, main_pb2


class Search(main_pb2_grpc.SearchServicer):
    async def search(
        self, request: main_pb2.SearchParam, context
    ) -> main_pb2.SearchStatus:
        query = request.query
        if "banana" in query.lower():
            status = 1
        else:
            status = 0
        return main_pb2.SearchStatus(status=status)


host = "localhost:8100"


async def main():
    s = server()
    main_pb2_grpc.add_SearchServicer_to_server(Search(), s)
    bound_port = s.add_insecure_port(host)
    print(f"localhost:{bound_port}")
    await s.start()
    await s.wait_for_termination()


if __name__ == "__main__":
    asyncio.run(main())
