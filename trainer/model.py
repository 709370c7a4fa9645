"""The built-in model: every hyperparameter of ``trainer.hyperparameters`` turned into Keras layers.

The graph is: input -> resizing -> augmentation -> either a keras.applications base (with the
preprocessing it expects) or a conv stack -> global pooling -> dense stack -> softmax. Only built-in,
serialisable layers are used (no Lambda), so a model saved in the .keras format loads with plain Keras.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import keras
import numpy as np

from katib_hp.space import Value
from trainer.args import EXIT_MODEL, TrainConfig, TrainerError
from trainer.data import Remote, cache_location, fetch
from trainer.hyperparameters import builtin_space

# Smallest input keras.applications bases accept.
MIN_BASE_SIZE = 32
# keras.applications' ImageNet statistics (RGB, inputs in [0, 1]); EfficientNet's loaded model rescales by
# 1/sqrt(std) after its Normalization layer, ResNet50 ("caffe" mode) subtracts the BGR means in 0..255.
IMAGENET_STD_RGB = (0.229, 0.224, 0.225)
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
MOBILENET_V2_SIZES = (96, 128, 160, 192, 224)

_APPS = "https://storage.googleapis.com/tensorflow/keras-applications/"
# Module level so that a test can point a base at an origin that fails at once.
IMAGENET_WEIGHTS: dict[str, Remote] = {
    "efficientnet_b0": Remote("efficientnetb0_notop.h5",
                              "https://storage.googleapis.com/keras-applications/efficientnetb0_notop.h5",
                              "50bc09e76180e00e4465e1a485ddc09d", cache_subdir="models"),
    "resnet50": Remote("resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
                       _APPS + "resnet/resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
                       "4d473c1dd8becc155b73f8504c6f6626", cache_subdir="models"),
}


def _mobilenet_v2_weights(size: int) -> Remote:
    # Trained checkpoints exist for a few input sizes; Keras uses the 224 one for any other size.
    rows = size if size in MOBILENET_V2_SIZES else 224
    fname = f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_{rows}_no_top.h5"
    return Remote(fname, _APPS + "mobilenet_v2/" + fname, cache_subdir="models")


def _hp(hparams: Mapping[str, Value]) -> dict[str, Value]:
    """The given values over the space's defaults, so a partial mapping still builds."""
    return {**builtin_space().defaults(), **hparams}


# Optimizer and learning rate.

def learning_rate(
    hparams: Mapping[str, Value], steps_per_epoch: int
) -> float | keras.optimizers.schedules.LearningRateSchedule:
    """The learning rate, or the schedule that produces it, for ``lr_schedule``.

    ``exponential`` and ``cosine`` decay over ``decay_steps`` optimizer steps; ``step`` multiplies the
    rate by ``step_drop_factor`` every ``step_drop_every`` epochs (as many drops as ``epochs`` needs).
    ``plateau`` returns the constant rate: the training loop adds a ReduceLROnPlateau callback with
    ``plateau_factor`` and ``plateau_patience``, which needs a plain rate to adjust.

    Args:
        hparams: hyperparameter values.
        steps_per_epoch: optimizer steps in one epoch (converts epochs to steps).

    Returns:
        A float or a ``LearningRateSchedule``.
    """
    hp = _hp(hparams)
    rate = float(hp["learning_rate"])
    schedule = hp["lr_schedule"]
    schedules = keras.optimizers.schedules
    if schedule == "exponential":
        return schedules.ExponentialDecay(rate, int(hp["decay_steps"]), float(hp["decay_rate"]))
    if schedule == "cosine":
        return schedules.CosineDecay(rate, int(hp["decay_steps"]), alpha=float(hp["cosine_alpha"]))
    if schedule == "step":
        every = int(hp["step_drop_every"])
        drops = max(1, math.ceil(int(hp["epochs"]) / every))
        step = every * max(1, int(steps_per_epoch))
        factor = float(hp["step_drop_factor"])
        return schedules.PiecewiseConstantDecay(
            [step * k for k in range(1, drops + 1)], [rate * factor**k for k in range(drops + 1)]
        )
    if schedule in ("constant", "plateau"):
        return rate
    raise ValueError(f"unknown lr_schedule {schedule!r}")


