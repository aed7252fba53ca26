"""Semantic distillation, measured: does the first codebook learn to predict the teacher?

Usage (from the repository root, as a module so that ``benchmarks`` imports)::

    nice -n 10 python -m benchmarks.training.semantic_probe --out runs/semantic --steps 1000 \\
        --threads 1 --write-results

Runs of the same small model (the ``debug`` preset's architecture; ``--codebook-size``,
``--codebook-dim``, ``--dead-code-threshold``, ``--kmeans-init``, ``--encoder-dim`` and
``--encoder-layers`` change it), same seed, same steps, same crops: ``off`` (today's recipe),
``on`` (plus ``train.semantic`` with the default settings, the head set by ``--head``),
``on_linear`` (standardised targets, linear head) and ``on_raw`` (``normalize: false``, linear
head; not run unless named); the teacher's features are precomputed once into
``OUT/features``.  No pretrained teacher can be downloaded here, so the teacher is a randomly
initialised, shrunk torchaudio WavLM (:func:`codec.train.semantic.teacher.random_teacher`; 50
frames/s against the model's 100): this shows the plumbing and the optimisation, not semantics.

Reported per run:

- the distillation loss as logged in training (mean of the first 5 logged steps -> the last
  5), and on held-out dev frames: the untrained model with the initial head (start) against
  the trained model and head (end);
- a linear probe (ridge regression with a bias) from the first codebook's quantized output
  (level 0 of the RVQ, in latent space) to the teacher's features on the codec's frame grid,
  fitted on frames of ``--probe-files`` training files, scored on ``--dev-files`` held-out dev
  files: mean cosine similarity per frame, raw and centred (after subtracting the teacher's
  mean training feature: a probe that only learned the mean scores 0 there); the same from
  each frame with ``--probe-context`` neighbours on either side (what a conv head reads);
- the same with the code alone (each code predicts its mean training feature), and the
  context probe from the encoder's continuous latent (a bound for the first codebook).

Each run writes ``OUT/NAME/``; a finished run is reused (delete it to rerun).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import torch
from torch.nn import functional as F

from codec.bench import harness
from codec.model import CodecModel, build_model
from codec.train.config import Preset, load_train_preset
from codec.train.data import find_audio, normalize_loudness, read_audio
from codec.train.semantic.align import SemanticHead
from codec.train.semantic.config import SemanticConfig
from codec.train.semantic.objective import SemanticObjective
from codec.train.semantic.teacher import Teacher, load_teacher, random_teacher

SECTION = "Semantic distillation (first codebook)"
TEACHER = "benchmarks.training.semantic_probe:teacher"


def teacher() -> torch.nn.Module:
    """The benchmark's teacher: an untrained WavLM, 64 channels, 2 layers, seed 0."""
    return random_teacher("wavlm", dim=64, num_layers=2, seed=0)


# Runs: name -> (train.semantic.normalize, head kind; None: the command line's --head), or
# None for the option off.
VARIANTS: dict[str, tuple[bool, str | None] | None] = {
    "off": None,
    "on": (True, None),
    "on_linear": (True, "linear"),
    "on_raw": (False, "linear"),
}


def make_preset(args: argparse.Namespace, variant: str) -> Preset:
    base = load_train_preset("debug")
    t = base.train
    data = dataclasses.replace(t.data, train=(str(args.data),), val=(str(args.dev),), num_workers=0)
    data = dataclasses.replace(data, batch_size=args.batch_size, segment_seconds=args.segment_seconds)
    logging = dataclasses.replace(t.logging, every_n_steps=args.log_every, val_every_n_steps=10**6)
    checkpoint = dataclasses.replace(t.checkpoint, every_n_steps=10**6)
    disc = dataclasses.replace(t.discriminator, start_step=None)  # spectral losses only (CPU budget)
    sem = semantic_config(args, variant)
    train = dataclasses.replace(
        t, seed=args.seed, max_steps=args.steps, data=data, logging=logging, checkpoint=checkpoint
    )
    train = dataclasses.replace(train, discriminator=disc, semantic=sem)
    quantizer = dataclasses.replace(
        base.model.quantizer,
        codebook_size=args.codebook_size,
        codebook_dim=args.codebook_dim,
        kmeans_init=args.kmeans_init,
        dead_code_threshold=args.dead_code_threshold,
    )
    encoder = base.model.encoder
    if args.encoder_dim:
        encoder = dataclasses.replace(encoder, dim=args.encoder_dim, intermediate_dim=2 * args.encoder_dim)
    if args.encoder_layers:
        encoder = dataclasses.replace(encoder, num_layers=args.encoder_layers)
    return Preset(dataclasses.replace(base.model, quantizer=quantizer, encoder=encoder), train)


