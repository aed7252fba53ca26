"""Semantic distillation, measured: does the first codebook learn to predict the teacher?

Usage (from the repository root, as a module so that ``benchmarks`` imports)::

    nice -n 10 python -m benchmarks.training.semantic_probe --out runs/semantic --steps 300 \\
        --threads 1 --write-results

Two runs of the same small model (the ``debug`` preset's architecture), same seed, same
steps, same crops: ``off`` (today's recipe) and ``on`` (plus ``train.semantic`` with the
teacher below, features precomputed once into ``OUT/features``).  No pretrained teacher can be
downloaded here, so the teacher is a randomly initialised, shrunk torchaudio WavLM
(:func:`codec.train.semantic.teacher.random_teacher`; 50 frames/s against the model's 100):
the plumbing and the optimisation are what this shows, not semantics.

Reported:

- the distillation loss of the ``on`` run: mean of its first 5 logged steps against the
  mean of its last 5 logged steps (the target: at least halved);
- a linear probe (ridge regression with a bias) from the first codebook's quantized output
  (level 0 of the RVQ, in latent space) to the teacher's features on the codec's frame grid,
  fitted on frames of ``--probe-files`` training files, evaluated on ``--dev-files`` held-out
  dev files: mean cosine similarity per frame, raw and after subtracting the teacher's mean
  feature over the training frames (a probe that only learned the mean scores 0 there), for
  ``init`` (the untrained model), ``off`` and ``on``.

Each run writes ``OUT/NAME/``; a finished run is reused (delete it to rerun).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import torch
from torch.nn import functional as F

from codec.bench import harness
from codec.model import CodecModel, build_model
from codec.train.config import Preset, load_train_preset
from codec.train.data import find_audio, normalize_loudness, read_audio
from codec.train.semantic.align import SemanticHead
from codec.train.semantic.config import SemanticConfig
from codec.train.semantic.objective import INIT_SEED
from codec.train.semantic.teacher import Teacher, load_teacher, random_teacher

SECTION = "Semantic distillation (first codebook)"
TEACHER = "benchmarks.training.semantic_probe:teacher"


def teacher() -> torch.nn.Module:
    """The benchmark's teacher: an untrained WavLM, 64 channels, 2 layers, seed 0."""
    return random_teacher("wavlm", dim=64, num_layers=2, seed=0)


def make_preset(args: argparse.Namespace, semantic: bool) -> Preset:
    base = load_train_preset("debug")
    t = base.train
    data = dataclasses.replace(t.data, train=(str(args.data),), val=(str(args.dev),), num_workers=0)
    data = dataclasses.replace(data, batch_size=args.batch_size, segment_seconds=args.segment_seconds)
    logging = dataclasses.replace(t.logging, every_n_steps=args.log_every, val_every_n_steps=10**6)
    checkpoint = dataclasses.replace(t.checkpoint, every_n_steps=10**6)
    disc = dataclasses.replace(t.discriminator, start_step=None)  # spectral losses only (CPU budget)
    sem = SemanticConfig()
    if semantic:
        features = str(args.out / "features")
        sem = SemanticConfig(teacher=TEACHER, layer=args.layer, weight=args.weight, features_dir=features)
    train = dataclasses.replace(
        t, seed=args.seed, max_steps=args.steps, data=data, logging=logging, checkpoint=checkpoint
    )
    train = dataclasses.replace(train, discriminator=disc, semantic=sem)
    quantizer = dataclasses.replace(base.model.quantizer, codebook_size=args.codebook_size)
    return Preset(dataclasses.replace(base.model, quantizer=quantizer), train)