def build_optimizer(hparams: Mapping[str, Value], steps_per_epoch: int) -> keras.optimizers.Optimizer:
    """The optimizer ``hparams`` describe, with its learning rate or schedule.

    Args:
        hparams: hyperparameter values; those of other optimizers are ignored.
        steps_per_epoch: optimizer steps in one epoch (for epoch-based schedules).
    """
    hp = _hp(hparams)
    rate = learning_rate(hp, steps_per_epoch)
    name = hp["optimizer"]
    opt = keras.optimizers
    if name == "adam":
        return opt.Adam(rate, beta_1=float(hp["beta_1"]), beta_2=float(hp["beta_2"]))
    if name == "adamw":
        return opt.AdamW(rate, weight_decay=float(hp["weight_decay"]), beta_1=float(hp["beta_1"]),
                         beta_2=float(hp["beta_2"]))
    if name == "sgd":
        return opt.SGD(rate, momentum=float(hp["momentum"]), nesterov=bool(hp["nesterov"]))
    if name == "rmsprop":
        return opt.RMSprop(rate, momentum=float(hp["momentum"]))
    if name == "adagrad":
        return opt.Adagrad(rate)
    if name == "adadelta":
        return opt.Adadelta(rate)
    raise ValueError(f"unknown optimizer {name!r}")


# Layers.

def _regularizer(hp: Mapping[str, Value]) -> keras.regularizers.Regularizer | None:
    kind = hp["regularization"]
    if kind == "l1":
        return keras.regularizers.L1(float(hp["l1"]))
    if kind == "l2":
        return keras.regularizers.L2(float(hp["l2"]))
    if kind == "l1_l2":
        return keras.regularizers.L1L2(l1=float(hp["l1"]), l2=float(hp["l2"]))
    return None


def _augment(x: keras.KerasTensor, hp: Mapping[str, Value], seed: int) -> keras.KerasTensor:
    """Random augmentation layers (identity at inference), only those whose factor is > 0."""
    layers = keras.layers
    if float(hp["aug_rotation"]) > 0:
        x = layers.RandomRotation(float(hp["aug_rotation"]), seed=seed, name="aug_rotation")(x)
    height, width = float(hp["aug_height_shift"]), float(hp["aug_width_shift"])
    if height > 0 or width > 0:
        x = layers.RandomTranslation(height, width, seed=seed + 1, name="aug_translation")(x)
    if float(hp["aug_zoom"]) > 0:
        x = layers.RandomZoom(float(hp["aug_zoom"]), seed=seed + 2, name="aug_zoom")(x)
    flips = [m for m, on in (("horizontal", hp["aug_horizontal_flip"]), ("vertical", hp["aug_vertical_flip"]))
             if on]
    if flips:
        x = layers.RandomFlip("_and_".join(flips), seed=seed + 3, name="aug_flip")(x)
    if float(hp["aug_brightness"]) > 0:
        x = layers.RandomBrightness(float(hp["aug_brightness"]), value_range=(0.0, 1.0), seed=seed + 4,
                                    name="aug_brightness")(x)
    if float(hp["aug_contrast"]) > 0:
        x = layers.RandomContrast(float(hp["aug_contrast"]), value_range=(0.0, 1.0), seed=seed + 5,
                                  name="aug_contrast")(x)
    return x


def _block(
    x: keras.KerasTensor, layer: keras.layers.Layer, hp: Mapping[str, Value], prefix: str
) -> keras.KerasTensor:
    """``layer`` -> batch norm (optional) -> activation."""
    x = layer(x)
    if hp["batch_norm"]:
        x = keras.layers.BatchNormalization(name=f"{prefix}_bn")(x)
    return keras.layers.Activation(str(hp["activation"]), name=f"{prefix}_act")(x)


def _conv_stack(x: keras.KerasTensor, hp: Mapping[str, Value], seed: int) -> keras.KerasTensor:
    layers = keras.layers
    pooling = {"max": layers.MaxPooling2D, "avg": layers.AveragePooling2D}.get(str(hp["pooling"]))
    conv_dropout = hp["dropout_placement"] in ("after_conv", "both") and float(hp["conv_dropout_rate"]) > 0
    for i in range(int(hp["num_conv_layers"])):
        conv = layers.Conv2D(
            int(hp[f"conv_filters_{i}"]), int(hp[f"conv_kernel_size_{i}"]),
            strides=int(hp[f"conv_strides_{i}"]), padding="same",
            kernel_initializer=str(hp["kernel_initializer"]), kernel_regularizer=_regularizer(hp),
            use_bias=not hp["batch_norm"], name=f"conv_{i}",
        )
        x = _block(x, conv, hp, f"conv_{i}")
        if pooling is not None and (x.shape[1] > 1 or x.shape[2] > 1):
            x = pooling(2, padding="same", name=f"conv_{i}_pool")(x)
        if conv_dropout:
            x = layers.Dropout(float(hp["conv_dropout_rate"]), seed=seed + i, name=f"conv_{i}_dropout")(x)
    return x


