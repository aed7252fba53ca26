"""Semantic distillation: config, teachers, time alignment, precomputed features, training, export."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from codec.checkpoint import WEIGHTS_NAME
from codec.config import ConfigError, from_dict
from codec.train.config import TrainConfig
from codec.train.data import DataError
from codec.train.semantic.align import SemanticHead, align_frames
from codec.train.semantic.config import SemanticConfig
from codec.train.semantic.teacher import TeacherError, load_teacher, random_teacher
from tests.train.conftest import debug_preset

RAMP_RATE = 20.0  # frames per second of the ramp teacher: not the codec's 100


def ramp(wav: torch.Tensor) -> torch.Tensor:
    """A teacher at 20 frames/s whose feature is each frame's centre time: ``[B, F, 2]``."""
    frames = int(wav.shape[-1] / 16000 * RAMP_RATE)
    t = (torch.arange(frames, dtype=torch.float32) + 0.5) / RAMP_RATE
    return torch.stack([t, -t], -1).expand(wav.shape[0], -1, -1).clone()


def two_layers(wav: torch.Tensor) -> list[torch.Tensor]:
    """A callable returning per-layer outputs (layer 2 = layer 1 doubled)."""
    base = ramp(wav)
    return [base, 2 * base]


def tiny_wavlm() -> torch.nn.Module:
    """An argument-less factory, as an import path names it."""
    return random_teacher("wavlm", dim=32, num_layers=2, seed=3)


def _preset(audio_dir: Path, val_dir: Path, steps: int = 3, **semantic):
    preset = debug_preset(audio_dir, val_dir, max_steps=steps)
    logging = dataclasses.replace(preset.train.logging, every_n_steps=1, val_every_n_steps=1000)
    disc = dataclasses.replace(preset.train.discriminator, start_step=None)
    cfg = SemanticConfig(**semantic) if semantic else SemanticConfig()
    train = dataclasses.replace(preset.train, logging=logging, discriminator=disc, semantic=cfg)
    return type(preset)(preset.model, train)


def _train(preset, run_dir: Path):
    from codec.train.runner import RunOptions, train

    return train(preset, RunOptions(run_dir=run_dir, accelerator="cpu", progress_bar=False))


# ----------------------------------------------------------------------------- config
def test_config_section_parses_and_rejects_bad_values():
    assert not TrainConfig().semantic.enabled
    cfg = from_dict(TrainConfig, {"semantic": {"teacher": "WAVLM_BASE", "layer": 6, "loss": "l1"}}, "train")
    assert cfg.semantic.enabled and cfg.semantic.layer == 6 and cfg.semantic.weight == 1.0
    bads = ({"layer": 0}, {"weight": -1.0}, {"loss": "mse"}, {"frame_rate": 0.0}, {"teachr": "x"})
    bads += ({"head": "mlp"}, {"head_kernel": 4}, {"head_kernel": 0}, {"head_width": 0})
    for bad in bads:
        with pytest.raises(ConfigError, match="semantic"):
            from_dict(TrainConfig, {"semantic": {"teacher": "WAVLM_BASE", **bad}}, "train")
    with pytest.raises(ConfigError, match="freeze"):
        from_dict(TrainConfig, {"freeze": ["quantizer"], "semantic": {"teacher": "X"}}, "train")


# ----------------------------------------------------------------------------- alignment
def test_alignment_resamples_a_teacher_at_another_frame_rate():
    teacher = load_teacher(ramp, frame_rate=RAMP_RATE)
    wav = torch.zeros(2, 16000)  # 1 s: 20 teacher frames, 100 codec frames (hop 160)
    aligned = teacher.frame_features(wav, 16000, 100.0, 100)
    centres = (torch.arange(100) + 0.5) / 100
    # Inside the teacher's first and last frame centres the interpolation is exact; outside,
    # the nearest frame holds.
    expected = centres.clamp(0.5 / RAMP_RATE, 19.5 / RAMP_RATE)
    torch.testing.assert_close(aligned[0, :, 0], expected)
    torch.testing.assert_close(aligned[1, :, 1], -expected)
    # An offset into a longer sequence reads the same times there.
    later = align_frames(ramp(torch.zeros(1, 32000)), RAMP_RATE, 100.0, 50, offset=0.4)
    torch.testing.assert_close(later[0, :, 0], (0.4 + (torch.arange(50) + 0.5) / 100))


