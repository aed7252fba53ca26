"""Lyra v2's TFLite weights -> our :mod:`codec.modules.lyra` modules (float32).

The TFLite files (Apache-2.0, Google; in ``codec/bench/lyra_v2/``) are read with the TFLite
runtime (``ai-edge-litert``, the ``bench`` extra): its op list gives every convolution in
execution order with its weight and bias tensors, and the tensors' quantization parameters
(int8 weights with per-channel or per-tensor scales, int32 biases) dequantize them:
``(q - zero_point) * scale``.  The modules list their convs in the same order
(``conv_layers()``), so the weights map one to one, each shape checked.  A grouped transposed
conv is stored in the graph as one op per group (split, convolve, concatenate): those ops are
joined into one grouped weight.

Layouts: TFLite ``CONV_2D`` ``[out, k, 1, in / groups]`` -> ``[out, in / groups, k]``;
``DEPTHWISE_CONV_2D`` ``[1, k, 1, C]`` -> ``[C, 1, k]``; ``TRANSPOSE_CONV`` ``[out, k, 1, in]``
-> ``[in, out, k]`` (no kernel flip: both compute ``y[o, t * s + j] += x[i, t] * w``).

Only the conversion needs the runtime; the converted weights are ordinary safetensors.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from codec.config import CodecConfig, QuantizerConfig
from codec.errors import InputError
from codec.model import CodecModel, build_model
from codec.modules.lyra import LATENT_DIM, LyraDecoder, LyraEncoder
from codec.modules.soundstream import CausalConv, CausalConvTranspose
from codec.quantize.codebook import kmeans
from codec.quantize.rvq import ResidualVQ

LYRA_DIR = Path(__file__).resolve().parent / "bench" / "lyra_v2"
ENCODER_FILE, DECODER_FILE = "soundstream_encoder.tflite", "lyragan.tflite"
_CONV_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV")


class LyraWeightsError(InputError):
    """A TFLite file does not hold the Lyra v2 graph these modules expect."""


def interpreter(path: str | Path):
    """A TFLite interpreter for ``path`` that keeps every tensor readable."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        raise LyraWeightsError(
            "reading Lyra's TFLite files needs ai-edge-litert: pip install 'codec[bench]'"
        ) from None
    with warnings.catch_warnings():
        # It warns that keeping every tensor costs memory: these graphs are small, and the
        # weights (and, in the parity tests, the activations) are what we read.
        warnings.simplefilter("ignore", UserWarning)
        it = Interpreter(model_path=str(path), experimental_preserve_all_tensors=True)
    it.allocate_tensors()
    return it


def _dequantize(it, index: int) -> np.ndarray:
    """A constant tensor as float32: int8/int32 tensors through their scales and zero points."""
    detail = it._get_tensor_details(index, 0)
    value = it.get_tensor(index)
    if value.dtype == np.float32:
        return value
    q = detail["quantization_parameters"]
    scales, zeros, axis = q["scales"], q["zero_points"], q["quantized_dimension"]
    if len(scales) == 0:
        raise LyraWeightsError(f"tensor {detail['name']!r} is {value.dtype} without quantization scales")
    shape = [1] * value.ndim
    if len(scales) > 1:
        shape[axis] = len(scales)
    scale = np.asarray(scales, np.float64).reshape(shape)
    zero = np.asarray(zeros, np.float64).reshape(shape)
    return ((value.astype(np.float64) - zero) * scale).astype(np.float32)


def conv_ops(it) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """``(op name, weight, bias)`` of every convolution of the graph, in execution order."""
    out = []
    for op in it._get_ops_details():
        if op["op_name"] not in _CONV_OPS:
            continue
        inputs = list(op["inputs"])
        # TRANSPOSE_CONV takes (output shape, weight, input, bias); the others (input, weight, bias).
        weight, bias = (inputs[1], inputs[3]) if op["op_name"] == "TRANSPOSE_CONV" else (inputs[1], inputs[2])
        out.append((op["op_name"], _dequantize(it, weight), _dequantize(it, bias)))
    return out


def _torch_weight(kind: str, w: np.ndarray) -> np.ndarray:
    if kind == "CONV_2D":
        return w[:, :, 0, :].transpose(0, 2, 1)
    if kind == "DEPTHWISE_CONV_2D":
        return w[0, :, 0, :].T[:, None, :]
    return w[:, :, 0, :].transpose(2, 0, 1)


