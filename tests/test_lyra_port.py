"""Lyra v2 port: every convolution, and the whole encoder and decoder, against the TFLite runtime.

The TFLite graphs keep some activations in int8 (the encoder's last block and bottleneck, the
decoder's first block), which our float32 port does not: layer by layer, given the graph's own
input, a float layer must agree to float rounding and an int8 layer to half a quantization step
(its rounding; saturation at the int8 range included).  End to end the int8 rounding adds up,
so there the tolerance is a stated error ratio (measured on the example clip: embedding error
8% of its RMS, decoded audio 21 dB SNR).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn import functional as F

pytest.importorskip("ai_edge_litert")

from codec.lyra import (
    DECODER_FILE,
    ENCODER_FILE,
    LYRA_DIR,
    LyraWeightsError,
    interpreter,
    load_lyra,
    load_tflite_weights,
)
from codec.modules.lyra import LyraEncoder
from codec.modules.soundstream import CausalConvTranspose
from codec.pipeline.audiofile import load_audio
from codec.pretrained import model_dir

FRAMES = 25
FLOAT_TOL = 1e-5  # relative to the layer's largest output
CONV_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV")


@pytest.fixture(scope="module")
def port():
    return load_lyra()


@pytest.fixture(scope="module")
def clip() -> np.ndarray:
    wav, _ = load_audio(model_dir("speech_16k") / "example.flac")  # 16 kHz LibriSpeech
    return wav[0, 8000 : 8000 + FRAMES * 320].numpy()


def _runner(name: str):
    it = interpreter(LYRA_DIR / name)
    return it, it.get_signature_runner("serving_default")


def _activation(it, index: int) -> tuple[np.ndarray, tuple[float, float, float] | None]:
    """A tensor as float32 ``[C, T]`` and, for int8, ``(step, lowest, highest)`` values."""
    value = it.get_tensor(index)[0, :, 0, :].T
    if value.dtype == np.float32:
        return value, None
    q = it._get_tensor_details(index, 0)["quantization_parameters"]
    step, zero = float(q["scales"][0]), float(q["zero_points"][0])
    return ((value.astype(np.float32) - zero) * step).astype(np.float32), (
        step,
        (-128 - zero) * step,
        (127 - zero) * step,
    )


def _layer_errors(module, it, feed) -> tuple[list[float], list[bool]]:
    """Per graph conv: our layer on the graph's own input, error in float-relative or int8 steps."""
    convs = [op for op in it._get_ops_details() if op["op_name"] in CONV_OPS]
    worst = [0.0] * len(convs)
    for frame in range(FRAMES):
        feed(frame)
        ops = iter(enumerate(convs))
        for layer in module.conv_layers():
            groups = layer.groups if isinstance(layer, CausalConvTranspose) else 1
            for g in range(groups):
                i, op = next(ops)
                transposed = op["op_name"] == "TRANSPOSE_CONV"
                x, _ = _activation(it, op["inputs"][2 if transposed else 0])
                ref, quant = _activation(it, op["outputs"][0])
                x = torch.from_numpy(x)[None]
                if transposed:  # one op per group: this group's slice of our grouped weight
                    cin, cout = layer.weight.shape[0] // groups, layer.weight.shape[1]
                    w, b = layer.weight[g * cin : (g + 1) * cin], layer.bias[g * cout : (g + 1) * cout]
                    ours = F.conv_transpose1d(x, w, b, layer.stride)
                else:
                    ours = F.conv1d(
                        x, layer.weight, layer.bias, layer.stride, 0, layer.dilation, layer.groups
                    )
                ours = ours[0].detach()
                if quant is None:
                    err = float(np.abs(ours.numpy() - ref).max() / np.abs(ref).max())
                else:
                    err = float(np.abs(ours.clamp(quant[1], quant[2]).numpy() - ref).max() / quant[0])
                worst[i] = max(worst[i], err)
    return worst, [_is_int8(it, op) for op in convs]


def _is_int8(it, op) -> bool:
    return it.get_tensor(op["outputs"][0]).dtype == np.int8


def _tflite_embeddings(clip: np.ndarray) -> np.ndarray:
    _, run = _runner(ENCODER_FILE)
    return np.stack([run(input_audio=clip[f * 320 : (f + 1) * 320][None])["output_0"] for f in range(FRAMES)])


def _check(worst: list[float], int8: list[bool]) -> None:
    assert any(int8) and not all(int8)
    for i, (err, q) in enumerate(zip(worst, int8, strict=True)):
        assert err <= (0.5 + 1e-3 if q else FLOAT_TOL), f"conv {i} ({'int8' if q else 'float'}): {err}"


def test_every_encoder_conv_matches_the_graph(port, clip) -> None:
    it, run = _runner(ENCODER_FILE)
    worst, int8 = _layer_errors(port[0], it, lambda f: run(input_audio=clip[f * 320 : (f + 1) * 320][None]))
    _check(worst, int8)


def test_every_decoder_conv_matches_the_graph(port, clip) -> None:
    emb = _tflite_embeddings(clip)
    it, run = _runner(DECODER_FILE)
    worst, int8 = _layer_errors(port[1], it, lambda f: run(input_audio=emb[f]))
    _check(worst, int8)


def test_encoder_and_decoder_agree_with_tflite_end_to_end(port, clip) -> None:
    encoder, decoder = port
    emb = _tflite_embeddings(clip)[:, 0, 0]  # [F, 64]
    with torch.no_grad():
        ours = encoder(torch.from_numpy(clip)[None])[0].numpy()
        state = decoder.init_state(1, torch.device("cpu"), torch.float32)
        audio = decoder(torch.from_numpy(emb)[None], state)[0].numpy()
    _, run = _runner(DECODER_FILE)
    ref = np.concatenate([run(input_audio=e[None, None])["output_0"].reshape(-1) for e in emb])
    assert np.sqrt(np.mean((ours - emb) ** 2)) <= 0.15 * np.sqrt(np.mean(emb**2))
    snr = 10 * np.log10(np.sum(ref**2) / np.sum((audio - ref) ** 2))
    assert snr >= 15.0, snr


def test_a_graph_of_another_shape_is_refused() -> None:
    with pytest.raises(LyraWeightsError):
        load_tflite_weights(LyraEncoder(), LYRA_DIR / DECODER_FILE)