def test_random_wavlm_frames_land_on_the_codec_grid():
    teacher = load_teacher(tiny_wavlm(), layer=1)
    assert teacher.frame_rate == 50.0 and teacher.dim == 32  # 16 kHz / 320-sample stride
    wav = torch.randn(1, 16000) * 0.1
    feats = teacher.features(wav)  # 49 frames at 50 Hz
    aligned = teacher.frame_features(wav, 16000, 100.0, 100)
    # Codec frame 2k+1 (centre 10k + 15 ms) = 3/4 of teacher frame k + 1/4 of frame k+1.
    k = torch.arange(0, 48)
    torch.testing.assert_close(aligned[0, 2 * k + 1], 0.75 * feats[0, k] + 0.25 * feats[0, k + 1])
    # A codec at 8 kHz gets the same features after resampling its input.
    low = teacher.frame_features(torch.nn.functional.avg_pool1d(wav[None], 2)[0], 8000, 100.0, 100)
    assert low.shape == aligned.shape


# ----------------------------------------------------------------------------- teachers
def test_teacher_sources(tmp_path, monkeypatch):
    model = tiny_wavlm()
    wav = torch.randn(2, 8000) * 0.1
    layer1 = model.extract_features(wav, None, 1)[0][-1]
    by_path = load_teacher("tests.train.test_semantic:tiny_wavlm", layer=1)
    torch.testing.assert_close(by_path.features(wav), layer1)
    assert by_path.source == "import:tests.train.test_semantic:tiny_wavlm"
    script = tmp_path / "teacher.pt"
    torch.jit.script(model).save(str(script))
    scripted = load_teacher(str(script), layer=1)
    torch.testing.assert_close(scripted.features(wav), layer1)
    assert scripted.source.startswith("torchscript:")
    listed = load_teacher("tests.train.test_semantic:two_layers", layer=2)
    torch.testing.assert_close(listed.features(wav), 2 * ramp(wav))
    with pytest.raises(TeacherError, match="num_layers"):
        load_teacher(model, layer=3).features(wav)
    with pytest.raises(TeacherError, match="single tensor"):
        load_teacher(ramp, layer=2).features(wav)
    for bad in ("NO_SUCH_BUNDLE", "tests.train.nothing:here", str(tmp_path / "..")):
        with pytest.raises(TeacherError):
            load_teacher(bad)
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    with pytest.raises(TeacherError, match="TorchScript"):
        load_teacher(str(tmp_path / "junk.pt"))
    # A bundle name goes through torchaudio's bundle (its download replaced: no network here).
    import torchaudio.pipelines as pipelines

    monkeypatch.setattr(type(pipelines.WAVLM_BASE), "get_model", lambda self, **kw: tiny_wavlm())
    bundle = load_teacher("wavlm_base", layer=2)
    assert bundle.source == "torchaudio:WAVLM_BASE" and bundle.sample_rate == 16000
    assert bundle.frame_rate == 50.0 and bundle.dim == 32


# ----------------------------------------------------------------------------- store
def test_precomputed_features_equal_on_the_fly_ones(tmp_path, audio_dir):
    from codec.train.config import DataConfig
    from codec.train.data import RandomCrops, find_audio, normalize_loudness, read_audio
    from codec.train.semantic.store import FeatureCrops, FeatureStore, precompute_features

    calls = []
    model = tiny_wavlm()

    def counted(wav: torch.Tensor) -> torch.Tensor:
        calls.append(wav.shape)
        return model.extract_features(wav, None, 2)[0][-1]

    teacher = load_teacher(counted, source="counted-wavlm")
    files = find_audio([audio_dir])
    store = FeatureStore(tmp_path / "feats", teacher.identity, 16000, -20.0)
    first = precompute_features(teacher, files, store)
    assert (first.computed, first.reused) == (len(files), 0) and len(calls) == len(files)
    again = precompute_features(teacher, files, store)
    assert (again.computed, again.reused) == (0, len(files)) and len(calls) == len(files)
    crops = RandomCrops(files, DataConfig(), 16000, 8000, seed=1)
    items = FeatureCrops(crops, store, 100.0, 50)
    for key in range(4):
        wav, feats = items[key]
        crop = crops.draw(key)
        torch.testing.assert_close(wav, crops[key])
        full = normalize_loudness(read_audio(crop.file, 0, crop.file.num_samples, 16000), -20.0)
        on_the_fly = teacher.features(full[None])
        rate = teacher.rate_of(on_the_fly, full.shape[-1])
        expected = align_frames(on_the_fly, rate, 100.0, 50, crop.start / crop.file.sample_rate)
        torch.testing.assert_close(feats, expected[0], rtol=1e-5, atol=1e-5)
    other = FeatureStore(tmp_path / "feats", "another teacher", 16000, -20.0)
    assert other.path(files[0]) != store.path(files[0])
    with pytest.raises(DataError, match="no teacher features"):
        other.read(files[0], 0.0, 100.0, 10)
    moved = dataclasses.replace(files[0], num_samples=files[0].num_samples - 1)
    with pytest.raises(DataError, match="another version"):
        store.read(moved, 0.0, 100.0, 10)


