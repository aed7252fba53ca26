"""What holds for each backend: codes batched against alone, decoded audio, streaming parity.

Every backend codes a padded batch in one call; a model whose layers look past an item's end
(non-causal convolutions, a bidirectional LSTM, attention over the whole clip) lets the padding
change that item's last codes.  This script counts it on real speech: the first ``--files``
files of ``--data`` are encoded in padded batches of ``--batch`` (in file order, so lengths
are mixed) and each one alone, and every code within the item's valid frames is compared; the
decoded audio of the batch is compared with each item decoded alone; a model that streams is
also streamed in chunks of ``--chunks`` frames and compared with its offline codes and audio.

Without ``--model`` each kind is built in its published architecture with random weights (no
hub is needed, and padding leakage is a property of the architecture; how many codes it flips
also depends on how close the trained codebooks' distances are, so a trained model's count
may differ).  ``--model SPEC`` (repeatable) measures loaded weights instead.

    python benchmarks/backends/exactness.py --data ../shared/data/dev --files 16 --write-results
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
from pathlib import Path

import torch

from codec import Codec, Codes
from codec.bench import harness
from codec.bench.data import read_mono
from codec.formats import AUDIO_SUFFIXES

KINDS = ("encodec", "dac", "mimi", "snac", "speechtokenizer")
SCRIPT = "benchmarks/backends/exactness.py"
# The published models' architectures (transformers' defaults are EnCodec 24 kHz's and Mimi's).
DAC_16K = {"encoder_hidden_size": 64, "downsampling_ratios": [2, 4, 5, 8], "decoder_hidden_size": 1536,
           "upsampling_ratios": [8, 5, 4, 2], "n_codebooks": 12, "codebook_size": 1024, "codebook_dim": 8,
           "hidden_size": 1024, "sampling_rate": 16000}  # fmt: skip
SNAC_24K = {"sampling_rate": 24000, "encoder_dim": 48, "encoder_rates": [2, 4, 8, 8], "decoder_dim": 1024,
            "decoder_rates": [8, 8, 4, 2], "attn_window_size": None, "codebook_size": 4096, "codebook_dim": 8,
            "vq_strides": [4, 2, 1], "noise": True, "depthwise": True}  # fmt: skip
SPEECHTOKENIZER = {"n_filters": 64, "strides": [8, 5, 4, 2], "dimension": 1024, "semantic_dimension": 768,
                   "bidirectional": True, "dilation_base": 2, "residual_kernel_size": 3,
                   "n_residual_layers": 1, "lstm_layers": 2, "activation": "ELU", "codebook_size": 1024,
                   "n_q": 8, "sample_rate": 16000}  # fmt: skip
# --quick: the same architectures shrunk to run in seconds
SMALL = {"encodec": {"num_filters": 8, "hidden_size": 32},
         "dac": {"encoder_hidden_size": 8, "decoder_hidden_size": 32, "hidden_size": 32},
         "mimi": {"num_filters": 8, "hidden_size": 32, "num_hidden_layers": 1, "intermediate_size": 64,
                  "num_attention_heads": 2, "num_key_value_heads": 2, "head_dim": 16, "upsample_groups": 32},
         "snac": {"encoder_dim": 8, "decoder_dim": 64},
         "speechtokenizer": {"n_filters": 8, "dimension": 32, "lstm_layers": 1}}  # fmt: skip


def random_codebooks(model: torch.nn.Module) -> None:
    """EnCodec's, Mimi's and SpeechTokenizer's codebooks start at zero (one code everywhere)."""
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in model.modules():
            if hasattr(m, "embed_sum"):
                m.embed_sum.copy_(torch.randn(m.embed_sum.shape, generator=gen))
                m.cluster_usage.fill_(1.0)
                m._embed = None
            elif hasattr(m, "embed_avg"):
                m.embed.copy_(torch.randn(m.embed.shape, generator=gen))
                m.embed_avg.copy_(m.embed)
                if hasattr(m, "inited"):
                    m.inited.fill_(1.0)


def build(kind: str, folder: Path, quick: bool) -> Codec:
    """``kind`` in its published architecture (``quick``: shrunk), random weights, loaded by spec."""
    import json

    torch.manual_seed(0)
    small = SMALL[kind] if quick else {}
    if kind in ("snac", "speechtokenizer"):
        folder.mkdir(parents=True)
        if kind == "snac":
            from snac import SNAC

            cfg = {**SNAC_24K, **small}
            model, weights = SNAC(**cfg), "pytorch_model.bin"
        else:
            from speechtokenizer import SpeechTokenizer

            cfg = {**SPEECHTOKENIZER, **small}
            model, weights = SpeechTokenizer(cfg), "SpeechTokenizer.pt"
        random_codebooks(model)
        (folder / "config.json").write_text(json.dumps(cfg))
        torch.save(model.state_dict(), folder / weights)
    else:
        import transformers as t

        if kind == "encodec":
            model = t.EncodecModel(t.EncodecConfig(**small))
        elif kind == "dac":
            model = t.DacModel(t.DacConfig(**{**DAC_16K, **small}))
        else:
            model = t.MimiModel(t.MimiConfig(**small))
        random_codebooks(model)
        from codec.backends.hf import quiet_transformers

        with quiet_transformers():
            model.save_pretrained(folder)
    return Codec.from_pretrained(f"{kind}:{folder}")


