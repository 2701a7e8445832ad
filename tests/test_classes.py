"""Class labels in two tiers, the tiered class embedder, label dropout, guidance and class fidelity (FineDiffusion)."""

import dataclasses

import numpy as np
import pytest
import torch

from diffmodel.classes import NO_LABEL, ClassScheme, UnknownClassError
from diffmodel.config import DiffusionConfig, ModelConfig, TrainConfig
from diffmodel.errors import UserError
from diffmodel.evaluation.class_fidelity import BINS, ColourClassifier, chroma_histograms
from diffmodel.model.diffusion import Guidance, Schedule, denoise, sample
from diffmodel.model.unet import UNet
from diffmodel.training.setup import start_from_parent
from diffmodel.training.step import dropped_labels

SCHEME = ClassScheme.build("landscapes", ("alpine", "red_rock", "summer_forest", "autumn_forest"),
                           {"mountain": ("alpine", "red_rock"), "forest": ("summer_forest", "autumn_forest")})
SMALL = ModelConfig(channels=8, channel_mults=(1, 2), attention_resolutions=(8,), head_channels=8, groups=4)


def test_superclasses_follow_from_fine_classes():
    assert SCHEME.superclass_labels(np.array([0, 1, 2, 3, NO_LABEL])).tolist() == [0, 0, 1, 1, NO_LABEL]
    assert SCHEME.same_superclass_other(np.array([0, 1, 2, 3])).tolist() == [1, 0, 3, 2]
    assert SCHEME.index("autumn_forest") == 3
    with pytest.raises(UnknownClassError, match="unknown class 'oak'; this model knows: mountain: alpine, red_rock; "
                                                "forest: summer_forest, autumn_forest"):
        SCHEME.index("oak")
    assert ClassScheme.from_dict(SCHEME.as_dict()) == SCHEME
    # superclasses are numbered by their first class, not by how the mapping is written
    reordered = ClassScheme.build("l", SCHEME.classes, {"forest": ("summer_forest", "autumn_forest"),
                                                        "mountain": ("alpine", "red_rock")})
    assert reordered == SCHEME and reordered.superclasses == ("mountain", "forest")
    alone = ClassScheme.build("l", ("a", "b", "c"), {"x": ("a", "b"), "y": ("c",)})
    assert alone.same_superclass_other(np.array([0, 1, 2])).tolist() == [1, 0, 0]  # c has no sibling: the next class
    faces = ClassScheme.build("faces", (), None)
    assert faces.classes == ("faces",) and not faces.conditional and SCHEME.conditional


