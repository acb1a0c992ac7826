"""The deployment DSPy's guide recommends (docs: tutorials/deployment, "Deploying with
FastAPI"): FastAPI + uvicorn (`pip install fastapi uvicorn`, so h11 and asyncio's own loop),
one process, an endpoint that awaits the program and returns its prediction as JSON.

The program is the one the gateway serves, built the same way (bench.common), and is called
with `acall` rather than the guide's `dspy.asyncify`, whose thread pool (8 workers by
default) would cap it at 40 requests/s with a 200 ms LM: the stronger baseline.

    python -m bench.fastapi_baseline --port 8000 --latency-ms 200
"""

from __future__ import annotations

import argparse

import uvicorn
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel

from bench import common


class Ticket(BaseModel):
    text: str


def app_for(latency_ms: int) -> FastAPI:
    program = common.in_process_program(latency_ms)
    app = FastAPI()

    @app.post("/predict")
    async def predict(ticket: Ticket) -> dict[str, object]:
        try:
            result = await program.acall(text=ticket.text)
            return {"status": "success", "data": result.toDict()}
        except Exception as exc:  # as the guide does
            raise HTTPException(status_code=500, detail=str(exc)) from None

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--latency-ms", type=int, default=200)
    args = parser.parse_args()
    uvicorn.run(
        app_for(args.latency_ms), host="127.0.0.1", port=args.port, log_level="warning", access_log=False
    )


if __name__ == "__main__":
    main()