def run(name: str, args: argparse.Namespace) -> Path:
    """Train one run (unless done); returns its directory (weights in ``generator.pt``)."""
    from codec.train.runner import RunOptions, train

    out = args.out / name
    if (out / "generator.pt").is_file():
        print(f"{name}: done already ({out})", flush=True)
        return out
    import time

    start = time.monotonic()
    module = train(
        make_preset(args, name == "on"), RunOptions(run_dir=out, accelerator="cpu", progress_bar=False)
    )
    torch.save(module.generator.state_dict(), out / "generator.pt")
    if module.semantic is not None:
        torch.save(module.semantic.head.state_dict(), out / "head.pt")
    seconds = time.monotonic() - start
    (out / "run.json").write_text(json.dumps({"seconds": seconds, "steps": args.steps}) + "\n")
    print(f"{name}: trained {args.steps} steps in {seconds:.0f} s", flush=True)
    return out


def semantic_losses(run_dir: Path) -> list[tuple[int, float]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir / "tensorboard"))
    acc.Reload()
    return [(e.step, e.value) for e in acc.Scalars("train/loss/semantic")]


def clips(folder: Path, count: int, seconds: float, sample_rate: int) -> list[torch.Tensor]:
    """The first ``count`` files under ``folder``, cut to ``seconds``, at -20 dBFS: ``[T]`` each."""
    out = []
    for file in find_audio([folder])[:count]:
        native = min(file.num_samples, int(seconds * file.sample_rate))
        out.append(normalize_loudness(read_audio(file, 0, native, sample_rate), -20.0))
    return out


@torch.no_grad()
def frames(model: CodecModel, teach: Teacher, wavs: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """First-codebook quantized latents ``[M, D]`` and teacher features ``[M, Dt]`` of all clips."""
    hop, rate = model.hop_length, model.cfg.sample_rate
    xs, ys = [], []
    for wav in wavs:
        wav = wav[: wav.shape[0] // hop * hop][None]
        latent = model.encoder(wav)[0]  # [F, D]
        codes = model.quantizer.encode(latent, 1)  # [F, 1]
        xs.append(model.quantizer.decode(codes))
        ys.append(teach.frame_features(wav, rate, rate / hop, latent.shape[0])[0])
    return torch.cat(xs).double(), torch.cat(ys).double()


def probe(train: tuple[torch.Tensor, torch.Tensor], dev: tuple[torch.Tensor, torch.Tensor], ridge: float):
    """Ridge regression train -> scores on dev: (raw cosine, centred cosine)."""
    x, y = train
    xb = torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], 1)
    reg = ridge * torch.eye(xb.shape[1], dtype=x.dtype)
    reg[-1, -1] = 0  # the bias is not shrunk
    w = torch.linalg.solve(xb.T @ xb + reg, xb.T @ y)
    xd, yd = dev
    pred = torch.cat([xd, torch.ones(len(xd), 1, dtype=xd.dtype)], 1) @ w
    mean = y.mean(0)
    raw = F.cosine_similarity(pred, yd, dim=-1).mean().item()
    centred = F.cosine_similarity(pred - mean, yd - mean, dim=-1).mean().item()
    return raw, centred


def dev_loss(head: SemanticHead, dev: tuple[torch.Tensor, torch.Tensor]) -> float:
    """The distillation loss on held-out frames: 1 - cosine(projection, standardised teacher)."""
    x, y = dev
    y = (y - y.mean(0)) / (y.std(0) + 1e-5) if head.norm is not None else y
    with torch.no_grad():
        pred = head.proj(x.float()).double()
    return 1 - F.cosine_similarity(pred, y, dim=-1).mean().item()