def load_tflite_weights(module: nn.Module, path: str | Path) -> None:
    """Fill ``module`` (a :class:`LyraEncoder` or :class:`LyraDecoder`) from the TFLite file."""
    ops = conv_ops(interpreter(path))
    layers = module.conv_layers()
    i = 0
    for layer in layers:
        want = "TRANSPOSE_CONV" if isinstance(layer, CausalConvTranspose) else None
        parts = layer.groups if want else 1
        taken = ops[i : i + parts]
        i += parts
        if len(taken) < parts:
            raise LyraWeightsError(f"{path}: fewer convolutions than the model has ({len(ops)})")
        weights = [_torch_weight(k, w) for k, w, _ in taken]
        kinds = {k for k, _, _ in taken}
        if (want and kinds != {want}) or (not want and "TRANSPOSE_CONV" in kinds):
            raise LyraWeightsError(f"{path}: op {sorted(kinds)} where the model has {type(layer).__name__}")
        weight = np.concatenate(weights, axis=0)
        bias = np.concatenate([b for _, _, b in taken])
        _assign(layer, weight, bias, path)
    if i != len(ops):
        raise LyraWeightsError(f"{path}: {len(ops)} convolutions, the model uses {i}")


def _assign(layer: CausalConv | CausalConvTranspose, weight: np.ndarray, bias: np.ndarray, path) -> None:
    if tuple(weight.shape) != tuple(layer.weight.shape) or tuple(bias.shape) != tuple(layer.bias.shape):
        raise LyraWeightsError(
            f"{path}: weight {tuple(weight.shape)} / bias {tuple(bias.shape)} where the model has "
            f"{tuple(layer.weight.shape)} / {tuple(layer.bias.shape)}"
        )
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(np.ascontiguousarray(weight)))
        layer.bias.copy_(torch.from_numpy(np.ascontiguousarray(bias)))


def load_lyra(folder: str | Path = LYRA_DIR) -> tuple[LyraEncoder, LyraDecoder]:
    """Lyra v2's encoder and decoder with the weights of the TFLite files in ``folder``."""
    folder = Path(folder)
    encoder, decoder = LyraEncoder(), LyraDecoder()
    load_tflite_weights(encoder, folder / ENCODER_FILE)
    load_tflite_weights(decoder, folder / DECODER_FILE)
    return encoder.eval(), decoder.eval()


def lyra_config(name: str, total_codebooks: int = 12, codebook_size: int = 1024) -> CodecConfig:
    """A model of Lyra v2's encoder and decoder around our residual VQ (Euclidean codes in the
    64-d embedding itself, no projection: 50 Hz x ``log2(codebook_size)`` bits per level)."""
    q = QuantizerConfig(
        kind="euclidean",
        total_codebooks=total_codebooks,
        codebook_size=codebook_size,
        codebook_dim=LATENT_DIM,
    )
    return CodecConfig(name=name, architecture="lyra_v2", latent_dim=LATENT_DIM, quantizer=q)


def build_lyra_model(cfg: CodecConfig, folder: str | Path = LYRA_DIR) -> CodecModel:
    """A model for ``cfg`` (architecture ``lyra_v2``) with Lyra v2's encoder and decoder weights
    read from the TFLite files in ``folder``; the quantizer keeps its initialisation."""
    if cfg.architecture != "lyra_v2":
        raise ValueError(f"config {cfg.name!r} is not of architecture lyra_v2")
    model = build_model(cfg)
    load_tflite_weights(model.encoder, Path(folder) / ENCODER_FILE)
    load_tflite_weights(model.decoder, Path(folder) / DECODER_FILE)
    return model.eval()


@torch.no_grad()
def fit_residual_kmeans(quantizer: ResidualVQ, latent: torch.Tensor, iters: int = 20) -> list[float]:
    """Seed every level of a Euclidean residual VQ with k-means of the residual it sees.

    Level 1 clusters the latents, level 2 what level 1 leaves, and so on, so the first ``k``
    levels are each the best this greedy fit gives for ``k`` levels (a valid lower bitrate).

    Args: latent ``[M, D]`` (e.g. encoder outputs of a training set); iters: Lloyd iterations.
    Returns: the mean squared residual after each level.
    """
    residual, errors = latent.float(), []
    for lvl in quantizer.levels:
        if lvl.projected:
            raise ValueError("residual k-means needs Euclidean levels without projection")
        lvl.codebook.embed.copy_(kmeans(residual, lvl.codebook.size, iters))
        lvl.codebook.initialized.fill_(True)
        search, bias, out = lvl.search_tensors()
        idx = torch.cat([(part @ search.T - bias).argmax(-1) for part in residual.split(65536)])
        residual = residual - out[idx]
        errors.append(float(residual.pow(2).mean()))
    return errors
