"""Parameter-efficient fine-tuning (FineDiffusion's rule and its relatives, LoRA): what trains, what
is stored, and that a delta checkpoint rebuilds exactly, resumes bitwise, and refuses a changed or
missing parent."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch
from torch import nn

from diffmodel.chain import MODELS
from diffmodel.checkpoints import store as checkpoint
from diffmodel.checkpoints.store import CheckpointError
from diffmodel.config import DiffusionConfig, ModelConfig, Params, TrainConfig
from diffmodel.data import synthetic
from diffmodel.data.prepared import save_domain
from diffmodel.errors import UserError
from diffmodel.model import peft
from diffmodel.model.unet import UNet
from diffmodel.training.job import Limits, TrainJob
from diffmodel.training.loop import Trainer
from tests.pipeline_fixture import FACES, one_class

MODEL = ModelConfig(channels=8, channel_mults=(1, 2), blocks_per_level=1, attention_resolutions=(8,), head_channels=8, groups=4)
DIFFUSION = DiffusionConfig(steps=50, beta_start=1e-4, beta_end=0.2)
SCHEDULE = TrainConfig(epochs=2, subset_epochs=1, batch_size=8, warmup_steps=2, session_epochs=1, seed=5)
PEFT = dataclasses.replace(SCHEDULE, epochs=3, lr=0.01, method="finediffusion_time")
LORA = dataclasses.replace(PEFT, method="lora", lora_rank=2, lora_alpha=3.0)


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Sequential(nn.Linear(2, 4), nn.SiLU(), nn.Linear(4, 4, bias=False))
        self.class_embed = nn.Embedding(3, 4)
        self.stem = nn.Conv2d(2, 3, 3)
        self.conv = nn.Conv2d(3, 4, 3)
        self.norm = nn.GroupNorm(2, 4)
        self.project = nn.Linear(4, 4, bias=False)
        self.block = nn.Sequential(nn.Conv2d(4, 4, 1, bias=False), nn.LayerNorm(4))


# written out by hand from Tiny's layers, not derived from the rule
FINEDIFFUSION = {"class_embed.weight", "embed.0.bias", "stem.bias", "conv.bias", "norm.weight", "norm.bias", "block.1.weight",
                 "block.1.bias"}  # every bias, the noise-level MLP's too
NOISE_LEVEL_MLP = {"embed.0.weight", "embed.2.weight"}
FACTORS = {f"{layer}.parametrizations.weight.0.lora_{f}" for layer in ("stem", "conv", "project", "block.0") for f in "ab"}


def test_each_rule_trains_exactly_its_tensors():
    every = {name for name, _ in Tiny().named_parameters()}
    assert peft.trainable_names(Tiny(), "full") == every
    assert peft.trainable_names(Tiny(), "finediffusion") == FINEDIFFUSION
    assert peft.trainable_names(Tiny(), "finediffusion_time") == FINEDIFFUSION | NOISE_LEVEL_MLP
    assert peft.trainable_names(Tiny(), "finediffusion_input") == FINEDIFFUSION | NOISE_LEVEL_MLP | {"stem.weight"}
    lora = peft.adaptable(Tiny(), LORA)
    assert peft.trainable_names(lora, "lora") == FINEDIFFUSION | NOISE_LEVEL_MLP | FACTORS
    assert all(name.replace("weight", "parametrizations.weight.original") in dict(lora.named_parameters())
               for name in ("stem.weight", "conv.weight", "project.weight", "block.0.weight"))  # kept, frozen
    with pytest.raises(ValueError, match="peft"):
        peft.trainable_names(Tiny(), "peft")


def test_lora_starts_at_its_parent_and_its_update_is_the_scaled_low_rank_product():
    layer = nn.Conv2d(3, 5, 3)
    before = layer.weight.detach().clone()
    peft.adaptable(nn.Sequential(layer), LORA)
    assert torch.equal(layer.weight, before)  # B starts at zero
    update = layer.parametrizations.weight[0]
    with torch.no_grad():
        update.lora_b.copy_(torch.arange(10.0).view(5, 2))
    a, b = update.lora_a.detach(), update.lora_b.detach()
    expected = before + 1.5 * torch.einsum("or,rk->ok", b, a).reshape(5, 3, 3, 3)  # alpha 3 / rank 2
    assert update.lora_a.shape == (2, 27)
    torch.testing.assert_close(layer.weight, expected)


def test_lora_shares_are_counted_against_the_networks_own_parameters():
    model = peft.adaptable(UNet(Params().model, 32), dataclasses.replace(Params().adapt, method="lora"))
    plain = UNet(Params().model, 32)
    share = peft.trainable_share(model, "lora")
    rank = Params().adapt.lora_rank
    factors = sum(rank * (m.weight[0].numel() + m.weight.shape[0]) for _, m in peft.lora_targets(plain))
    assert share.total == sum(p.numel() for p in plain.parameters())
    assert share.trainable == peft.trainable_share(plain, "finediffusion_time").trainable + factors


def test_the_default_unets_share_is_counted_from_its_tensors():
    share = peft.trainable_share(UNet(Params().model, 32), "finediffusion_time")
    model = UNet(Params().model, 32)
    biases = sum(p.numel() for n, p in model.named_parameters() if n.endswith(".bias"))
    norm_weights = sum(m.weight.numel() for m in model.modules() if isinstance(m, nn.GroupNorm))
    embed_weights = sum(p.numel() for n, p in model.embed.named_parameters() if n.endswith("weight"))
    assert share.trainable == biases + norm_weights + embed_weights
    assert share.total == sum(p.numel() for p in model.parameters())
    assert 1 < share.percent < 5  # a 0.3M-parameter U-Net: far more than FineDiffusion's 1.77 % of DiT-XL


def test_frozen_parameters_get_no_gradient_and_share_the_ema_copy():
    model = Tiny()
    trainable = peft.freeze(model, "finediffusion_time")
    ema = Tiny().requires_grad_(False)
    ema.load_state_dict(model.state_dict())
    peft.share_frozen(ema, model)
    assert ema.conv.weight is model.conv.weight and ema.conv.bias is not model.conv.bias
    assert {id(p) for p in trainable} == {id(p) for p in model.parameters() if p.requires_grad}
    model.conv(torch.ones(1, 3, 3, 3)).sum().backward()
    assert model.conv.weight.grad is None and model.conv.bias.grad is not None
    # weights + EMA copies of trainable ones + grad and two Adam moments per trainable one
    weights = sum(p.numel() for p in model.parameters()) * 4
    trained = sum(p.numel() for p in trainable) * 4
    assert peft.training_state_bytes(model, ema) == weights + trained + 3 * trained


# ----------------------------------------------------------------------------- training

@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """A trained micro base (faces inpainting) and faces data, shared by the tests below."""
    root = tmp_path_factory.mktemp("peft")
    splits = {split: synthetic.render_faces(count, 16, seed) for seed, (split, count) in
              enumerate((("train", 32), ("val", 8), ("test", 8)))}
    save_domain(root / "data", splits, one_class(splits), 2, FACES, {"source": "synthetic"})
    Trainer(job(root, "base", "inpainting", SCHEDULE, init=None), Limits(quiet=True), log=lambda m: None).run()
    return root


def job(root: Path, name: str, task: str, schedule: TrainConfig, init: str | None = "base") -> TrainJob:
    return TrainJob(name=name, task=task, domain="faces", data_dir=root / "data", out_dir=root / "models" / name,
                    model=MODEL, diffusion=DIFFUSION, schedule=schedule, init=root / "models" / init if init else None)


def train(root: Path, name: str, schedule: TrainConfig = PEFT, limits: Limits = Limits(quiet=True), init: str = "base") -> Trainer:
    trainer = Trainer(job(root, name, "colorization", schedule, init), limits, log=lambda m: None)
    trainer.run()
    return trainer


@pytest.fixture(scope="module")
def adapted(workspace) -> Trainer:
    return train(workspace, "adapted")


def test_peft_changes_only_the_trainable_tensors_and_stores_only_them(workspace, adapted):
    parent, _ = checkpoint.load_weights(workspace / "models/base")
    rebuilt, meta = checkpoint.load_weights(workspace / "models/adapted")
    names = peft.trainable_names(UNet(MODEL, 16), "finediffusion_time")
    for key, tensor in rebuilt["ema"].items():
        if key in names:
            assert not torch.equal(tensor, parent["ema"][key]), f"{key} did not train"
        else:
            assert torch.equal(tensor, parent["ema"][key]), f"frozen {key} changed"
    stored = checkpoint.read_weights(workspace / "models/adapted" / checkpoint.WEIGHTS)["ema"]
    assert set(stored) == names
    state = checkpoint.load_state(workspace / "models/adapted", meta)
    assert set(state["online"]) == set(state["ema"]) == names
    assert len(state["optimizer"]["state"]) == len(names)  # no Adam moments for frozen tensors
    # safetensors: an 8-byte header length, the JSON header (names, shapes, offsets), then the tensors' bytes
    raw = (workspace / "models/adapted" / checkpoint.WEIGHTS).read_bytes()
    tensor_bytes = sum(t.numel() * t.element_size() for t in stored.values())
    assert len(raw) == 8 + int.from_bytes(raw[:8], "little") + tensor_bytes
    assert meta.method == "finediffusion_time" and meta.stores == "delta"
    assert meta.trainable["trainable_parameters"] == sum(t.numel() for t in stored.values())


def test_the_rebuilt_weights_are_the_trained_model_exactly(workspace, adapted):
    rebuilt, _ = checkpoint.load_weights(workspace / "models/adapted")
    in_memory = adapted.ema.state_dict()
    assert rebuilt["ema"].keys() == in_memory.keys()
    for key in in_memory:
        assert torch.equal(rebuilt["ema"][key], in_memory[key]), key


def test_a_peft_child_of_a_peft_model_rebuilds_through_both_deltas(workspace, adapted):
    grandchild = train(workspace, "grandchild", dataclasses.replace(PEFT, epochs=1), init="adapted")
    rebuilt, meta = checkpoint.load_weights(workspace / "models/grandchild")
    assert meta.parent.name == "adapted"
    for key, tensor in grandchild.ema.state_dict().items():
        assert torch.equal(rebuilt["ema"][key], tensor), key


def test_an_interrupted_peft_run_resumes_bitwise(workspace, adapted):
    train(workspace, "resumed", limits=Limits(max_sessions=1, quiet=True))
    assert not checkpoint.read_meta(workspace / "models/resumed").complete
    train(workspace, "resumed")
    resumed, meta = checkpoint.load_weights(workspace / "models/resumed")
    reference, _ = checkpoint.load_weights(workspace / "models/adapted")
    assert meta.resumes == 1
    for key in reference["ema"]:
        assert torch.equal(resumed["ema"][key], reference["ema"][key]), key


def test_a_changed_or_missing_parent_is_a_one_line_error_naming_both(workspace, adapted, tmp_path):
    copy = tmp_path / "models"
    shutil.copytree(workspace / "models/adapted", copy / "adapted")
    meta = json.loads((copy / "adapted/meta.json").read_text())
    meta["parent"]["path"] = str(tmp_path / "elsewhere/base")
    (copy / "adapted/meta.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError) as missing:
        checkpoint.load_weights(copy / "adapted")
    assert "\n" not in str(missing.value) and "adapted" in str(missing.value) and "elsewhere/base is missing" in str(missing.value)

    # a sibling of the recorded name is found (a models/ folder moved), and its hash is checked
    shutil.copytree(workspace / "models/base", copy / "base")
    checkpoint.load_weights(copy / "adapted")
    # the recorded path exists but holds other weights: the sibling that matches is the parent
    shutil.copytree(workspace / "models/base", tmp_path / "elsewhere/base")
    shutil.copy(workspace / "models/adapted/meta.json", tmp_path / "elsewhere/base/meta.json")
    checkpoint.load_weights(copy / "adapted")
    shutil.rmtree(tmp_path / "elsewhere")
    other = train(workspace, "other_base", dataclasses.replace(SCHEDULE, epochs=1, method="full"), init="base")
    assert other.ema is not None
    shutil.rmtree(copy / "base")
    shutil.copytree(workspace / "models/other_base", copy / "base")
    with pytest.raises(CheckpointError) as changed:
        checkpoint.load_weights(copy / "adapted")
    message = str(changed.value)
    assert "\n" not in message and f"{copy / 'adapted'}" in message and f"{copy / 'base'}" in message
    assert "retrain it (`dvc repro train@adapted`)" in message


def test_export_writes_a_standalone_full_model(workspace, adapted, tmp_path):
    checkpoint.export(workspace / "models/adapted", tmp_path / "exported")
    shutil.copytree(tmp_path / "exported", tmp_path / "alone/exported")  # no parent anywhere near it
    standalone, meta = checkpoint.load_weights(tmp_path / "alone/exported")
    rebuilt, _ = checkpoint.load_weights(workspace / "models/adapted")
    assert meta.stores == "full" and meta.exported_from["path"] == str(workspace / "models/adapted")
    assert standalone["ema"].keys() == rebuilt["ema"].keys()
    assert all(torch.equal(standalone["ema"][k], rebuilt["ema"][k]) for k in rebuilt["ema"])
    for taken in ("adapted", "base"):  # never over a model, least of all the parent
        with pytest.raises(CheckpointError, match="already holds a model"):
            checkpoint.export(workspace / "models/adapted", workspace / "models" / taken)


def test_switching_the_method_retrains_and_says_why(workspace, adapted):
    messages = []
    shutil.copytree(workspace / "models/adapted", workspace / "models/switched")
    Trainer(job(workspace, "switched", "colorization", dataclasses.replace(PEFT, method="full")),
            Limits(quiet=True), log=messages.append).run()
    assert any("training params changed (method)" in m for m in messages), messages
    assert checkpoint.read_meta(workspace / "models/switched").stores == "full"


def test_peft_from_scratch_is_refused(workspace):
    with pytest.raises(UserError, match="fine-tunes a trained parent"):
        Trainer(job(workspace, "nothing", "colorization", PEFT, init=None))


def test_twins_take_peft_twins_method_and_lr_and_models_from_scratch_always_train_fully():
    params = dataclasses.replace(Params(), adapt=dataclasses.replace(Params().adapt, method="lora"))
    assert MODELS["colorize_faces"].schedule(params).method == "lora"  # adapt.method chooses for the chain
    assert MODELS["scratch_colorization"].schedule(params).method == "full"
    twin = MODELS["peft_faces"].schedule(Params())
    assert (twin.method, twin.lr) == (Params().peft_twins.method, Params().peft_twins.lr)
    assert twin.epochs == Params().adapt.epochs
    assert MODELS["colorize_faces"].schedule(Params()).method == "full"
    for name in ("peft_faces", "peft_landscapes"):  # only the method differs from the full twin
        twin = MODELS[MODELS[name].twin_of]
        assert (MODELS[name].task, MODELS[name].domain, MODELS[name].parent) == (twin.task, twin.domain, twin.parent)


# ----------------------------------------------------------------------------- LoRA

@pytest.fixture(scope="module")
def lora(workspace) -> Trainer:
    return train(workspace, "lora", LORA)


def test_lora_stores_its_factors_and_loads_merged_into_plain_weights(workspace, lora):
    stored = checkpoint.read_weights(workspace / "models/lora" / checkpoint.WEIGHTS)["ema"]
    assert {k for k in stored if "lora_" in k} and not {k for k in stored if k.endswith(".original")}
    assert not {k for k in stored if "parametrizations" in k}  # short names: X.lora_a, X.lora_b
    rebuilt, meta = checkpoint.load_weights(workspace / "models/lora")
    assert meta.method == "lora" and meta.stores == "delta"
    assert set(rebuilt["ema"]) == set(UNet(MODEL, 16).state_dict())  # plain keys: any consumer loads them
    assert meta.trainable["trainable_parameters"] == sum(t.numel() for t in stored.values())


def test_a_lora_delta_written_with_the_training_names_still_loads(workspace, lora, tmp_path):
    # before 2026-12-02 a delta file kept torch's parametrize path for the factors
    from safetensors.torch import save as save_safetensors

    shutil.copytree(workspace / "models/base", tmp_path / "base")
    shutil.copytree(workspace / "models/lora", tmp_path / "lora")
    path = tmp_path / "lora" / checkpoint.WEIGHTS
    stored = checkpoint.read_weights(path)["ema"]
    long_names = {key.replace(".lora_", ".parametrizations.weight.0.lora_"): value for key, value in stored.items()}
    assert long_names.keys() != stored.keys()
    path.write_bytes(save_safetensors(long_names))
    meta = json.loads((tmp_path / "lora/meta.json").read_text())
    meta["weights_sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    (tmp_path / "lora/meta.json").write_text(json.dumps(meta))
    old, _ = checkpoint.load_weights(tmp_path / "lora")
    new, _ = checkpoint.load_weights(workspace / "models/lora")
    assert old["ema"].keys() == new["ema"].keys()
    for key in new["ema"]:
        assert torch.equal(old["ema"][key], new["ema"][key]), key


def test_the_merged_lora_model_computes_what_the_unmerged_one_did(workspace, lora):
    rebuilt, _ = checkpoint.load_weights(workspace / "models/lora")
    merged = UNet(MODEL, 16)
    merged.load_state_dict(rebuilt["ema"])
    generator = torch.Generator().manual_seed(0)
    x, gamma = torch.randn(4, 6, 16, 16, generator=generator), torch.rand(4, generator=generator)
    with torch.no_grad():
        torch.testing.assert_close(merged.eval()(x, gamma), lora.ema.eval()(x, gamma), rtol=1e-5, atol=1e-6)
        plain = UNet(MODEL, 16)
        plain.load_state_dict(checkpoint.load_weights(workspace / "models/base")[0]["ema"])
        assert not torch.allclose(plain.eval()(x, gamma), merged(x, gamma), atol=1e-4)  # it did train


def test_an_interrupted_lora_run_resumes_bitwise(workspace, lora):
    train(workspace, "lora_resumed", LORA, limits=Limits(max_sessions=1, quiet=True))
    assert not checkpoint.read_meta(workspace / "models/lora_resumed").complete
    train(workspace, "lora_resumed", LORA)
    resumed, meta = checkpoint.load_weights(workspace / "models/lora_resumed")
    reference, _ = checkpoint.load_weights(workspace / "models/lora")
    assert meta.resumes == 1
    for key in reference["ema"]:
        assert torch.equal(resumed["ema"][key], reference["ema"][key]), key


def test_lora_rank_is_fingerprinted_only_under_lora(workspace, lora):
    messages = []
    shutil.copytree(workspace / "models/lora", workspace / "models/lora_rank3")
    Trainer(job(workspace, "lora_rank3", "colorization", dataclasses.replace(LORA, lora_rank=3)),
            Limits(quiet=True), log=messages.append).run()
    assert any("training params changed (lora_rank)" in m for m in messages), messages
    messages.clear()  # a rank setting means nothing to another method: its model is kept
    Trainer(job(workspace, "adapted", "colorization", dataclasses.replace(PEFT, lora_rank=3)),
            Limits(quiet=True), log=messages.append).run()
    assert not any("changed" in m for m in messages), messages


def test_a_lora_delta_of_the_pipelines_twins_stores_within_10_percent_of_its_numbers(workspace, lora):
    # params.yaml's twins (== Params(), tests/test_config.py): the default U-Net with its LoRA factors
    params = Params()
    schedule = MODELS["peft_faces"].schedule(params)
    model = peft.adaptable(UNet(params.model, params.data.image_size), schedule)
    tensors = peft.delta(model.state_dict(), peft.stored_names(model, schedule.method))
    meta = checkpoint.read_meta(workspace / "models/lora")  # a LoRA delta's metadata (names, classes, parent)
    content = checkpoint.encode_weights(tensors, meta)
    numbers = sum(t.numel() * t.element_size() for t in tensors.values())
    assert schedule.method == "lora" and len(content) <= 1.10 * numbers, len(content) / numbers


def test_lora_a_starts_as_nn_linear_initialises_a_weight_and_in_the_weights_dtype():
    """Kaiming uniform with a = sqrt(5), nn.Linear's (and HF peft's) default: uniform on +-1 / sqrt(fan_in)."""
    weight = torch.zeros(6, 16, 3, 3, dtype=torch.float64)  # fan_in 16 * 3 * 3 = 144
    update = peft.LowRankUpdate(weight, rank=8, alpha=8.0)
    assert update.lora_a.shape == (8, 144) and update.lora_b.shape == (6, 8)
    assert update.lora_a.dtype == update.lora_b.dtype == torch.float64
    bound = 1 / 144**0.5
    assert 0.97 * bound < update.lora_a.abs().max().item() <= bound  # 1152 draws come within 0.3 % of the bound
    assert not update.lora_b.any()


def test_the_trainable_share_meta_json_records_has_its_documented_keys():
    share = peft.TrainableShare("lora", 3, 7)
    assert share.as_dict() == {"method": "lora", "trainable_parameters": 3, "parameters": 7, "trainable_percent": 42.857}
    assert peft.trainable_share(nn.Linear(4, 2), "finediffusion").as_dict() == {
        "method": "finediffusion", "trainable_parameters": 2, "parameters": 10, "trainable_percent": 20.0}  # the bias


def test_an_unknown_method_is_refused_naming_every_method():
    with pytest.raises(ValueError, match=r"^unknown fine-tuning method 'bitfit' \(choose from full, finediffusion, "
                                         r"finediffusion_time, finediffusion_input, lora\)$"):
        peft.trainable_names(nn.Linear(4, 2), "bitfit")
