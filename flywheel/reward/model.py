"""The reward model's shape: a backbone with a 5-output linear regression head (HelpSteer2 attributes).

Saved as ``LlamaForSequenceClassification`` so vLLM's pooling runner and transformers both load it.
"""

from __future__ import annotations

import glob
import os

from flywheel.errors import FlywheelError
from flywheel.judges.attributes import ATTRIBUTES
from flywheel.models import atomic_dir, publish_dir


def build_reward_model(out_dir: str, backbone_dir: str | None, tokenizer_dir: str, tiny=None, seed: int = 0) -> str:
    """Backbone + a 5-output linear regression head (HelpSteer2 attributes), saved as
    ``LlamaForSequenceClassification`` (``num_labels=5``, ``problem_type=regression``) so that vLLM's pooling
    runner (``LLM.classify``) and transformers both load it.

    Args:
        backbone_dir: a Llama-architecture causal LM whose body is reused; None builds a random tiny one
            from ``tiny`` (a TinyModelConfig).
    """
    import torch
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoTokenizer, LlamaConfig, LlamaForSequenceClassification

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    torch.manual_seed(seed)
    if backbone_dir is None:
        config = LlamaConfig(
            vocab_size=len(tok),
            hidden_size=tiny.hidden,
            intermediate_size=tiny.intermediate,
            num_hidden_layers=tiny.layers,
            num_attention_heads=tiny.heads,
            num_key_value_heads=tiny.kv_heads,
            head_dim=tiny.head_dim,
            max_position_embeddings=tiny.max_position,
            tie_word_embeddings=False,
            bos_token_id=tok.bos_token_id,
            eos_token_id=tok.eos_token_id,
            pad_token_id=tok.pad_token_id,
        )
        state = None
    else:
        config = AutoConfig.from_pretrained(backbone_dir)
        if config.model_type != "llama":
            raise FlywheelError(f"reward backbone {backbone_dir}: model_type {config.model_type!r}, need llama")
        state = {}
        for f in sorted(glob.glob(os.path.join(backbone_dir, "*.safetensors"))):
            state.update(load_file(f))
    config.architectures = ["LlamaForSequenceClassification"]
    config.num_labels = len(ATTRIBUTES)
    config.id2label = dict(enumerate(ATTRIBUTES))
    config.label2id = {v: k for k, v in config.id2label.items()}
    config.problem_type = "regression"
    config.pad_token_id = tok.pad_token_id
    model = LlamaForSequenceClassification(config)
    if state is not None:
        body = {k: v for k, v in state.items() if k.startswith("model.")}
        missing, _ = model.load_state_dict(body, strict=False)
        if [m for m in missing if not m.startswith("score")]:
            raise FlywheelError(f"reward backbone {backbone_dir}: weights missing {missing[:3]}")
    with torch.no_grad():  # a small head keeps initial rewards near zero
        model.score.weight.normal_(0.0, 0.02)
    tmp = atomic_dir(out_dir)
    model.to(torch.float32).save_pretrained(tmp, safe_serialization=True)  # type: ignore[arg-type]
    tok.save_pretrained(tmp)
    return publish_dir(tmp, out_dir)
