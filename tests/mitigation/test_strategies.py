"""Every strategy × reconstructor pair: gradients reach the reconstructor, a step lowers the fairness term,
the adversary's and reconstructor's signs, and λ scales the update (REFERENCE.md bug 11)."""

from __future__ import annotations

import pytest
import torch

from radfair.mitigation import MitigationBatches, subgroup_weights

from .conftest import KINDS, STRATEGIES, TASKS, differentiable_output, make_batch, make_step

FAIR = ("eodd", "adversarial")
PAIRS = [(t, s, k) for t in TASKS for s in STRATEGIES for k in KINDS]


def _net_grad_norm(step) -> float:
    return sum(float(p.grad.abs().sum()) for p in step.base.net.parameters() if p.grad is not None)


@pytest.mark.parametrize(("task", "strategy", "kind"), PAIRS)
def test_output_requires_grad_and_fairness_gradient_reaches_reconstructor(task, strategy, kind, batch):
    """Classifier (BCE, soft EODD) and segmenter (1 − soft Dice, worst-case soft-Dice gap) downstream alike."""
    step = make_step(kind, strategy, task=task)
    output = differentiable_output(step, batch)
    assert output.requires_grad and output.grad_fn is not None  # IR-SDE: depends on the network
    step.base.net.zero_grad(set_to_none=True)
    if strategy == "reweighting":
        # no fairness term: its lever is the sampler; what it adds to the loss is the task loss, which reaches the net
        term = step.task_loss(batch, output)
        assert float(step.fairness_term(batch, output)) == 0.0
    else:
        term = step.penalty(step.fairness_term(batch, output))
        assert float(term.detach()) > 0
    term.backward()
    assert _net_grad_norm(step) > 0
    assert all(p.grad is None for p in step.downstream.parameters())  # the downstream model is frozen


@pytest.mark.parametrize(("task", "strategy", "kind"), [(t, s, k) for t in TASKS for s in FAIR for k in KINDS])
def test_a_step_on_the_fairness_term_alone_lowers_it(task, strategy, kind, batch):
    step = make_step(kind, strategy, task=task)
    params = list(step.base.net.parameters())

    def term():
        return step.fairness_term(batch, differentiable_output(step, batch))  # τ not updated, adversary fixed

    before = term()
    grads = torch.autograd.grad(step.penalty(before), params, allow_unused=True)
    norm = torch.sqrt(sum((g ** 2).sum() for g in grads if g is not None))
    with torch.no_grad():
        for p, g in zip(params, grads, strict=True):
            if g is not None:
                p -= 1e-3 * g / norm
    after = term()
    assert float(after.detach()) < float(before.detach())


@pytest.mark.parametrize("kind", KINDS)
def test_adversary_step_raises_corr2_and_reconstructor_step_lowers_it(kind, batch):
    step = make_step(kind, "adversarial", task_weight=0.0)
    output = differentiable_output(step, batch).detach()

    def objective():
        with torch.no_grad():
            return float(step.adversary_objective(batch, step.downstream.features(output)))

    before = objective()
    step.adversary_step(batch, output)
    assert objective() > before  # the adversary maximises Corr²
    # the reconstructor's own training step lowers Corr² (for a fixed adversary) on the same batch
    step.base.optimizers["model"] = torch.optim.SGD(step.base.net.parameters(), lr=1e-3)
    adversary_state = {k: v.clone() for k, v in step.adversary.state_dict().items()}

    def corr_now():
        with torch.no_grad():
            return float(step.fairness_term(batch, differentiable_output(step, batch)))

    c0 = corr_now()
    params = list(step.base.net.parameters())
    grad = torch.autograd.grad(step.penalty(step.fairness_term(batch, differentiable_output(step, batch))), params,
                               allow_unused=True)
    norm = torch.sqrt(sum((g ** 2).sum() for g in grad if g is not None))
    with torch.no_grad():
        for p, g in zip(params, grad, strict=True):
            if g is not None:
                p -= 1e-3 * g / norm
    assert corr_now() < c0
    assert all(torch.equal(v, step.adversary.state_dict()[k]) for k, v in adversary_state.items())


@pytest.mark.parametrize("kind", KINDS)
def test_train_step_updates_the_adversary_upwards_and_not_by_the_reconstructor_loss(kind, batch):
    step = make_step(kind, "adversarial")
    assert "adversary" in step.modules and "adversary" in step.optimizers  # fit checkpoints them
    values = step.train_step(batch)
    assert {"adversary", "fair", "task", "extra"} <= set(values)
    assert all(p.requires_grad for p in step.adversary.parameters())