def semantic_config(args: argparse.Namespace, variant: str) -> SemanticConfig:
    """The ``train.semantic`` section of a run (off for ``off``)."""
    spec = VARIANTS[variant]
    if spec is None:
        return SemanticConfig()
    normalize, head = spec
    features = str(args.out / "features")
    return SemanticConfig(
        TEACHER, args.layer, args.weight, "cosine", normalize, features,
        head=head or args.head, head_kernel=args.head_kernel, head_width=args.head_width,
    )  # fmt: skip


def run(name: str, args: argparse.Namespace) -> Path:
    """Train one run (unless done); returns its directory (weights in ``generator.pt``)."""
    from codec.train.runner import RunOptions, train

    out = args.out / name
    if (out / "generator.pt").is_file():
        print(f"{name}: done already ({out})", flush=True)
        return out
    start = time.monotonic()
    module = train(make_preset(args, name), RunOptions(run_dir=out, accelerator="cpu", progress_bar=False))
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
def frames(model: CodecModel, teach: Teacher, wavs: list[torch.Tensor]) -> Frames:
    """First-codebook codes and quantized latents, and the teacher's features, of all clips."""
    hop, rate = model.hop_length, model.cfg.sample_rate
    codes, xs, ys, zs = [], [], [], []
    for wav in wavs:
        wav = wav[: wav.shape[0] // hop * hop][None]
        latent = model.encoder(wav)[0]  # [F, D]
        zs.append(latent)
        first = model.quantizer.encode(latent, 1)  # [F, 1]
        codes.append(first[:, 0])
        xs.append(model.quantizer.decode(first))
        ys.append(teach.frame_features(wav, rate, rate / hop, latent.shape[0])[0])
    lengths = [len(c) for c in codes]
    x, y, z = (torch.cat(t).double() for t in (xs, ys, zs))
    return Frames(torch.cat(codes), x, y, lengths, z)


@dataclasses.dataclass
class Frames:
    """``codes [M]``, first-codebook quantized latents ``x [M, D]``, teacher features ``y [M, Dt]``
    of clips of ``lengths`` frames, one after the other; the encoder's latents ``z [M, D]``."""

    codes: torch.Tensor
    x: torch.Tensor
    y: torch.Tensor
    lengths: list[int]
    z: torch.Tensor

    def neighbours(self, context: int) -> torch.Tensor:
        """``[M, (2 context + 1) D]``: each frame's ``x`` with its ``context`` neighbours on
        either side in the same clip (zeros beyond its ends), as the ``conv`` head reads them."""
        out = []
        for x in self.x.split(self.lengths):
            padded = F.pad(x.T, (context, context)).T
            out.append(torch.cat([padded[i : i + len(x)] for i in range(2 * context + 1)], 1))
        return torch.cat(out)


def _scores(pred: torch.Tensor, y: torch.Tensor, mean: torch.Tensor) -> tuple[float, float]:
    raw = F.cosine_similarity(pred, y, dim=-1).mean().item()
    return raw, F.cosine_similarity(pred - mean, y - mean, dim=-1).mean().item()


def probe(train: Frames, dev: Frames, ridge: float, context: int = 0) -> tuple[float, float]:
    """Ridge regression from the quantized latents (of each frame and ``context`` neighbours on
    either side), train -> dev: (cosine, centred cosine)."""
    x, y, dev_x = train.neighbours(context), train.y, dev.neighbours(context)
    xb = torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], 1)
    reg = ridge * torch.eye(xb.shape[1], dtype=x.dtype)
    reg[-1, -1] = 0  # the bias is not shrunk
    w = torch.linalg.solve(xb.T @ xb + reg, xb.T @ y)
    pred = torch.cat([dev_x, torch.ones(len(dev_x), 1, dtype=x.dtype)], 1) @ w
    return _scores(pred, dev.y, y.mean(0))


def code_probe(train: Frames, dev: Frames, size: int) -> tuple[float, float]:
    """The code alone (a linear probe on one-hot codes): each code predicts its mean training
    feature (the overall mean for a code unseen in training); (cosine, centred cosine) on dev."""
    mean = train.y.mean(0)
    sums = torch.zeros(size, train.y.shape[1], dtype=train.y.dtype).index_add_(0, train.codes, train.y)
    counts = torch.bincount(train.codes, minlength=size).to(train.y.dtype)[:, None]
    table = torch.where(counts > 0, sums / counts.clamp(min=1), mean)
    return _scores(table[dev.codes], dev.y, mean)