def measure(b: Codec, clips: list[torch.Tensor], rate: int, batch: int, chunks: list[int]) -> list[object]:
    """One table row: codes and decoded audio batched against alone, and streaming parity."""
    differ = items = total = farthest = 0
    audio_diff = 0.0
    for start in range(0, len(clips), batch):
        group = clips[start : start + batch]
        codes = b.encode(group, rate)
        alone = [b.encode(clip, rate) for clip in group]
        for i, one in enumerate(alone):
            diff = codes.codes[i, :, : one.num_frames] != one.codes[0]
            differ, total, items = differ + int(diff.sum()), total + diff.numel(), items + bool(diff.any())
            if diff.any():
                farthest = max(farthest, one.num_frames - int(diff.any(0).nonzero()[0]))
        audio_diff = max(audio_diff, decode_difference(b, alone))
    row = [f"{differ:,} of {total:,} ({items} of {len(clips)} items)", farthest, f"{audio_diff:.1e}"]
    if not b.causal:
        return [*row, "does not stream", "-"]
    return [*row, *stream_parity(b, clips, rate, chunks)]


def decode_difference(b: Codec, alone: list[Codes]) -> float:
    """The items' own codes decoded as one padded batch (pad frames: code 0) against each alone."""
    frames = max(c.num_frames for c in alone)
    padded = torch.stack([torch.nn.functional.pad(c.codes[0], (0, frames - c.num_frames)) for c in alone])
    lengths = torch.cat([c.lengths for c in alone])
    batch = dataclasses.replace(alone[0], codes=padded, lengths=lengths, original_lengths=None)
    decoded, worst = b.decode(batch), 0.0
    for i, c in enumerate(alone):
        one = b.decode(c)[0, 0]
        worst = max(worst, float((decoded[i, 0, : one.shape[-1]] - one).abs().max() / one.abs().max()))
    return worst


def stream_parity(b: Codec, clips: list[torch.Tensor], rate: int, chunks: list[int]) -> list[str]:
    """Streamed codes against offline ones (in chunks of ``chunks`` frames), and streamed audio."""
    from codec.audio import resample

    differ, total, audio_diff = 0, 0, 0.0
    for clip in clips:
        offline = b.encode(clip, rate)
        x = resample(clip[None, None], rate, b.sample_rate)  # as encode resamples it
        ref = b.decode(offline.codes)
        for frames in chunks:
            stream, step = b.stream(), frames * b.hop_length
            parts = [stream.encode(x[..., i : i + step]) for i in range(0, x.shape[-1], step)]
            streamed = torch.cat([*parts, stream.flush().codes], dim=-1)[..., : offline.num_frames]
            differ, total = differ + int((streamed != offline.codes).sum()), total + streamed.numel()
            decoder = b.stream()
            out = torch.cat([decoder.decode(offline.codes[..., i : i + frames])
                             for i in range(0, offline.num_frames, frames)], dim=-1)  # fmt: skip
            audio_diff = max(audio_diff, float((out - ref).abs().max() / ref.abs().max()))
    return [f"{differ:,} of {total:,} (chunks of {', '.join(map(str, chunks))} frames)", f"{audio_diff:.1e}"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, required=True, help="folder of audio files (searched recursively)")
    p.add_argument("--files", type=int, default=16)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--chunks", type=int, nargs="+", default=[1, 3])
    p.add_argument("--kinds", nargs="+", default=list(KINDS), choices=KINDS)
    p.add_argument("--model", action="append", default=[], help="a loaded model spec instead (repeatable)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--quick", action="store_true", help="shrunk architectures (checks the script runs)")
    harness.add_common_args(p)
    args = p.parse_args(argv)
    harness.set_threads(args.threads)
    files = sorted(f for f in args.data.rglob("*") if f.suffix.lower() in AUDIO_SUFFIXES)[: args.files]
    if not files:
        sys.exit(f"{args.data}: no audio files")
    rate = read_mono(files[0]).sample_rate
    clips = [torch.from_numpy(read_mono(f).wav) for f in files]
    seconds = sum(c.shape[-1] for c in clips) / rate
    conditions = harness.Conditions(harness.wait_for_quiet(args.wait_quiet))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        models = [(s, Codec.from_pretrained(s)) for s in args.model] or [
            (f"{k} (random weights{', shrunk' if args.quick else ''})", build(k, Path(tmp) / k, args.quick))
            for k in args.kinds
        ]
        for label, b in models:
            rows.append([label, f"{b.sample_rate} Hz, hop {b.hop_length}",
                         *measure(b, clips, rate, args.batch, args.chunks)])  # fmt: skip
    header = ["backend", "rate", "codes batched != alone", "farthest from the end (frames)",
              "decoded: batched vs alone (max abs / peak)", "streamed codes != offline",
              "streamed audio vs offline (max abs / peak)"]  # fmt: skip
    body = "\n".join([
        f"- Data: the first {len(files)} files of `{args.data}` ({seconds:.0f} s), padded batches of "
        f"{args.batch} in file order; {args.threads} thread(s)",
        *harness.machine_lines(["transformers", "snac", "speechtokenizer"]),
        f"- Commit: {harness.git_revision()}; command: `{harness.command_line(SCRIPT)}`",
        conditions.line(), "", harness.markdown_table(header, rows),
    ])  # fmt: skip
    print(body)
    if args.write_results:
        harness.write_section("Backends: exactness and streaming", body, Path(args.write_results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