def test_normalised_targets_ignore_a_common_offset():
    torch.manual_seed(0)
    first, target = torch.randn(2, 10, 8), torch.randn(2, 10, 16)
    head = SemanticHead(8, 16, "cosine", normalize=True).train()
    torch.testing.assert_close(head(first, target), head(first, 3 * target + 50), rtol=1e-4, atol=1e-4)
    raw = SemanticHead(8, 16, "cosine", normalize=False)
    # Raw targets: an offset along the predictions' mean direction is nearly all the loss sees.
    offset = 50 * torch.nn.functional.normalize(raw.proj(first).mean((0, 1)).detach(), dim=0)
    assert raw(first, target) - raw(first, target + offset) > 0.2
    torch.testing.assert_close(head(first, target), head(first, target + offset), rtol=1e-4, atol=1e-4)
    l1 = SemanticHead(8, 16, "l1", normalize=False)
    torch.testing.assert_close(l1(first, target), (l1.proj(first) - target).abs().mean())


def test_conv_head_reads_its_neighbours_and_no_further():
    torch.manual_seed(0)
    head = SemanticHead(8, 16, kind="conv", kernel=5, width=12).eval()
    first = torch.randn(1, 20, 8)
    moved = first.clone()
    moved[0, 10] += 1.0
    changed = (head.predict(moved) - head.predict(first)).abs().amax(-1)[0] > 0
    assert changed.nonzero().flatten().tolist() == [8, 9, 10, 11, 12]  # frames 10 ± 2
    linear = SemanticHead(8, 16).eval()
    changed = (linear.predict(moved) - linear.predict(first)).abs().amax(-1)[0] > 0
    assert changed.nonzero().flatten().tolist() == [10]


def _fit(head: SemanticHead, first: torch.Tensor, target: torch.Tensor, steps: int = 300) -> float:
    opt = torch.optim.Adam(head.parameters(), 1e-2)
    for _ in range(steps):
        opt.zero_grad()
        loss = head(first, target)
        loss.backward()
        opt.step()
    with torch.no_grad():
        return float(head(first, target))


def test_conv_head_learns_what_a_frame_alone_cannot_tell():
    """Teacher frames that depend on the previous and next codewords (as a transformer's do):
    the linear head cannot predict them from one frame, the conv head can."""
    torch.manual_seed(0)
    codewords = torch.randn(8, 6)
    first = codewords[torch.randint(8, (4, 40))]  # [B, F, 6]: one of 8 codewords per frame
    mix = torch.randn(6, 10), torch.randn(6, 10)
    target = torch.zeros(4, 40, 10)
    target[:, 1:-1] = first[:, :-2] @ mix[0] + first[:, 2:] @ mix[1]
    linear = _fit(SemanticHead(6, 10, normalize=False), first, target)
    conv = _fit(SemanticHead(6, 10, normalize=False, kind="conv", kernel=3, width=32), first, target)
    assert linear > 0.5 and conv < 0.1, (linear, conv)


# ----------------------------------------------------------------------------- training
TEACHER = "tests.train.test_semantic:tiny_wavlm"


@dataclasses.dataclass
class Runs:
    off: object
    zero: object
    on: object
    root: Path


@pytest.fixture(scope="module")
def runs(tmp_path_factory, audio_dir, val_dir) -> Runs:
    """Three 3-step runs from the same seed: option off; logged only (weight 0, the teacher on
    the crops); trained on (weight 1, precomputed features)."""
    root = tmp_path_factory.mktemp("semantic")
    off = _train(_preset(audio_dir, val_dir), root / "off")
    zero = _train(_preset(audio_dir, val_dir, teacher=TEACHER, weight=0.0), root / "zero")
    features = str(root / "features")
    on = _train(_preset(audio_dir, val_dir, teacher=TEACHER, features_dir=features), root / "on")
    return Runs(off, zero, on, root)


def _generator(module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in module.generator.state_dict().items()}