def _dense_stack(x: keras.KerasTensor, hp: Mapping[str, Value], seed: int) -> keras.KerasTensor:
    layers = keras.layers
    dropout = hp["dropout_placement"] in ("after_dense", "both")
    for i in range(int(hp["num_dense_layers"])):
        dense = layers.Dense(
            int(hp[f"dense_units_{i}"]), kernel_initializer=str(hp["kernel_initializer"]),
            kernel_regularizer=_regularizer(hp), use_bias=not hp["batch_norm"], name=f"dense_{i}",
        )
        x = _block(x, dense, hp, f"dense_{i}")
        if dropout and float(hp[f"dropout_rate_{i}"]) > 0:
            x = layers.Dropout(float(hp[f"dropout_rate_{i}"]), seed=seed + i, name=f"dense_{i}_dropout")(x)
    return x


def _global_pooling(x: keras.KerasTensor, kind: str) -> keras.KerasTensor:
    if kind == "avg":
        return keras.layers.GlobalAveragePooling2D(name="global_pool")(x)
    if kind == "max":
        return keras.layers.GlobalMaxPooling2D(name="global_pool")(x)
    return keras.layers.Flatten(name="flatten")(x)


# keras.applications bases.

def _weights_error(base: str, problem: str) -> TrainerError:
    return TrainerError(
        f"--base-weights for {base}: {problem}; pass --base-weights=PATH to a local weights file "
        "(or pre-populate the cache, --cache-dir), or --base-weights=random to train from scratch",
        EXIT_MODEL,
    )


def _base_network(base: str, size: tuple[int, int], config: TrainConfig) -> tuple[keras.Model, bool]:
    """The headless base with its weights loaded, and whether they are the ImageNet ones."""
    constructor = {
        "mobilenet_v2": keras.applications.MobileNetV2,
        "efficientnet_b0": keras.applications.EfficientNetB0,
        "resnet50": keras.applications.ResNet50,
    }[base]
    # weights=None everywhere: the download goes through our own cache directory and error reporting.
    model = constructor(include_top=False, weights=None, input_shape=(*size, 3), name=base)
    choice = config.base_weights
    if choice == "random":
        return model, False
    if choice == "imagenet":
        remote = _mobilenet_v2_weights(size[0]) if base == "mobilenet_v2" else IMAGENET_WEIGHTS[base]
        try:
            path = fetch(remote, config.cache_dir)
        except OSError as exc:
            raise _weights_error(
                base, f"ImageNet weights are not in {cache_location(config.cache_dir)}/models/{remote.fname} "
                f"and their download from {remote.origin} failed ({exc})"
            ) from None
    else:
        path = Path(choice).expanduser()
        if not path.is_file():
            raise _weights_error(base, f"no weights file at {path}")
    try:
        model.load_weights(str(path))
    except Exception as exc:  # h5py, ValueError on mismatched layers, ... all mean "unusable file"
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise _weights_error(base, f"cannot load {path} into a headless {base} ({reason})") from None
    return model, choice == "imagenet"


def _base_preprocessing(
    x: keras.KerasTensor, base: str, network: keras.Model, imagenet: bool
) -> keras.KerasTensor:
    """Map [0, 1] RGB images to the input range each base was trained on."""
    layers = keras.layers
    if base == "mobilenet_v2":
        return layers.Rescaling(2.0, offset=-1.0, name="mobilenet_v2_preprocess")(x)
    if base == "efficientnet_b0":
        # The network rescales 0..255 inputs and normalises them itself; with ImageNet weights Keras also
        # inserts a 1/sqrt(std) rescaling after its Normalization layer, which weights=None leaves out.
        # The same correction, moved before the network, is a per-channel affine map of the input.
        if not imagenet:
            return layers.Rescaling(255.0, name="efficientnet_b0_preprocess")(x)
        norm = next(layer for layer in network.layers if isinstance(layer, layers.Normalization))
        mean = np.asarray(norm.mean, dtype=np.float64).reshape(-1)
        root = np.sqrt(np.asarray(IMAGENET_STD_RGB))
        scale = 255.0 / root
        offset = 255.0 * mean * (1.0 - 1.0 / root)
        return layers.Rescaling([float(v) for v in scale], offset=[float(v) for v in offset],
                                name="efficientnet_b0_preprocess")(x)
    # ResNet50 expects BGR in 0..255 minus the ImageNet means: a fixed 1x1 convolution permutes, scales
    # and shifts the channels in one serialisable, non-trainable layer.
    conv = layers.Conv2D(3, 1, trainable=False, name="resnet50_preprocess")
    x = conv(x)
    kernel = np.zeros((1, 1, 3, 3), dtype=np.float32)
    for rgb in range(3):
        kernel[0, 0, rgb, 2 - rgb] = 255.0
    conv.set_weights([kernel, -np.asarray(CAFFE_MEAN_BGR, dtype=np.float32)])
    return x


