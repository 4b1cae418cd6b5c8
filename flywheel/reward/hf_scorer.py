"""Reward scoring with transformers: the reference path that the vLLM pooling scores are checked against.

Same text as the vLLM scorer (:func:`flywheel.reward.data.render`), right-padded batches, and the
model's own last-non-pad-token pooling; outputs are the raw 5 head values (no activation).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from flywheel.reward.data import render


class HFRewardScorer:
    """A ``*ForSequenceClassification`` reward model in this process.

    Args:
        model_dir: Hugging Face directory (5 outputs, regression).
        batch_size: conversations per forward pass.
        dtype: weights dtype for scoring.
    """

    def __init__(self, model_dir: str, batch_size: int = 16, dtype: torch.dtype = torch.float32):
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.model = AutoModelForSequenceClassification.from_pretrained(model_dir, dtype=dtype).eval()
        self.pad_id = (
            self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        )
        self.batch_size = batch_size

    @torch.no_grad()
    def score(self, conversations: Sequence[Sequence[dict]]) -> list[list[float]]:
        """Raw head outputs ``[len(conversations)][5]`` for full conversations (ending with the response)."""
        out: list[list[float]] = []
        for i in range(0, len(conversations), self.batch_size):
            ids = [
                self.tokenizer(render(self.tokenizer, c))["input_ids"] for c in conversations[i : i + self.batch_size]
            ]
            width = max(len(x) for x in ids)
            input_ids = torch.tensor([x + [self.pad_id] * (width - len(x)) for x in ids])
            mask = torch.tensor([[1] * len(x) + [0] * (width - len(x)) for x in ids])
            logits = self.model(input_ids=input_ids, attention_mask=mask).logits.float()
            out.extend(logits.tolist())
        return out