def dev_loss(head: SemanticHead, dev: Frames) -> float:
    """The distillation loss on held-out frames: 1 - cosine(projection, teacher), each clip
    projected on its own, the teacher's features standardised over the dev frames when the run
    standardised them."""
    y = (dev.y - dev.y.mean(0)) / (dev.y.std(0) + 1e-5) if head.norm is not None else dev.y
    with torch.no_grad():
        pred = torch.cat([head.predict(x[None].float())[0] for x in dev.x.split(dev.lengths)]).double()
    return 1 - F.cosine_similarity(pred, y, dim=-1).mean().item()


def heads(args: argparse.Namespace, name: str, teach: Teacher) -> tuple[SemanticHead, SemanticHead]:
    """Run ``name``'s projection as training started from it (built, seeded, as training builds
    it) and as it ended."""
    model = make_preset(args, name).model
    cfg = semantic_config(args, name)
    start = SemanticObjective(model, cfg, teach).head.eval()
    end = SemanticObjective(model, cfg, teach).head.eval()
    end.load_state_dict(torch.load(args.out / name / "head.pt", weights_only=True))
    return start, end


def evaluate(args: argparse.Namespace, names: list[str]) -> dict[str, dict[str, float]]:
    """Probe scores of ``init`` and each run; for semantic runs also the dev distillation loss
    before (untrained model, initial projection) and after training."""
    preset = make_preset(args, "off")
    rate = preset.model.sample_rate
    teach = load_teacher(teacher(), layer=args.layer)
    train_clips = clips(args.data, args.probe_files, args.clip_seconds, rate)
    dev_clips = clips(args.dev, args.dev_files, args.clip_seconds, rate)
    results: dict[str, dict[str, float]] = {}
    init_dev = None
    for name in ["init", *names]:
        torch.manual_seed(args.seed)
        model = build_model(preset.model).eval()
        if name != "init":
            model.load_state_dict(torch.load(args.out / name / "generator.pt", weights_only=True))
        tr, dv = frames(model, teach, train_clips), frames(model, teach, dev_clips)
        init_dev = dv if name == "init" else init_dev
        raw, centred = probe(tr, dv, args.ridge)
        _, context_centred = probe(tr, dv, args.ridge, args.probe_context)
        latent = [dataclasses.replace(f, x=f.z) for f in (tr, dv)]
        _, latent_centred = probe(*latent, args.ridge, args.probe_context)
        code_raw, code_centred = code_probe(tr, dv, args.codebook_size)
        results[name] = {"cosine": raw, "centred_cosine": centred, "context_centred_cosine": context_centred}
        results[name]["latent_context_centred_cosine"] = latent_centred
        results[name].update(code_cosine=code_raw, code_centred_cosine=code_centred)
        results[name].update(train_frames=len(tr.codes), dev_frames=len(dv.codes))
        if VARIANTS.get(name) is not None and init_dev is not None:
            start, end = heads(args, name, teach)
            results[name]["dev_loss_start"] = dev_loss(start, init_dev)
            results[name]["dev_loss_end"] = dev_loss(end, dv)
    return results


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--variants", nargs="+", default=["off", "on_linear", "on"], choices=list(VARIANTS))
    p.add_argument("--data", type=Path, default=Path("../shared/data/train"))
    p.add_argument("--dev", type=Path, default=Path("../shared/data/dev"))
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--segment-seconds", type=float, default=0.64)
    p.add_argument("--log-every", type=int, default=5)
    p.add_argument("--codebook-size", type=int, default=64, help="entries per codebook (debug: 64)")
    p.add_argument("--codebook-dim", type=int, default=4, help="code dimension (debug: 4)")
    p.add_argument("--encoder-dim", type=int, default=0, help="encoder width (0: debug's, 32)")
    p.add_argument("--encoder-layers", type=int, default=0, help="encoder blocks (0: debug's, 2)")
    p.add_argument("--kmeans-init", action="store_true", help="k-means init of the codebooks")
    p.add_argument("--dead-code-threshold", type=float, default=0.0, help="(debug: 0, off)")
    p.add_argument("--layer", type=int, default=2)
    p.add_argument("--weight", type=float, default=10.0)
    default = SemanticConfig()
    p.add_argument("--head", choices=["linear", "conv"], default=default.head, help="the `on` run's head")
    p.add_argument("--head-kernel", type=int, default=default.head_kernel)
    p.add_argument("--head-width", type=int, default=default.head_width)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--probe-files", type=int, default=40)
    p.add_argument("--dev-files", type=int, default=20)
    p.add_argument("--clip-seconds", type=float, default=6.0)
    p.add_argument("--ridge", type=float, default=1e-3)
    p.add_argument("--probe-context", type=int, default=2, help="neighbours each side, context probe")
    harness.add_common_args(p)
    return p.parse_args(argv)


