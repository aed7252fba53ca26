"""End-to-end training on the debug preset: loss falls, resume, export, logging."""

from __future__ import annotations

import copy
import dataclasses

import lightning as L
import pytest
import torch

from codec.checkpoint import load_model
from codec.train.export import export_checkpoint
from codec.train.runner import RunOptions, build_trainer, train

from .conftest import debug_preset, scalars

# Hints Lightning prints for every manual-optimisation run; the runner silences them outside pytest.
pytestmark = [
    pytest.mark.filterwarnings("ignore:.*no pre-optimization state was saved"),
    pytest.mark.filterwarnings("ignore:.*your dataloader is not resumable"),
]


def test_debug_run_mel_loss_falls(debug_run):
    mel = [v for _, v in scalars(debug_run.run_dir, "train/loss/mel")]
    assert len(mel) >= 45
    first, last = sum(mel[:5]) / 5, sum(mel[-5:]) / 5
    assert last < 0.9 * first, (first, last)


def test_debug_run_writes_checkpoints_and_logs(debug_run):
    ckpts = sorted(p.name for p in (debug_run.run_dir / "checkpoints").glob("*.ckpt"))
    assert ckpts == ["last.ckpt", "step0000025.ckpt", "step0000050.ckpt"]
    for tag in (
        "val/mel_distance",
        "val/mel_distance_2cb",
        "val/si_sdr",
        "val/pesq_wb",
        "val/codebook_entropy/0",
        "train/codebook_entropy/3",
        "train/loss/adversarial",
        "train/loss/feature",
        "train/loss/discriminator",
    ):
        assert scalars(debug_run.run_dir, tag), tag
    adv_steps = [s for s, _ in scalars(debug_run.run_dir, "train/loss/adversarial")]
    assert min(adv_steps) >= debug_run.preset.train.discriminator.start_step - 1