def randomised(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Every tensor random: the zero-initialised layers would hide a class embedding that leaks."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(0.3 * torch.randn(p.shape, generator=generator))
    return model.eval()


def test_a_child_with_a_new_class_embedder_starts_exactly_as_its_parent():
    parent = randomised(UNet(SMALL, 16))
    child = UNet(SMALL, 16, classes=SCHEME).eval()
    assert start_from_parent(child, parent.state_dict(), same_classes=False) is False
    x, gamma = torch.randn(4, 6, 16, 16), torch.rand(4)
    labels = (torch.tensor([0, 1, 3, NO_LABEL]), torch.tensor([0, 0, 1, NO_LABEL]))
    with torch.no_grad():
        assert torch.equal(child(x, gamma, labels), parent(x, gamma))
        assert torch.equal(child(x, gamma), parent(x, gamma))


def test_the_class_embedder_changes_the_output_once_trained_and_only_with_the_same_classes():
    trained = randomised(UNet(SMALL, 16, classes=SCHEME))
    x, gamma = torch.randn(2, 6, 16, 16), torch.rand(2)
    with torch.no_grad():
        as_alpine = trained(x, gamma, (torch.tensor([0, 0]), torch.tensor([0, 0])))
        as_red = trained(x, gamma, (torch.tensor([1, 1]), torch.tensor([0, 0])))
    assert not torch.allclose(as_alpine, as_red)
    same = UNet(SMALL, 16, classes=SCHEME)
    assert start_from_parent(same, trained.state_dict(), same_classes=True) is True
    assert torch.equal(same.class_embed.fine.weight, trained.class_embed.fine.weight)
    other = randomised(UNet(SMALL, 16, classes=ClassScheme.build("l", ("a", "b"), None)), seed=5)
    assert start_from_parent(other, trained.state_dict(), same_classes=False) is False
    # other classes: whatever label it is given, the child starts as its parent given no label
    no_label = (torch.tensor([NO_LABEL, NO_LABEL]), torch.tensor([NO_LABEL, NO_LABEL]))
    with torch.no_grad():
        expected = trained(x, gamma, no_label)
        for labels in (no_label, (torch.tensor([0, 1]), torch.tensor([0, NO_LABEL]))):
            assert torch.allclose(other.eval()(x, gamma, labels), expected, atol=1e-6)


def test_label_dropout_rates_and_tiers():
    cfg = TrainConfig(label_dropout=0.2, label_dropout_all=0.1)
    fine = np.tile(np.arange(4), 5000)
    dropped_fine, dropped_super = dropped_labels(SCHEME, fine, cfg, torch.Generator().manual_seed(0), torch.device("cpu"))
    no_fine, no_super = dropped_fine == NO_LABEL, dropped_super == NO_LABEL
    assert no_fine.float().mean().item() == pytest.approx(0.3, abs=0.01)
    assert no_super.float().mean().item() == pytest.approx(0.1, abs=0.01)
    assert not (no_super & ~no_fine).any()  # a superclass is only dropped with its fine class
    kept = ~no_fine
    assert torch.equal(dropped_fine[kept], torch.from_numpy(fine)[kept])
    assert torch.equal(dropped_super[~no_super], torch.from_numpy(SCHEME.superclass_labels(fine))[~no_super])


class LabelEcho(torch.nn.Module):
    """A stand-in denoiser whose output says which labels it was given: 10 * fine + superclass (-1: no label)."""

    def forward(self, x, gamma, labels=None):
        fine, superclass = labels
        value = (10.0 * fine + superclass).view(-1, 1, 1, 1)
        return value.expand(-1, 3, *x.shape[2:]).float()


@pytest.mark.parametrize("kind,reference", [("cfg", 10 * NO_LABEL + NO_LABEL), ("superclass", 10 * NO_LABEL + 1)])
def test_guidance_is_reference_plus_scale_times_the_difference(kind, reference):
    labels = (torch.tensor([3]), torch.tensor([1]))  # autumn_forest, forest: conditional output 31
    out = denoise(LabelEcho(), torch.zeros(1, 6, 2, 2), torch.ones(1), labels, Guidance(kind, 2.5))
    assert out.unique().item() == pytest.approx(reference + 2.5 * (31 - reference))
    assert denoise(LabelEcho(), torch.zeros(1, 6, 2, 2), torch.ones(1), labels).unique().item() == 31


@pytest.mark.parametrize("sampler", ["ddim", "ddpm"])
@pytest.mark.parametrize("kind", ["cfg", "superclass"])
def test_guidance_at_scale_one_is_plain_conditional_sampling(sampler, kind):
    model = randomised(UNet(SMALL, 16, classes=SCHEME), seed=1)
    schedule = Schedule(DiffusionConfig(steps=20))
    condition, mask = torch.randn(3, 3, 16, 16).clamp(-1, 1), torch.ones(3, 1, 16, 16)
    labels = (torch.tensor([0, 2, 3]), torch.tensor([0, 1, 1]))

    def run(guidance):
        return sample(model, schedule, condition, mask, sampler=sampler, steps=5, generator=torch.Generator().manual_seed(7),
                      labels=labels, guidance=guidance)[0]

    plain = run(Guidance())
    assert torch.allclose(run(Guidance(kind, 1.0)), plain, atol=1e-5)
    assert not torch.allclose(run(Guidance(kind, 3.0)), plain, atol=1e-3)


def test_guidance_names_are_checked():
    with pytest.raises(ValueError, match="unknown guidance 'classifier'"):
        Guidance("classifier")


def solid(colour, count=2, size=8):
    """Images of one RGB colour (0-255), as the model's [-1, 1] tensors."""
    return (torch.tensor(colour, dtype=torch.float32).view(1, 3, 1, 1) / 127.5 - 1).expand(count, 3, size, size)


def test_a_solid_colour_fills_the_chroma_bin_its_cb_cr_give():
    # Cb, Cr of pure red (ITU-R 601): -0.168736, 0.5 -> bins floor((v + 0.25) / 0.5 * 9), clamped to 0..8
    assert BINS == 9
    histogram = chroma_histograms(solid((255, 0, 0), count=1))[0]
    assert histogram.sum().item() == pytest.approx(1.0)
    assert histogram[1 * BINS + 8].item() == pytest.approx(1.0)  # Cb bin floor(1.46) = 1, Cr bin 8 (clamped)
    for level in (0, 37, 128, 255):  # any gray: Cb = Cr = 0, the centre bin (4.5 before flooring: not an edge)
        assert chroma_histograms(solid((level,) * 3, count=1))[0][4 * BINS + 4].item() == pytest.approx(1.0)


def test_the_colour_classifier_recovers_classes_by_colour_alone():
    green, orange = solid((62, 112, 46)), solid((176, 57, 31))
    classifier = ColourClassifier.fit([(torch.cat([green, orange]), [0, 0, 1, 1])], classes=2)
    assert classifier.predict(solid((70, 120, 50))).tolist() == [0, 0]
    assert classifier.predict(solid((172, 58, 30))).tolist() == [1, 1]
    scores = classifier.fidelity(torch.cat([green, orange]), np.array([0, 0, 0, 0]))
    assert scores["class_accuracy"] == 0.5 and scores["predicted"].tolist() == [0, 0, 1, 1]
    assert scores["colour_distance"] == pytest.approx(1.0)  # half at distance 0, half at 2 (disjoint histograms)
    with pytest.raises(UserError, match="no training images of class 1"):
        ColourClassifier.fit([(green, [0, 0])], classes=2)


def test_the_unet_counts_class_embedder_parameters_only_when_conditional():
    base = sum(p.numel() for p in UNet(SMALL, 16).parameters())
    with_classes = sum(p.numel() for p in UNet(SMALL, 16, classes=SCHEME).parameters())
    assert with_classes - base == (4 + 1 + 2 + 1) * 4 * SMALL.channels
    assert UNet(SMALL, 16, classes=dataclasses.replace(SCHEME, classes=("one",), superclass_of=(0,))).class_embed is None


def test_the_outer_chroma_bins_are_open_ended_at_both_ends():
    # pure yellow: Cb = -0.168736 - 0.331264 = -0.5 (below -0.25: bin 0), Cr = 0.5 - 0.418688 = 0.081312 -> bin 5
    # pure blue: Cb = 0.5 (above 0.25: bin 8), Cr = -0.081312 -> floor((0.168688 / 0.5) * 9) = 3
    assert chroma_histograms(solid((255, 255, 0), count=1))[0][0 * BINS + 5].item() == pytest.approx(1.0)
    assert chroma_histograms(solid((0, 0, 255), count=1))[0][8 * BINS + 3].item() == pytest.approx(1.0)


def test_the_class_means_count_every_batch_and_the_scores_say_the_target_class():
    yellow, blue = solid((255, 255, 0), count=1), solid((0, 0, 255), count=1)
    # class 0: one yellow image in each batch; class 1: two blue images in the first batch, none in the second
    classifier = ColourClassifier.fit([(torch.cat([yellow, blue, blue]), [0, 1, 1]), (yellow, [0])], classes=2)
    assert classifier.means[0][0 * BINS + 5].item() == pytest.approx(1.0)
    assert classifier.means[1][8 * BINS + 3].item() == pytest.approx(1.0)
    # three of four images have the colours of their target class; the fourth is at L1 distance 2 from its target's
    scores = classifier.fidelity(torch.cat([yellow, blue, blue, blue]), np.array([0, 1, 1, 0]))
    assert scores["class_accuracy"] == 0.75 and scores["predicted"].tolist() == [0, 1, 1, 1]
    assert scores["colour_distance"] == 0.5
    one_third = classifier.fidelity(torch.cat([yellow, blue, blue]), np.array([0, 1, 0]))
    assert one_third["class_accuracy"] == 0.6667 and one_third["colour_distance"] == 0.6667  # rounded to 4 decimals