def _base_stack(
    x: keras.KerasTensor, hp: Mapping[str, Value], config: TrainConfig
) -> keras.KerasTensor:
    base = str(hp["base_model"])
    channels = x.shape[-1]
    if channels == 1:
        x = keras.layers.Concatenate(name="to_rgb")([x, x, x])
    elif channels != 3:
        raise TrainerError(f"--base_model={base} needs images with 1 or 3 channels, got {channels}; use "
                           "--base_model=none or convert the images", EXIT_MODEL)
    network, imagenet = _base_network(base, (int(x.shape[1]), int(x.shape[2])), config)
    x = _base_preprocessing(x, base, network, imagenet)
    # Frozen layers (trainable=False) include their BatchNormalization layers, which Keras then runs in
    # inference mode, so their statistics are not disturbed by the new task.
    network.trainable = True
    for layer in network.layers[: int(hp["fine_tune_at"])]:
        layer.trainable = False
    x = network(x)
    if hp["dropout_placement"] in ("after_conv", "both") and float(hp["conv_dropout_rate"]) > 0:
        x = keras.layers.Dropout(float(hp["conv_dropout_rate"]), name="base_dropout")(x)
    return x


def _target_size(hp: Mapping[str, Value], input_shape: tuple[int, int, int]) -> tuple[int, int]:
    size = int(hp["image_size"])
    height, width = (size, size) if size > 0 else input_shape[:2]
    if hp["base_model"] != "none":
        height, width = max(height, MIN_BASE_SIZE), max(width, MIN_BASE_SIZE)
    return height, width


def build_model(
    hparams: Mapping[str, Value],
    input_shape: tuple[int, int, int],
    num_classes: int,
    *,
    steps_per_epoch: int,
    config: TrainConfig,
) -> keras.Model:
    """Build and compile the built-in model.

    Inputs are float32 images in [0, 1]. They are resized when ``image_size`` > 0 differs from their size
    (bases get at least 32x32), augmented while training, then go through either a keras.applications base
    (``base_model``; grayscale repeated to RGB; layers below ``fine_tune_at`` frozen; ``after_conv``
    dropout follows the base) or the conv stack. The output is a float32 softmax, so mixed precision is
    safe. Hyperparameters that the others make inactive are ignored.

    Args:
        hparams: hyperparameter values of ``trainer.hyperparameters``; missing ones take their defaults.
        input_shape: (height, width, channels) of the images.
        num_classes: number of classes.
        steps_per_epoch: optimizer steps per epoch, for epoch-based learning-rate schedules.
        config: run settings (``base_weights``, ``cache_dir``, ``xla``, seed).

    Returns:
        A compiled model (sparse categorical cross-entropy, accuracy).

    Raises:
        TrainerError: with ``EXIT_MODEL`` when the base's weights cannot be had or loaded.
    """
    hp = _hp(hparams)
    seed = int(hp["seed"])
    base = str(hp["base_model"])
    inputs = keras.Input(shape=input_shape, name="image")
    x = inputs
    height, width = _target_size(hp, input_shape)
    if (height, width) != tuple(input_shape[:2]):
        x = keras.layers.Resizing(height, width, name="resize")(x)
    x = _augment(x, hp, seed)
    x = _base_stack(x, hp, config) if base != "none" else _conv_stack(x, hp, seed + 10)
    x = _global_pooling(x, str(hp["global_pooling"]))
    x = _dense_stack(x, hp, seed + 20)
    outputs = keras.layers.Dense(
        num_classes, activation="softmax", kernel_initializer=str(hp["kernel_initializer"]),
        kernel_regularizer=_regularizer(hp), dtype="float32", name="predictions",
    )(x)
    family = base if base != "none" else ("cnn" if int(hp["num_conv_layers"]) > 0 else "mlp")
    model = keras.Model(inputs, outputs, name=f"builtin_{family}")
    model.compile(
        optimizer=build_optimizer(hp, steps_per_epoch),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        jit_compile=bool(config.xla),
    )
    return model
