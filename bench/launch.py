"""Start a gateway tailing an optimizer's SubscribeLog, with its prediction records in a
given file (the CLI has no flag for that file yet). Used by bench_routes."""

from __future__ import annotations

import argparse
import asyncio

from gateway_svc.server import GatewayConfig, serve


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--optimizer", required=True)
    p.add_argument("--predictions", required=True)
    p.add_argument("--port-file", required=True)
    args = p.parse_args()
    config = GatewayConfig(optimizer=args.optimizer, predictions=args.predictions, port_file=args.port_file)
    asyncio.run(serve(config))


if __name__ == "__main__":
    main()
