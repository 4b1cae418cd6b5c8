"""Losses of the Nemotron-4 340B alignment recipe: SFT, DPO and RPO (pure torch, no state, no I/O).

Shapes: ``B`` batch, ``T`` sequence length, ``V`` vocabulary. Labels use ``-100`` for positions that carry no
loss (prompt, padding, non-assistant turns). Causal-LM logits at position ``t`` predict the token at ``t + 1``,
so every function here shifts once: ``logits[:, :-1]`` against ``labels[:, 1:]``.

References:
    Nemotron-4 340B Technical Report (NVIDIA, 2024), section 3.4 (DPO with an SFT term; Reward-aware
    Preference Optimization). Rafailov et al., "Direct Preference Optimization", NeurIPS 2023.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

IGNORE_INDEX = -100


def token_logps(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probability of each next label token.

    Args:
        logits: ``[B, T, V]`` causal-LM logits.
        labels: ``[B, T]`` token ids, ``-100`` where no loss applies.

    Returns:
        ``(logps [B, T-1], mask [B, T-1])``: ``logps[:, t] = log p(labels[:, t+1] | tokens <= t)``, zero where
        masked; ``mask`` is 1.0 on label tokens.
    """
    b, t, v = logits.shape
    # shift the labels, not the logits: a [B, T-1, V] slice of the logits would be copied to be flattened
    target = F.pad(labels[:, 1:], (0, 1), value=IGNORE_INDEX)
    mask = (target != IGNORE_INDEX)[:, :-1]
    # log-softmax in fp32 (bf16 sums over V lose digits); ignored positions come out as exactly 0
    nll = F.cross_entropy(
        logits.reshape(b * t, v).float(), target.reshape(-1), ignore_index=IGNORE_INDEX, reduction="none"
    ).view(b, t)[:, :-1]
    return -nll, mask.to(nll.dtype)