def test_option_off_or_weight_zero_trains_exactly_as_before(runs):
    off = runs.off
    assert off.semantic is None
    assert not any("semantic" in k for k in off.state_dict())
    params = {id(p) for group in off.optimizers()[0].optimizer.param_groups for p in group["params"]}
    assert params == {id(p) for p in off.generator.parameters() if p.requires_grad}
    ref, logged, trained = _generator(off), _generator(runs.zero), _generator(runs.on)
    assert all(torch.equal(ref[k], logged[k]) for k in ref)  # logged only: the same steps
    assert not all(torch.equal(ref[k], trained[k]) for k in ref)  # trained on: it moves the codec
    # Same crops in all three runs: only the semantic term differs (the zero run's head is
    # still its initialisation, the trained one's has moved).
    assert not torch.equal(runs.on.semantic.head.proj.weight, runs.zero.semantic.head.proj.weight)


def test_precomputed_run_trains_and_exports_without_the_projection(runs, tmp_path):
    from codec.checkpoint import load_model
    from codec.train.export import export_checkpoint
    from tests.train.conftest import scalars

    files = list((runs.root / "features").glob("*.safetensors"))
    assert len(files) == len(runs.on.trainer.datamodule.train_files)
    losses = [v for _, v in scalars(runs.root / "on", "train/loss/semantic")]
    assert len(losses) == 3 and all(0.0 <= v <= 2.0 for v in losses)
    last = runs.root / "on" / "checkpoints" / "last.ckpt"
    ckpt = torch.load(last, weights_only=True)
    assert {"semantic.head.mix.weight", "semantic.head.proj.weight"} <= set(ckpt["state_dict"])  # conv head
    assert not any(k.startswith("semantic.teacher") for k in ckpt["state_dict"])
    out = export_checkpoint(last, tmp_path / "model")
    exported = load_file(str(out.directory / WEIGHTS_NAME))
    assert not any("semantic" in k for k in exported)
    assert set(exported) == set(runs.on.generator.state_dict())
    load_model(out.directory)


def test_bad_teacher_is_a_one_line_usage_error(tmp_path, capsys, audio_dir, val_dir):
    import yaml

    from codec.config import load_preset
    from codec.train import cli

    preset = load_preset("debug")
    preset["train"]["semantic"] = {"teacher": "NO_SUCH_BUNDLE"}
    path = tmp_path / "semantic.yaml"
    path.write_text(yaml.safe_dump(preset))
    parser = cli.argparse.ArgumentParser(prog="codec")
    cli.add_train_parser(parser.add_subparsers(dest="command"))
    argv = ["train", "--config", str(path), "--data", str(audio_dir), "--val-data", str(val_dir)]
    args = parser.parse_args([*argv, "--run-dir", str(tmp_path / "run"), "--no-progress"])
    assert cli.run_train(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "NO_SUCH_BUNDLE" in err and "Traceback" not in err


def test_first_level_is_the_first_codebooks_codeword():
    from codec.config import CodecConfig
    from codec.model import build_model
    from codec.train.config import load_train_preset

    torch.manual_seed(0)
    model = build_model(load_train_preset("debug").model).train()
    assert isinstance(model.cfg, CodecConfig)
    latent = torch.randn(64, model.cfg.latent_dim, requires_grad=True)
    q = model.quantizer(latent)
    with torch.no_grad():
        torch.testing.assert_close(q.first_level, model.quantizer.decode(q.codes[:, :1]))
    # Straight-through: its gradient reaches the encoder's latent.
    q.first_level.sum().backward()
    assert latent.grad is not None and latent.grad.abs().sum() > 0


def test_the_teacher_stays_out_of_the_module_tree():
    from codec.train.config import load_train_preset
    from codec.train.semantic.objective import SemanticObjective

    model = load_train_preset("debug").model
    objective = SemanticObjective(model, SemanticConfig(teacher=TEACHER, layer=1, head="linear"))
    assert {k.split(".")[0] for k in objective.state_dict()} == {"head"}
    assert sum(p.numel() for p in objective.parameters()) == (model.latent_dim + 1) * 32
    conv = SemanticObjective(
        model, SemanticConfig(teacher=TEACHER, layer=1, head="conv", head_kernel=3, head_width=8)
    )
    assert {k.split(".")[1] for k in conv.state_dict()} == {"mix", "proj", "norm"}
    assert sum(p.numel() for p in conv.parameters()) == (3 * model.latent_dim + 1) * 8 + (8 + 1) * 32
    assert objective.teacher.module is not None
    assert not any(p.requires_grad for p in objective.teacher.module.parameters())
