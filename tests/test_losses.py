import pytest
import torch

from pipeline.training.losses import dice_code, dice_paper

LARGE = 30.0  # a logit whose sigmoid is 1 to float precision


def _logits(probabilities):
    p = torch.tensor(probabilities, dtype=torch.float32).clamp(1e-7, 1 - 1e-7)
    return torch.log(p / (1 - p)).reshape(len(probabilities), 1, 1, -1)


def test_paper_form_uses_squared_terms():
    target = torch.tensor([[1.0, 1.0, 0.0, 0.0]]).reshape(1, 1, 1, 4)
    p = [[0.5, 1.0, 0.5, 0.0]]
    expected = 1 - 2 * 1.5 / (2 + (0.25 + 1 + 0.25) + 1e-5)
    assert dice_paper(_logits(p), target).item() == pytest.approx(expected, rel=1e-5)


def test_code_form_uses_a_linear_denominator():
    target = torch.tensor([[1.0, 1.0, 0.0, 0.0]]).reshape(1, 1, 1, 4)
    p = [[0.5, 1.0, 0.5, 0.0]]
    expected = 1 - 2 * 1.5 / (2 + 2.0 + 1e-6)
    assert dice_code(_logits(p), target).item() == pytest.approx(expected, rel=1e-5)


def test_empty_target_costs_nothing_in_the_code_form_only():
    target = torch.zeros(2, 1, 4, 4)
    target[1, 0, 0, 0] = 1
    logits = torch.full((2, 1, 4, 4), 0.0)
    code = dice_code(logits, target)
    assert code[0].item() == 0.0 and code[1].item() > 0.5
    assert dice_paper(logits, target)[0].item() == pytest.approx(1.0, abs=1e-4)


def test_perfect_prediction_has_no_loss_and_losses_are_per_sample():
    target = torch.zeros(3, 1, 8, 8)
    target[:, :, 2:5, 2:5] = 1
    logits = torch.where(target > 0, LARGE, -LARGE)
    for loss in (dice_paper, dice_code):
        values = loss(logits, target)
        assert values.shape == (3,)
        assert torch.allclose(values, torch.zeros(3), atol=1e-5)


def test_bf16_logits_give_a_finite_fp32_loss():
    target = torch.zeros(2, 1, 512, 512)
    target[:, :, 100:400, 100:400] = 1
    logits = torch.randn(2, 1, 512, 512).to(torch.bfloat16)
    values = dice_paper(logits, target)
    assert values.dtype == torch.float32 and torch.isfinite(values).all()