def table(args: argparse.Namespace, scores: dict[str, dict[str, float]]) -> str:
    rows = []
    for name, s in scores.items():
        loss_train = loss_dev = "-"
        if VARIANTS.get(name) is not None:
            logged = [v for _, v in semantic_losses(args.out / name)]
            first, last = sum(logged[:5]) / 5, sum(logged[-5:]) / 5
            loss_train = f"{first:.3f} -> {last:.3f} (x{last / first:.2f})"
            start, end = s["dev_loss_start"], s["dev_loss_end"]
            loss_dev = f"{start:.3f} -> {end:.3f} (x{end / start:.2f})"
        kind = "untrained" if name == "init" else describe(args, name)
        seconds = (
            "-"
            if name == "init"
            else f"{json.loads((args.out / name / 'run.json').read_text())['seconds']:.0f}"
        )
        keys = ("cosine", "centred_cosine", "context_centred_cosine", "code_cosine", "code_centred_cosine")
        keys += ("latent_context_centred_cosine",)
        rows.append([name, kind, loss_train, loss_dev, *(f"{s[k]:.3f}" for k in keys), seconds])
    header = [
        "run", "semantic", "distillation loss, train (first 5 -> last 5 logged)",
        "distillation loss, dev (start -> end)", "linear probe cosine", "centred",
        f"context probe (±{args.probe_context} frames) centred", "code probe cosine", "centred",
        "encoder latent, context probe centred", "train s",
    ]  # fmt: skip
    return harness.markdown_table(header, rows)


def describe(args: argparse.Namespace, name: str) -> str:
    """The ``semantic`` column: off, or the targets and the head."""
    cfg = semantic_config(args, name)
    if not cfg.enabled:
        return "option off"
    targets = "standardised" if cfg.normalize else "raw"
    if cfg.head == "linear":
        return f"{targets} targets, linear head"
    return f"{targets} targets, conv head ({cfg.head_kernel} frames, {cfg.head_width} channels)"


def architecture(args: argparse.Namespace) -> str:
    """The model, in words, for the results."""
    enc = make_preset(args, "off").model.encoder
    words = "the `debug` preset's architecture (latent 32, 100 frames/s)"
    if args.encoder_dim or args.encoder_layers:
        words += f" with an encoder of {enc.num_layers} blocks x {enc.dim} channels"
    words += f", 4 codebooks x {args.codebook_size} (code dimension {args.codebook_dim})"
    if args.kmeans_init or args.dead_code_threshold:
        words += f" (k-means init: {args.kmeans_init}, dead-code threshold {args.dead_code_threshold:g})"
    return words


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    harness.set_threads(args.threads)
    conditions = harness.Conditions(harness.wait_for_quiet(args.wait_quiet))
    for name in args.variants:
        run(name, args)
    scores = evaluate(args, args.variants)
    text = table(args, scores)
    print(text)
    (args.out / "result.json").write_text(json.dumps(scores, indent=2) + "\n")
    if args.write_results:
        lines = [
            f"Model: {architecture(args)}, trained from scratch for {args.steps} steps (batch "
            f"{args.batch_size} x {args.segment_seconds:g} s, mel + STFT losses, no GAN), seed "
            f"{args.seed}, without and with `train.semantic` (weight {args.weight:g}, cosine, layer "
            f"{args.layer}, features precomputed; `on`: head `{args.head}`"
            + (f", {args.head_kernel} frames, {args.head_width} channels" if args.head == "conv" else "")
            + "). Teacher: an untrained torchaudio WavLM (64 "
            "channels, 2 layers, 50 frames/s; no pretrained teacher is reachable here). Distillation "
            "loss on dev: 1 - cosine between the head's projection of the first codebook's output and "
            "the teacher's features (standardised over the dev frames for standardised runs), for the "
            "untrained model with the initial head (start) and the trained one (end). Probe: ridge "
            "regression from the first codebook's quantized output (context probe: of each frame and "
            f"its {args.probe_context} neighbours on either side) to the teacher's features, fitted on "
            f"the first {args.probe_files} training files, scored on the first {args.dev_files} files of "
            f"{args.dev} (each cut to {args.clip_seconds:g} s); centred: cosine after subtracting the "
            "teacher's mean training feature from both; encoder latent: the context probe from the "
            "encoder's continuous output (all levels' input: a bound for the first codebook). "
            "`train s`: wall time of the run (for a semantic run that finds no features in "
            "OUT/features, precomputing them is part of it).",
            "",
            text,
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
