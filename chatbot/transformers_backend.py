"""The transformers backend: a transformers model (with its peft adapter) behind the engine's `Backend` interface,
served by the batching scheduler over the torch runner. The path on GPUs, and the fallback on a CPU without
llama.cpp.

The active LoRA adapter is merged into the weights while serving (peft `merge_adapter`: each step then costs what
the base model's does; `chatbot bench generate` measures merged against unmerged). It is unmerged only for the
moment of a switch: `set_adapter` unmerges, switches and merges the new one between two decode steps, so the
running conversations go on. (Adapters switch when an admin activates one, minutes apart at the most, never per
request; the merge of a 135M model's LoRA takes milliseconds.)
"""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path
from typing import Any

from chatbot.config import ModelConfig, SchedulerConfig
from chatbot.generate import GenerationError, GenerationRequest
from chatbot.scheduler import BatchScheduler, ScheduledStream
from chatbot.torch_runner import TorchRunner


class TransformersBackend:
    """Cheap to construct; `warm_up()` loads the model (or takes an already `loaded` one, for tests)."""

    def __init__(self, model_config: ModelConfig | None = None, scheduler_config: SchedulerConfig | None = None,
                 loaded: Any = None, merge_adapter: bool = True):  # fmt: skip
        from chatbot.backends import BackendChoice

        self.model_config = model_config or ModelConfig()
        self.scheduler_config = scheduler_config or SchedulerConfig()
        self.loaded = loaded
        self.merge_adapter = merge_adapter
        self.scheduler: BatchScheduler | None = None
        self.name = self.model_config.name
        self.choice = BackendChoice("transformers", "constructed directly")
        self._adapters: dict[str, str] = {}
        self._adapter: str | None = None
        self._merged = False

    @property
    def adapter(self) -> str | None:
        return self._adapter if self.loaded is not None else None

    def warm_up(self) -> None:
        if self.loaded is None:
            from chatbot.model import load_model

            self.loaded = load_model(self.model_config)
        self._adapter = self.loaded.adapter
        if self._adapter:
            self._adapters[self._adapter] = self._adapter
            if self.merge_adapter:
                self.loaded.model.merge_adapter()
                self._merged = True
        runner = TorchRunner(self.loaded.model, self.loaded.device, self.loaded.tokenizer.pad_token_id,
                             self.scheduler_config.max_batch)  # fmt: skip
        threads = self.model_config.threads

        def set_threads() -> None:
            if threads:
                import torch

                torch.set_num_threads(threads)

        self.scheduler = BatchScheduler(runner, self.loaded.tokenizer, self.scheduler_config, set_threads)
        self.scheduler.start()

    def _require(self) -> BatchScheduler:
        if self.scheduler is None:
            raise GenerationError("the model is not loaded: call warm_up() first")
        return self.scheduler

    def render(self, request: GenerationRequest) -> list[int]:
        from chatbot.prompt import render_prompt

        self._require()
        return render_prompt(self.loaded.tokenizer, request.messages, request.max_prompt_tokens)

    def stream(self, request: GenerationRequest, cancel: threading.Event | None = None) -> ScheduledStream:
        """Queue the request; iterate the result for text pieces."""
        scheduler = self._require()
        return scheduler.submit(self.render(request), request.generation, cancel)

    def set_adapter(self, path_or_name: str | None) -> str | None:
        """Switch the adapter between decode steps: a folder (loaded once), a loaded name, or None/`none` for the
        base model. Returns the active adapter name."""
        scheduler = self._require()
        from chatbot.model import adapter_name, resolve_adapter

        if path_or_name is None or str(path_or_name).lower() == "none":
            target, path = None, None
        elif str(path_or_name) in self._adapters:
            target, path = str(path_or_name), None
        else:
            path = resolve_adapter(str(path_or_name))
            target = adapter_name(Path(path))

        def switch(runner: TorchRunner) -> str | None:
            from peft import PeftModel

            model = runner.model
            if self._merged:
                model.unmerge_adapter()
                self._merged = False
            if target is None:
                if isinstance(model, PeftModel):
                    model.base_model.disable_adapter_layers()
                self.loaded = dataclasses.replace(self.loaded, adapter=None)
                return None
            if path is not None and target not in self._adapters:
                if isinstance(model, PeftModel):
                    model.load_adapter(str(path), adapter_name=target)
                else:
                    model = PeftModel.from_pretrained(model, str(path), adapter_name=target)
                model.to(device=self.loaded.device, dtype=self.loaded.dtype)
                model.eval()
                self._adapters[target] = str(path)
            model.base_model.enable_adapter_layers()
            model.set_adapter(target)
            if self.merge_adapter:
                model.merge_adapter()
                self._merged = True
            runner.swap_weights(model)
            self.loaded = dataclasses.replace(self.loaded, model=model, adapter=target)
            return target

        self._adapter = scheduler.call(switch)
        return self._adapter

    def health(self) -> dict[str, Any]:
        return {
            "backend": "transformers",
            "backend_reason": self.choice.reason,
            "model": self.name,
            "model_loaded": self.loaded is not None and self.scheduler is not None,
            "device": self.loaded.device if self.loaded else None,
            "dtype": str(self.loaded.dtype).removeprefix("torch.") if self.loaded else None,
            "adapter": self.adapter,
            "adapter_merged": self._merged,
            "queue_depth": self.scheduler.queue_depth if self.scheduler else 0,
        }

    def close(self) -> None:
        if self.scheduler is not None:
            self.scheduler.close()
