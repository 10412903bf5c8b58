"""A minimal OpenAI-compatible server over a local backend: `POST /v1/chat/completions` (streamed as server-sent
events, or whole) and `GET /v1/models`. It serves the raw model (no retrieval or routing), like vLLM would, so
an engine elsewhere can use `backend = "openai"` against it; the web app can mount `create_app(backend)`.

Run: `python -m chatbot.openai_server --port 8001` (the embedded model, batched by the scheduler).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict

from chatbot.config import GenerationConfig
from chatbot.generate import GenerationError, GenerationRequest


class Message(BaseModel):
    role: str
    content: str


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str | None = None
    messages: list[Message]
    stream: bool = False
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: str | list[str] | None = None
    seed: int | None = None
    repetition_penalty: float | None = None


def create_app(backend: Any, model_name: str | None = None, max_prompt_tokens: int = 1536) -> Any:
    """A FastAPI app serving `backend` (warmed up) under `/v1`."""
    from fastapi import FastAPI, HTTPException
    from fastapi.responses import JSONResponse, StreamingResponse

    name = model_name or getattr(backend, "name", "chatbot")

    app = FastAPI(title="chatbot OpenAI-compatible API")

    @app.get("/v1/models")
    def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": name, "object": "model", "created": 0, "owned_by": "chatbot"}]}

    @app.post("/v1/chat/completions")
    def chat(body: ChatRequest):
        if not body.messages:
            raise HTTPException(400, "messages must not be empty")
        defaults = GenerationConfig()
        stop = [body.stop] if isinstance(body.stop, str) else list(body.stop or [])
        try:
            generation = GenerationConfig(
                max_new_tokens=body.max_completion_tokens or body.max_tokens or defaults.max_new_tokens,
                temperature=defaults.temperature if body.temperature is None else body.temperature,
                top_p=body.top_p or 1.0, stop=tuple(stop), seed=body.seed or 0,
                repetition_penalty=body.repetition_penalty or defaults.repetition_penalty,
            )  # fmt: skip
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from exc
        request = GenerationRequest([m.model_dump() for m in body.messages], generation, max_prompt_tokens)
        cancel = threading.Event()
        completion_id = f"chatcmpl-{uuid.uuid4().hex}"
        created = int(time.time())
        try:
            stream = backend.stream(request, cancel)
        except GenerationError as exc:
            raise HTTPException(503, str(exc)) from exc

        if not body.stream:
            text = "".join(stream)
            return JSONResponse({
                "id": completion_id, "object": "chat.completion", "created": created, "model": name,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                             "finish_reason": "length" if stream.finish_reason == "length" else "stop"}],
                "usage": {"prompt_tokens": stream.prompt_tokens, "completion_tokens": stream.n_tokens,
                          "total_tokens": stream.prompt_tokens + stream.n_tokens},
            })  # fmt: skip

        def events():
            def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
                payload = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": name,
                           "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}  # fmt: skip
                return f"data: {json.dumps(payload)}\n\n"

            try:
                yield chunk({"role": "assistant", "content": ""})
                for piece in stream:
                    yield chunk({"content": piece})
                yield chunk({}, "length" if stream.finish_reason == "length" else "stop")
                yield "data: [DONE]\n\n"
            finally:
                cancel.set()  # the client went away or the reply is done

        return StreamingResponse(events(), media_type="text/event-stream")

    return app


def main(argv: list[str] | None = None) -> None:
    import argparse

    import uvicorn

    from chatbot.config import AppConfig
    from chatbot.scheduler import TransformersBackend

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args(argv)
    config = AppConfig.load(args.config)
    backend = TransformersBackend(config.model, config.scheduler)
    backend.warm_up()
    uvicorn.run(create_app(backend, max_prompt_tokens=config.prompt.max_prompt_tokens), host=args.host, port=args.port)


if __name__ == "__main__":
    main()