def initial_head(latent_dim: int, teacher_dim: int) -> SemanticHead:
    """The projection as training starts (seeded as :class:`SemanticObjective` seeds it)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(INIT_SEED)
        return SemanticHead(latent_dim, teacher_dim)


def evaluate(args: argparse.Namespace) -> dict[str, dict[str, float]]:
    preset = make_preset(args, False)
    rate = preset.model.sample_rate
    teach = load_teacher(teacher(), layer=args.layer)
    train_clips = clips(args.data, args.probe_files, args.clip_seconds, rate)
    dev_clips = clips(args.dev, args.dev_files, args.clip_seconds, rate)
    results = {}
    for name in ("init", "off", "on"):
        torch.manual_seed(args.seed)
        model = build_model(preset.model).eval()
        if name != "init":
            model.load_state_dict(torch.load(args.out / name / "generator.pt", weights_only=True))
        tr, dv = frames(model, teach, train_clips), frames(model, teach, dev_clips)
        raw, centred = probe(tr, dv, args.ridge)
        results[name] = {"cosine": raw, "centred_cosine": centred, "train_frames": len(tr[0])}
        results[name]["dev_frames"] = len(dv[0])
        if name in ("init", "on"):  # the `on` run before and after training
            head = initial_head(preset.model.latent_dim, teach.dim)
            if name == "on":
                head.load_state_dict(torch.load(args.out / "on" / "head.pt", weights_only=True))
            results[name]["dev_loss"] = dev_loss(head, dv)
    return results


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--data", type=Path, default=Path("../shared/data/train"))
    p.add_argument("--dev", type=Path, default=Path("../shared/data/dev"))
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--segment-seconds", type=float, default=0.64)
    p.add_argument("--log-every", type=int, default=5)
    p.add_argument("--codebook-size", type=int, default=1024, help="entries per codebook (debug: 64)")
    p.add_argument("--layer", type=int, default=2)
    p.add_argument("--weight", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--probe-files", type=int, default=40)
    p.add_argument("--dev-files", type=int, default=20)
    p.add_argument("--clip-seconds", type=float, default=6.0)
    p.add_argument("--ridge", type=float, default=1e-3)
    harness.add_common_args(p)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    harness.set_threads(args.threads)
    conditions = harness.Conditions(harness.wait_for_quiet(args.wait_quiet))
    for name in ("off", "on"):
        run(name, args)
    losses = [v for _, v in semantic_losses(args.out / "on")]
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    scores = evaluate(args)
    seconds = {n: json.loads((args.out / n / "run.json").read_text())["seconds"] for n in ("off", "on")}
    rows = [
        [n, f"{s['cosine']:.3f}", f"{s['centred_cosine']:.3f}", s["train_frames"], s["dev_frames"]]
        for n, s in scores.items()
    ]
    table = harness.markdown_table(
        ["model", "probe cosine (dev)", "centred probe cosine (dev)", "train frames", "dev frames"], rows
    )
    summary = (
        f"Distillation loss (1 - cosine, run `on`): {first:.3f} (mean of the first 5 logged steps) -> "
        f"{last:.3f} (last 5), ratio {last / first:.2f}. Training time: off {seconds['off']:.0f} s, "
        f"on {seconds['on']:.0f} s for {args.steps} steps (the `on` time includes precomputing "
        "the teacher's features of every training file once)."
    )
    print(summary)
    print(table)
    (args.out / "result.json").write_text(
        json.dumps({"loss": [first, last], "probe": scores}, indent=2) + "\n"
    )
    if args.write_results:
        lines = [
            f"Model: the `debug` preset's architecture (latent 32, 100 frames/s) with 4 codebooks x "
            f"{args.codebook_size} "
            f"trained from scratch for {args.steps} steps (batch {args.batch_size} x "
            f"{args.segment_seconds:g} s, mel + STFT losses, no GAN), seed {args.seed}, with and "
            f"without `train.semantic` (weight {args.weight:g}, cosine, layer {args.layer}). Teacher: an "
            "untrained torchaudio WavLM (64 channels, 2 layers, 50 frames/s; no pretrained teacher "
            "is reachable here). Probe: ridge regression from the first codebook's quantized output "
            f"to the teacher's features, fitted on the first {args.probe_files} training files, "
            f"scored on the first {args.dev_files} files of {args.dev} (each cut to "
            f"{args.clip_seconds:g} s); `init` is the untrained model.",
            "",
            summary,
            "",
            table,
            "",
            *harness.machine_lines(),
            conditions.line(),
            f"- Command: `nice -n 10 {harness.command_line('-m benchmarks.training.semantic_probe')}`",
        ]
        if args.note:
            lines.append(f"- Note: {args.note}")
        harness.write_section(SECTION, "\n".join(lines), Path(args.write_results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