def sequence_logps(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Summed log-probability of the label tokens of each sequence, ``log pi(y | x)``.

    Args:
        logits: ``[B, T, V]``.
        labels: ``[B, T]`` with ``-100`` outside the response.

    Returns:
        ``[B]``.
    """
    logps, _ = token_logps(logits, labels)
    return logps.sum(dim=1)


def sft_nll(logits: torch.Tensor, labels: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Per-example negative log-likelihood of the label tokens.

    Args:
        logits: ``[B, T, V]``.
        labels: ``[B, T]`` with ``-100`` on masked positions.
        reduction: ``"mean"`` divides each example's summed NLL by its own label-token count (an example with
            no label token gives 0); ``"sum"`` keeps the sum, which weights long answers more.

    Returns:
        ``[B]``; average it over the batch for the step loss, so data-parallel ranks with equal batch sizes
        average to the global loss.
    """
    logps, mask = token_logps(logits, labels)
    return reduce_nll(logps, mask, reduction)


def reduce_nll(logps: torch.Tensor, mask: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Per-example NLL from :func:`token_logps` output (``[B, T-1]`` each) -> ``[B]``; see :func:`sft_nll`."""
    total = -logps.sum(dim=1)
    if reduction == "sum":
        return total
    if reduction == "mean":
        return total / mask.sum(dim=1).clamp(min=1.0)
    raise ValueError(f"sft_nll: reduction must be 'mean' or 'sum', got {reduction!r}")


def implicit_rewards(policy_logps: torch.Tensor, ref_logps: torch.Tensor, beta: float) -> torch.Tensor:
    """DPO's implicit reward ``r_pi(y) = beta * (log pi(y|x) - log pi_ref(y|x))``; ``[B] -> [B]``."""
    return beta * (policy_logps - ref_logps)


def dpo_loss(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    ref_chosen_logps: torch.Tensor,
    ref_rejected_logps: torch.Tensor,
    beta: float,
) -> torch.Tensor:
    """Sigmoid DPO loss per pair: ``-log sigma(beta * [(pi_c - ref_c) - (pi_l - ref_l)])``.

    Args:
        policy_chosen_logps, policy_rejected_logps: ``[B]`` summed response log-probs under the policy.
        ref_chosen_logps, ref_rejected_logps: ``[B]`` the same under the frozen reference.
        beta: strength of the implicit KL constraint (the report tunes it in [3e-4, 3e-3]).

    Returns:
        ``[B]``; ``logsigmoid`` keeps large margins finite.
    """
    margin = (policy_chosen_logps - ref_chosen_logps) - (policy_rejected_logps - ref_rejected_logps)
    return -F.logsigmoid(beta * margin)


def bernoulli_kl(p_logit: torch.Tensor, q_logit: torch.Tensor) -> torch.Tensor:
    """``KL(Bern(sigma(p)) || Bern(sigma(q)))`` from logits, elementwise, without forming ``log(sigma)``.

    ``sigma(p) log(sigma(p)/sigma(q)) + (1 - sigma(p)) log((1 - sigma(p))/(1 - sigma(q)))`` with
    ``log sigma(x) = logsigmoid(x)`` and ``log(1 - sigma(x)) = logsigmoid(-x)``.
    """
    return torch.sigmoid(p_logit) * (F.logsigmoid(p_logit) - F.logsigmoid(q_logit)) + torch.sigmoid(-p_logit) * (
        F.logsigmoid(-p_logit) - F.logsigmoid(-q_logit)
    )


def rpo_loss(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    ref_chosen_logps: torch.Tensor,
    ref_rejected_logps: torch.Tensor,
    reward_chosen: torch.Tensor,
    reward_rejected: torch.Tensor,
    beta: float,
    eta: float,
    distance: str = "bwd_kl",
) -> torch.Tensor:
    """Reward-aware Preference Optimization loss per pair (Nemotron-4 340B report, section 3.4.2).

    With the implicit reward ``r_pi(y) = beta (log pi(y|x) - log pi_ref(y|x))``, the policy's reward gap
    ``a = r_pi(y_c) - r_pi(y_l)`` is pulled towards the reward model's scaled gap
    ``b = eta (r*(y_c) - r*(y_l))``, so a pair that the reward model barely separates is not pushed apart as
    hard as a clear one (DPO pushes every pair towards an infinite margin).

    Args:
        policy_*_logps, ref_*_logps: ``[B]`` summed response log-probs.
        reward_chosen, reward_rejected: ``[B]`` reward-model scores ``r*``.
        beta: implicit-reward scale; eta: reward-model reward scale.
        distance: ``"bwd_kl"`` the report's ``D[a||b] = KL(Bern(sigma(b)) || Bern(sigma(a)))``;
            ``"fwd_kl"`` ``KL(Bern(sigma(a)) || Bern(sigma(b)))``; ``"sq"`` ``(a - b)^2 / 2``.

    Returns:
        ``[B]``, zero exactly where ``a == b``.
    """
    a = implicit_rewards(policy_chosen_logps, ref_chosen_logps, beta) - implicit_rewards(
        policy_rejected_logps, ref_rejected_logps, beta
    )
    b = eta * (reward_chosen - reward_rejected).to(a.dtype)
    if distance == "bwd_kl":
        return bernoulli_kl(b, a)
    if distance == "fwd_kl":
        return bernoulli_kl(a, b)
    if distance == "sq":
        return 0.5 * (a - b) ** 2
    raise ValueError(f"rpo_loss: distance must be 'bwd_kl', 'fwd_kl' or 'sq', got {distance!r}")


def reward_margin(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    ref_chosen_logps: torch.Tensor,
    ref_rejected_logps: torch.Tensor,
    beta: float,
) -> torch.Tensor:
    """Implicit reward margin ``r_pi(y_c) - r_pi(y_l)`` per pair, ``[B]`` (the ``a`` of RPO)."""
    return implicit_rewards(policy_chosen_logps, ref_chosen_logps, beta) - implicit_rewards(
        policy_rejected_logps, ref_rejected_logps, beta
    )


def reward_accuracy(margin: torch.Tensor) -> torch.Tensor:
    """Share of pairs whose implicit reward ranks chosen above rejected; ``[B] -> []``."""
    return (margin > 0).float().mean()


def rpo_target_gap(
    margin: torch.Tensor, reward_chosen: torch.Tensor, reward_rejected: torch.Tensor, eta: float
) -> torch.Tensor:
    """``eta (r*(y_c) - r*(y_l)) - (r_pi(y_c) - r_pi(y_l))`` per pair, ``[B]``: what RPO drives to zero."""
    return eta * (reward_chosen - reward_rejected).to(margin.dtype) - margin
