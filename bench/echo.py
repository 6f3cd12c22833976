"""The floor for any remote call here: a bare grpc.aio unary echo (and an aiohttp one).

It serves the same `klambda.v1.Invoker/Invoke` method with the same messages as the
router, answering with the request's payload and nothing else, so the same clients and
the same ghz/wrk command lines drive both and the difference is klambda's own work.

Run as: python -m bench.echo --grpc-port N --http-port M
"""

from __future__ import annotations

import argparse
import asyncio
import signal

import grpc
from aiohttp import web
from klambda.proto import invoker_pb2, invoker_pb2_grpc


class EchoInvoker(invoker_pb2_grpc.InvokerServicer):
    async def Invoke(
        self, request: invoker_pb2.InvokeRequest, context: grpc.aio.ServicerContext
    ) -> invoker_pb2.InvokeResponse:
        return invoker_pb2.InvokeResponse(status_code=200, payload=request.payload)


async def http_echo(request: web.Request) -> web.Response:
    return web.Response(body=await request.read(), content_type="application/json")


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok\n")


async def serve(grpc_port: int, http_port: int) -> None:
    server = grpc.aio.server()
    invoker_pb2_grpc.add_InvokerServicer_to_server(EchoInvoker(), server)  # type: ignore[no-untyped-call]
    server.add_insecure_port(f"127.0.0.1:{grpc_port}")
    await server.start()
    app = web.Application()
    app.router.add_post("/2015-03-31/functions/{name}/invocations", http_echo)
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", http_port).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()
    await server.stop(grace=0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--grpc-port", type=int, required=True)
    parser.add_argument("--http-port", type=int, required=True)
    args = parser.parse_args()
    asyncio.run(serve(args.grpc_port, args.http_port))


if __name__ == "__main__":
    main()