def _delta_after_one_sgd_step(kind, strategy, weight, batch, **overrides):
    step = make_step(kind, strategy, weight=weight, **overrides)
    step.base.optimizers["model"] = torch.optim.SGD(step.base.net.parameters(), lr=1e-2)
    start = torch.cat([p.detach().flatten().clone() for p in step.base.net.parameters()])
    step.train_step(batch)
    return torch.cat([p.detach().flatten() for p in step.base.net.parameters()]) - start


@pytest.mark.parametrize(("strategy", "kind"), [(s, k) for s in FAIR for k in KINDS])
def test_lambda_changes_the_update_linearly(strategy, kind, batch):
    d0 = _delta_after_one_sgd_step(kind, strategy, 0.0, batch)
    d1 = _delta_after_one_sgd_step(kind, strategy, 1.0, batch)
    d2 = _delta_after_one_sgd_step(kind, strategy, 2.0, batch)
    assert not torch.allclose(d1, d0)
    # with SGD the fairness part of the update is exactly λ times the λ = 1 part: not normalised away
    torch.testing.assert_close(d2 - d0, 2 * (d1 - d0), rtol=1e-3, atol=1e-7)


@pytest.mark.parametrize("kind", KINDS)
def test_reweighting_loss_is_reconstruction_plus_weighted_task_loss(kind, batch):
    d0 = _delta_after_one_sgd_step(kind, "reweighting", 1.0, batch, task_weight=0.0)
    d1 = _delta_after_one_sgd_step(kind, "reweighting", 1.0, batch, task_weight=1.0)
    d2 = _delta_after_one_sgd_step(kind, "reweighting", 1.0, batch, task_weight=2.0)
    torch.testing.assert_close(d2 - d0, 2 * (d1 - d0), rtol=1e-3, atol=1e-7)
    step = make_step(kind, "reweighting", task_weight=0.5)
    if hasattr(step.base, "generator"):
        state = step.base.generator.get_state()
        output = step.base._loss(batch, torch.Generator().set_state(state))[1]
    else:
        output = step.base.net(batch["degraded"])
    expected = 0.5 * float(step.task_loss(batch, output).detach())
    values = step.train_step(batch)
    assert float(values["extra"]) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("kind", KINDS)
def test_reweighting_sampler_changes_the_rows_the_step_sees(kind):
    groups = torch.tensor([0] * 28 + [1] * 4).numpy()[:, None]
    images = (torch.rand(32, 32, 32) * 255).to(torch.uint8).numpy()
    labels = make_batch(n=32)["labels"].numpy()
    plain = MitigationBatches(images, images, labels, groups, 8, shuffle=True, seed=0)
    weighted = MitigationBatches(images, images, labels, groups, 8, shuffle=True, seed=0, weights=subgroup_weights(groups))
    seen_plain = torch.cat([b["index"] for b in plain.epoch(0)])
    seen_weighted = torch.cat([b["index"] for b in weighted.epoch(0)])
    assert sorted(seen_plain.tolist()) == list(range(32))
    assert (seen_weighted >= 28).float().mean() > 4 / 32  # the minority group is drawn more often
    step = make_step(kind, "reweighting")
    first = next(iter(weighted.epoch(0)))
    assert {"labels", "groups"} <= set(first) and first["groups"].dtype == torch.int64
    assert torch.isfinite(step.train_step({**first, "degraded": first["degraded"], "clean": first["clean"]})["loss"])


@pytest.mark.parametrize("kind", KINDS)
def test_segmenter_downstream_uses_soft_dice_and_its_worst_case_group_gap_over_tumour_slices(kind, batch):
    from radfair.mitigation import soft_dice, soft_dice_gap

    step = make_step(kind, "eodd", task="segmentation", weight=3.0)
    batch["mask"][0] = 0  # a slice without tumour: left out of both Dice terms
    output = differentiable_output(step, batch)
    dice = soft_dice(torch.sigmoid(step.downstream(output)), batch["mask"])[1:]
    fair = step.fairness_term(batch, output)
    torch.testing.assert_close(fair, soft_dice_gap(dice, batch["groups"][1:]))
    torch.testing.assert_close(step.task_loss(batch, output), 1 - dice.mean())
    small = {**batch, "mask": torch.nn.functional.interpolate(batch["mask"], size=(16, 16), mode="nearest")}
    assert torch.isfinite(step.task_loss(small, output))  # a mask at another size is resized to the segmenter's output
    empty = {**batch, "mask": torch.zeros_like(batch["mask"])}
    assert float(step.task_loss(empty, output).detach()) == 0.0 and float(step.fairness_term(empty, output).detach()) == 0.0
