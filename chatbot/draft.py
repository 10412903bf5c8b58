"""Prompt-lookup drafts: guesses of a reply's next tokens, taken from its own prompt.

A grounded support reply copies whole phrases of its FAQ sources. When the reply's last few tokens also occur in
the prompt, the tokens that follow them there are a good guess of what comes next; the scheduler checks the guess
in one forward pass with the next real token and keeps the part the model agrees with (chatbot/scheduler.py), so
a copied sentence costs a few passes instead of one per token. (The idea is "prompt lookup decoding", as in
transformers' `prompt_lookup_num_tokens` and llama.cpp's lookup examples; this is our own small version.)
"""

from __future__ import annotations

from collections.abc import Sequence

NGRAM_SIZES = (3, 2)
"""Suffix lengths tried, longest first: a 3-token match is a far better guess than a 2-token one, and a single
token (",", "the") says little about what follows."""


class PromptLookup:
    """The latest position after each 2- and 3-gram of one prompt, built once when the request is admitted."""

    def __init__(self, prompt: Sequence[int]):
        self.prompt = list(prompt)
        self._after: dict[tuple[int, ...], int] = {}
        for n in NGRAM_SIZES:
            for end in range(n, len(self.prompt)):  # an n-gram ending at the prompt's last token has no follower
                self._after[tuple(self.prompt[end - n : end])] = end

    def draft(self, generated: Sequence[int], limit: int) -> list[int]:
        """Up to `limit` tokens that followed the reply's last tokens in the prompt (the latest occurrence of the
        longest suffix found); [] when the reply is too short or its ending is not in the prompt."""
        if limit <= 0:
            return []
        for n in NGRAM_SIZES:
            if len(generated) < n:
                continue
            start = self._after.get(tuple(generated[-n:]))
            if start is not None:
                return self.prompt[start : start + limit]
        return []
