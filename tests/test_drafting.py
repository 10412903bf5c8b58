"""Prompt-lookup drafting (chatbot/draft.py, the scheduler's drafted steps): drafts come from the prompt, and a
drafted reply is token for token the one plain decoding gives, with the repetition penalty and n-gram blocking on,
alone and batched, while taking fewer steps; the cache is cut back exactly to the kept tokens; the per-step budget,
sampled replies and `draft_tokens = 0` are respected; bad settings are refused."""

from __future__ import annotations

import threading

import pytest

from chatbot.config import GenerationConfig, SchedulerConfig
from chatbot.draft import PromptLookup
from chatbot.scheduler import BatchScheduler


def test_a_draft_is_what_followed_the_replys_ending_in_the_prompt():
    lookup = PromptLookup([5, 1, 2, 3, 4, 9, 1, 2, 7, 8, 6])
    assert lookup.draft([0, 1, 2], 3) == [7, 8, 6]  # the latest "1 2" in the prompt, not the first
    assert lookup.draft([9, 3, 4], 2) == [9, 1]  # "3 4" -> what followed it
    assert lookup.draft([5, 1, 2], 4) == [3, 4, 9, 1]  # the 3-gram "5 1 2" wins over the later "1 2"
    assert lookup.draft([3, 1, 2], 4) == [7, 8, 6]  # no "3 1 2" in the prompt: the latest "1 2", up to its end
    assert lookup.draft([8, 6], 4) == []  # the prompt's last tokens have no follower
    assert lookup.draft([4], 4) == []  # one token is too little to go on
    assert lookup.draft([1, 2], 0) == []
    assert lookup.draft([42, 43], 4) == []


def test_the_longest_suffix_wins_over_a_later_shorter_match():
    lookup = PromptLookup([1, 2, 3, 10, 11, 2, 3, 20, 21])
    assert lookup.draft([1, 2, 3], 2) == [10, 11]  # "1 2 3" occurs once: its follower, though "2 3" recurs later
    assert lookup.draft([9, 2, 3], 2) == [20, 21]  # only "2 3" matches: its latest follower


class CopyingRunner:
    """A fake language model whose next-token logits are a pure function of the slot's token history: mostly it
    copies what followed the current token earlier (as a grounded reply copies its sources), and one time in four
    the seeded noise decides; it ends the reply after `length` tokens. Any order of feeding gives the same replies, so
    plain and drafted decoding must agree exactly. Every call checks that the cache holds exactly the tokens
    before the fed position (a wrong trim fails the step)."""

    device = "cpu"
    context_tokens = None

    def __init__(self, vocab: int, eos: int, slots: int = 4, length: int = 40):
        self.vocab, self.eos, self.slots, self.length = vocab, eos, slots, length
        self.history: dict[int, list[int]] = {}
        self.prompt_length: dict[int, int] = {}
        self.calls: list[tuple[str, int]] = []

    def _logits(self, history: list[int]):
        import torch

        seed = hash((len(history), history[-1], history[-2] if len(history) > 1 else -1)) % 2**31
        noise = torch.randn(self.vocab, generator=torch.Generator().manual_seed(seed)) * 2
        logits = torch.full((self.vocab,), -30.0)
        seen = torch.tensor(sorted(set(history)))
        logits[seen] = noise[seen]  # it only says words it has read
        if seed % 4:  # one time in four the noise decides: the reply leaves its source there
            for i in range(len(history) - 2, -1, -1):
                if history[i] == history[-1]:
                    logits[history[i + 1]] += 12.0
                    break
        return logits

    def _feed(self, slot: int, tokens: list[int], position: int):
        import torch

        history = self.history[slot]
        assert position == len(history), f"slot {slot}: fed at {position} but the cache holds {len(history)}"
        rows = []
        for k, token in enumerate(tokens):
            history.append(token)
            if len(history) < self.prompt_length[slot] and k < len(tokens) - 1:
                continue  # inside a prompt only its last token's logits are wanted
            row = self._logits(history)
            if len(history) - self.prompt_length[slot] >= self.length:
                row[self.eos] = 1e4
            rows.append(row)
        return torch.stack(rows)

    def prefill(self, slots, prompts):
        import torch

        self.calls.append(("prefill", len(slots)))
        out = []
        for slot, prompt in zip(slots, prompts, strict=True):
            self.history[slot], self.prompt_length[slot] = [], len(prompt)
            out.append(self._feed(slot, list(prompt), 0)[-1])
        return torch.stack(out)

    def decode(self, slots, tokens, positions):
        import torch

        self.calls.append(("decode", len(slots)))
        return torch.cat([self._feed(s, [t], p) for s, t, p in zip(slots, tokens, positions, strict=True)])

    def release(self, slot):
        self.history.pop(slot, None)

    def reset(self):
        self.history.clear()

    def swap_weights(self, weights):
        return weights