def test_step_count_is_generator_steps(debug_run):
    ckpt = torch.load(debug_run.run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["global_step"] == 50  # the discriminator steps do not count


class _Crash(RuntimeError):
    pass


class _StopAt(L.Callback):
    """Simulates a crash right after ``step`` generator steps."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer, *args) -> None:
        if trainer.global_step >= self.step:
            raise _Crash(f"simulated crash at step {self.step}")


class _CaptureStart(L.Callback):
    def on_train_start(self, trainer, module) -> None:
        self.step = trainer.global_step
        self.opt_state = [copy.deepcopy(o.state_dict()) for o in trainer.optimizers]


def _fit(preset, run_dir, callbacks=(), resume=None):
    from codec.train.data import AudioDataModule
    from codec.train.module import CodecTrainingModule

    L.seed_everything(preset.train.seed, verbose=False)
    options = RunOptions(run_dir=run_dir, accelerator="cpu", progress_bar=False)
    trainer = build_trainer(preset, options)
    trainer.callbacks.extend(callbacks)
    module = CodecTrainingModule(preset.model, preset.train)
    data = AudioDataModule(preset.train.data, preset.model.sample_rate, preset.model.hop_length)
    trainer.fit(module, datamodule=data, ckpt_path=resume)
    return trainer, module


@pytest.mark.slow
def test_interrupted_run_resumes_exactly(debug_run, tmp_path, audio_dir, val_dir):
    preset = debug_preset(audio_dir, val_dir)
    logging = dataclasses.replace(preset.train.logging, every_n_steps=1)
    preset = type(preset)(preset.model, dataclasses.replace(preset.train, logging=logging))
    with pytest.raises(_Crash):
        _fit(preset, tmp_path, [_StopAt(30)])
    saved = tmp_path / "checkpoints" / "step0000025.ckpt"
    capture = _CaptureStart()
    trainer, module = _fit(preset, tmp_path, [capture], resume=str(saved))
    assert capture.step == 25 and trainer.global_step == 50
    # Optimizer state (Adam moments, step counts) came back from the checkpoint.
    ckpt = torch.load(saved, weights_only=True)
    for restored, stored in zip(capture.opt_state, ckpt["optimizer_states"], strict=True):
        assert restored["state"].keys() == stored["state"].keys() and restored["state"]
        for key, tensors in stored["state"].items():
            for name, value in tensors.items():
                torch.testing.assert_close(restored["state"][key][name], value)
    # Same data, same random draws: the resumed run ends where the uninterrupted one did.
    reference = torch.load(debug_run.run_dir / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    for name, value in module.state_dict().items():
        if name.startswith("generator."):
            torch.testing.assert_close(value, reference[name], rtol=1e-4, atol=1e-5, msg=name)


def test_export_load_encode_round_trip(debug_run, tmp_path):
    result = export_checkpoint(debug_run.run_dir / "checkpoints" / "last.ckpt", tmp_path / "model")
    assert result.step == 50 and not result.used_ema
    model = load_model(result.directory)
    trained = debug_run.module.generator.eval()
    wav = torch.randn(2, 16 * model.hop_length) * 0.1
    with torch.no_grad():
        codes = model.encode(wav)
        assert codes.shape == (2, model.cfg.quantizer.total_codebooks, 16)
        torch.testing.assert_close(codes, trained.encode(wav))
        out = model.decode_offline(codes)
    assert out.shape == wav.shape and torch.isfinite(out).all()


def test_ema_weights_are_kept_and_exported(tmp_path, audio_dir, val_dir):
    preset = debug_preset(audio_dir, val_dir, ema_decay=0.9, max_steps=6)
    module = train(preset, RunOptions(run_dir=tmp_path, accelerator="cpu", progress_bar=False))
    assert module.ema is not None
    gen, ema = dict(module.generator.named_parameters()), dict(module.ema.named_parameters())
    assert any(not torch.equal(gen[k], ema[k]) for k in gen)
    result = export_checkpoint(tmp_path / "checkpoints" / "last.ckpt", tmp_path / "model")
    assert result.used_ema
    loaded = dict(load_model(result.directory).named_parameters())
    torch.testing.assert_close(loaded["decoder.head.proj.weight"], ema["decoder.head.proj.weight"])


def test_a_run_ending_off_the_checkpoint_grid_saves_its_last_step(tmp_path, audio_dir, val_dir):
    # The debug preset checkpoints every 25 steps: a 30-step run must not lose steps 26-30.
    preset = debug_preset(audio_dir, val_dir, max_steps=30)
    train(preset, RunOptions(run_dir=tmp_path, accelerator="cpu", progress_bar=False))
    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert names == ["last.ckpt", "step0000025.ckpt", "step0000030.ckpt"]
    last = torch.load(tmp_path / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert last["global_step"] == 30


def test_last_ckpt_is_the_newest_step_and_keep_last_holds_across_resumes(tmp_path, audio_dir, val_dir):
    """A short run, then two resumes (the README's resume-then-export recipe): last.ckpt always
    holds the newest step, and only keep_last step files stay (debug: every 25 steps, keep 2)."""
    ckpts = tmp_path / "checkpoints"

    def run(max_steps: int, resume: bool) -> None:
        preset = debug_preset(audio_dir, val_dir, max_steps=max_steps)
        options = RunOptions(
            run_dir=tmp_path,
            accelerator="cpu",
            progress_bar=False,
            resume=ckpts / "last.ckpt" if resume else None,
        )
        train(preset, options)

    def step_of(name: str) -> int:
        return torch.load(ckpts / name, weights_only=True, map_location="cpu")["global_step"]

    run(4, resume=False)
    assert sorted(p.name for p in ckpts.iterdir()) == ["last.ckpt", "step0000004.ckpt"]  # no last-v1
    run(30, resume=True)
    assert sorted(p.name for p in ckpts.iterdir()) == ["last.ckpt", "step0000025.ckpt", "step0000030.ckpt"]
    assert step_of("last.ckpt") == 30
    run(50, resume=True)
    assert sorted(p.name for p in ckpts.iterdir()) == ["last.ckpt", "step0000030.ckpt", "step0000050.ckpt"]
    assert (
        step_of("last.ckpt") == 50 and export_checkpoint(ckpts / "last.ckpt", tmp_path / "model").step == 50
    )