class DraftingCopyingRunner(CopyingRunner):
    """The same model, able to check drafts."""

    def verify(self, slots, tokens, positions):
        self.calls.append(("verify", [len(t) - 1 for t in tokens]))
        return [self._feed(s, list(t), p) for s, t, p in zip(slots, tokens, positions, strict=True)]

    def trim(self, slot, length):
        assert length <= len(self.history[slot])
        del self.history[slot][length:]


def _prompts(tokenizer) -> list[list[int]]:
    texts = [
        "Sources: [1] Refunds reach your card within 14 days of receiving the return. Customer: when is my refund?",
        "Sources: [1] Orders ship in 2 business days; express delivery takes 1 day. Customer: how fast is it?",
        "Sources: [1] Change the address in My Orders > Edit until the order ships. Customer: wrong address!",
    ]
    return [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]


def _replies(runner, tokenizer, config: SchedulerConfig, generation: GenerationConfig, together: bool):
    scheduler = BatchScheduler(runner, tokenizer, config)
    prompts = _prompts(tokenizer)
    replies: list[list[int]] = [[] for _ in prompts]
    if together:
        scheduler.start()
        scheduler.call(lambda r: None)
        streams = [scheduler.submit(p, generation) for p in prompts]
        barrier = threading.Barrier(len(streams))

        def read(i):
            barrier.wait()
            "".join(streams[i])
            replies[i] = list(streams[i]._seq.generated)

        threads = [threading.Thread(target=read, args=(i,)) for i in range(len(streams))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    else:
        for i, p in enumerate(prompts):
            stream = scheduler.submit(p, generation)
            "".join(stream)
            replies[i] = list(stream._seq.generated)
    steps = scheduler.steps
    scheduler.close()
    return replies, steps


@pytest.mark.parametrize("together", [False, True], ids=["alone", "batched"])
def test_drafted_replies_are_token_for_token_the_plain_ones_in_fewer_steps(tiny_loaded, together):
    tokenizer = tiny_loaded.tokenizer
    vocab, eos = len(tokenizer), tokenizer.eos_token_id
    serving = GenerationConfig(max_new_tokens=60)  # the serving defaults: repetition penalty, 4-gram blocking
    plain, plain_steps = _replies(CopyingRunner(vocab, eos), tokenizer, SchedulerConfig(), serving, together)
    runner = DraftingCopyingRunner(vocab, eos)
    drafted, drafted_steps = _replies(runner, tokenizer, SchedulerConfig(draft_tokens=8), serving, together)
    assert drafted == plain
    assert all(len(r) == 40 for r in plain)  # each reply ran to its end, not cut by a failed step
    assert any(kind == "verify" for kind, _ in runner.calls)
    assert drafted_steps < plain_steps


def test_the_step_budget_caps_the_drafted_tokens_and_sampled_replies_are_not_drafted(tiny_loaded):
    tokenizer = tiny_loaded.tokenizer
    vocab, eos = len(tokenizer), tokenizer.eos_token_id
    runner = DraftingCopyingRunner(vocab, eos)
    _replies(runner, tokenizer, SchedulerConfig(draft_tokens=8, draft_step_tokens=6), GenerationConfig(), True)
    drafted = [rows for kind, rows in runner.calls if kind == "verify"]
    assert drafted and max(sum(rows) for rows in drafted) <= 6
    # shared out: with three replies drafting, none takes the whole budget
    assert any(len(rows) == 3 and sum(1 for n in rows if n) >= 2 for rows in drafted)
    assert all(rows[0] <= 2 for rows in drafted if len(rows) == 3)  # the first of three: a third of the budget

    sampled = DraftingCopyingRunner(vocab, eos)
    _replies(sampled, tokenizer, SchedulerConfig(draft_tokens=8), GenerationConfig(temperature=0.7), True)
    assert not any(kind == "verify" for kind, _ in sampled.calls)

    off = DraftingCopyingRunner(vocab, eos)
    _replies(off, tokenizer, SchedulerConfig(draft_tokens=0), GenerationConfig(), False)
    assert not any(kind == "verify" for kind, _ in off.calls)


def test_a_draft_never_runs_past_max_new_tokens(tiny_loaded):
    tokenizer = tiny_loaded.tokenizer
    runner = DraftingCopyingRunner(len(tokenizer), tokenizer.eos_token_id)
    replies, _ = _replies(runner, tokenizer, SchedulerConfig(draft_tokens=8), GenerationConfig(max_new_tokens=7),
                          False)  # fmt: skip
    assert [len(r) for r in replies] == [7, 7, 7]


def test_negative_draft_settings_are_refused():
    with pytest.raises(ValueError, match="draft_tokens"):
        SchedulerConfig(draft_tokens=-1)
    with pytest.raises(ValueError, match="draft_step_tokens"):
        SchedulerConfig(draft_step_tokens=-2)
