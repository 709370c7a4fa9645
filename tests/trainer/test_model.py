"""trainer.model: every hyperparameter reaches the model, at tiny sizes."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest

from trainer import model as builtin
from trainer.args import EXIT_MODEL, TrainConfig, TrainerError, parse_args
from trainer.data import Remote
from trainer.hyperparameters import ACTIVATIONS, DROPOUT_PLACEMENTS, GLOBAL_POOLINGS, POOLINGS

# Small conv and dense stacks so each build takes milliseconds.
TINY = ("--conv_filters_0=8", "--conv_filters_1=8", "--conv_filters_2=8", "--conv_filters_3=8",
        "--dense_units_0=8", "--dense_units_1=8", "--dense_units_2=8", "--dense_units_3=8")


def config(*argv: str) -> TrainConfig:
    return parse_args([*TINY, *argv])[0]


def build(*argv: str, input_shape: tuple[int, int, int] = (8, 8, 1), classes: int = 3,
          steps_per_epoch: int = 10) -> keras.Model:
    cfg = config(*argv)
    return builtin.build_model(cfg.hparams, input_shape, classes, steps_per_epoch=steps_per_epoch, config=cfg)


def of_type(model: keras.Model, kind: type) -> list[keras.layers.Layer]:
    return [layer for layer in model.layers if isinstance(layer, kind)]


def train_one_step(model: keras.Model, input_shape: tuple[int, int, int], classes: int = 3) -> float:
    rng = np.random.default_rng(0)
    x = rng.random((8, *input_shape), dtype=np.float32)
    y = rng.integers(0, classes, 8)
    loss = model.train_on_batch(x, y, return_dict=True)["loss"]
    return float(loss)


# Architecture.

def test_mlp() -> None:
    model = build("--num_conv_layers=0", "--num_dense_layers=2")
    assert not of_type(model, keras.layers.Conv2D)
    assert len(of_type(model, keras.layers.Dense)) == 3
    assert model.name == "builtin_mlp"
    assert model.output.shape == (None, 3)
    assert np.isfinite(train_one_step(model, (8, 8, 1)))


@pytest.mark.parametrize("pooling", POOLINGS)
@pytest.mark.parametrize("global_pooling", GLOBAL_POOLINGS)
def test_conv_stack_poolings(pooling: str, global_pooling: str) -> None:
    model = build("--num_conv_layers=2", f"--pooling={pooling}", f"--global_pooling={global_pooling}",
                  "--conv_kernel_size_1=5", "--conv_strides_1=2")
    convs = of_type(model, keras.layers.Conv2D)
    assert [c.kernel_size for c in convs] == [(3, 3), (5, 5)]
    assert [c.strides for c in convs] == [(1, 1), (2, 2)]
    assert all(c.padding == "same" for c in convs)
    pools = {"max": keras.layers.MaxPooling2D, "avg": keras.layers.AveragePooling2D}
    for kind, cls in pools.items():
        assert len(of_type(model, cls)) == (2 if kind == pooling else 0)
    final = {"flatten": keras.layers.Flatten, "avg": keras.layers.GlobalAveragePooling2D,
             "max": keras.layers.GlobalMaxPooling2D}[global_pooling]
    assert len(of_type(model, final)) == 1
    assert model.name == "builtin_cnn"


def test_pooling_skipped_on_1x1_feature_maps() -> None:
    model = build("--num_conv_layers=3", "--pooling=max", input_shape=(2, 2, 1))
    assert len(of_type(model, keras.layers.MaxPooling2D)) == 1


def test_conv_filters_reach_layers() -> None:
    model = build("--num_conv_layers=2", "--conv_filters_0=16", "--conv_filters_1=24")
    assert [c.filters for c in of_type(model, keras.layers.Conv2D)] == [16, 24]


@pytest.mark.parametrize("placement", DROPOUT_PLACEMENTS)
def test_dropout_placement_with_batch_norm(placement: str) -> None:
    model = build("--num_conv_layers=2", "--num_dense_layers=2", "--batch_norm",
                  f"--dropout_placement={placement}", "--conv_dropout_rate=0.3", "--dropout_rate_0=0.1",
                  "--dropout_rate_1=0.2")
    assert len(of_type(model, keras.layers.BatchNormalization)) == 4
    assert all(not layer.use_bias for layer in of_type(model, keras.layers.Conv2D))
    rates = [d.rate for d in of_type(model, keras.layers.Dropout)]
    expected = {"none": [], "after_conv": [0.3, 0.3], "after_dense": [0.1, 0.2], "both": [0.3, 0.3, 0.1, 0.2]}
    assert rates == pytest.approx(expected[placement])


def test_zero_dropout_rate_adds_no_layer() -> None:
    model = build("--num_dense_layers=1", "--dropout_placement=after_dense", "--dropout_rate_0=0")
    assert not of_type(model, keras.layers.Dropout)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_activations(activation: str) -> None:
    model = build("--num_conv_layers=1", "--num_dense_layers=1", f"--activation={activation}")
    acts = of_type(model, keras.layers.Activation)
    assert len(acts) == 2
    assert all(a.activation is keras.activations.get(activation) for a in acts)


def test_kernel_initializer() -> None:
    model = build("--num_conv_layers=1", "--kernel_initializer=he_normal")
    for layer in of_type(model, keras.layers.Conv2D) + of_type(model, keras.layers.Dense):
        assert isinstance(layer.kernel_initializer, keras.initializers.HeNormal)


@pytest.mark.parametrize(
    ("kind", "cls"),
    [("l1", keras.regularizers.L1), ("l2", keras.regularizers.L2), ("l1_l2", keras.regularizers.L1L2)],
)
def test_regularizers(kind: str, cls: type) -> None:
    model = build("--num_conv_layers=1", "--num_dense_layers=1", f"--regularization={kind}",
                  "--l1=0.001", "--l2=0.002")
    layers = of_type(model, keras.layers.Conv2D) + of_type(model, keras.layers.Dense)
    assert all(isinstance(layer.kernel_regularizer, cls) for layer in layers)
    assert len(model.losses) == len(layers) == 3
    assert all(float(loss) > 0 for loss in model.losses)


def test_no_regularizer() -> None:
    model = build("--num_conv_layers=1", "--l1=0.05")  # l1 is inactive without regularization=l1
    assert not model.losses


def test_output_is_float32_softmax() -> None:
    model = build()
    out = model.get_layer("predictions")
    assert out.dtype_policy.compute_dtype == "float32"
    assert out.activation.__name__ == "softmax"
    assert model.loss == "sparse_categorical_crossentropy"


# Input handling.

def test_no_augmentation_by_default() -> None:
    model = build()
    assert not [layer for layer in model.layers if layer.name.startswith("aug_")]


@pytest.mark.parametrize(
    ("flag", "cls"),
    [
        ("--aug_rotation=0.1", keras.layers.RandomRotation),
        ("--aug_width_shift=0.1", keras.layers.RandomTranslation),
        ("--aug_height_shift=0.2", keras.layers.RandomTranslation),
        ("--aug_zoom=0.1", keras.layers.RandomZoom),
        ("--aug_horizontal_flip", keras.layers.RandomFlip),
        ("--aug_vertical_flip", keras.layers.RandomFlip),
        ("--aug_brightness=0.2", keras.layers.RandomBrightness),
        ("--aug_contrast=0.2", keras.layers.RandomContrast),
    ],
)
def test_each_augmentation(flag: str, cls: type) -> None:
    model = build(flag)
    augment = [layer for layer in model.layers if layer.name.startswith("aug_")]
    assert len(augment) == 1 and isinstance(augment[0], cls)


def test_augmentation_details() -> None:
    model = build("--aug_horizontal_flip", "--aug_vertical_flip", "--aug_width_shift=0.1",
                  "--aug_brightness=0.2", "--seed=7")
    assert model.get_layer("aug_flip").mode == "horizontal_and_vertical"
    translation = model.get_layer("aug_translation")
    assert translation.width_factor == 0.1 and translation.height_factor == 0.0
    assert tuple(model.get_layer("aug_brightness").value_range) == (0.0, 1.0)
    x = np.full((2, 8, 8, 1), 0.5, dtype=np.float32)
    np.testing.assert_array_equal(model(x, training=False), model(x, training=False))


def test_resizing() -> None:
    model = build("--image_size=12")
    resize = model.get_layer("resize")
    assert (resize.height, resize.width) == (12, 12)
    assert not [layer for layer in build("--image_size=8").layers if isinstance(layer, keras.layers.Resizing)]
    assert not [layer for layer in build().layers if isinstance(layer, keras.layers.Resizing)]


# Optimizers and schedules.

@pytest.mark.parametrize(
    ("argv", "cls", "attributes"),
    [
        (["--optimizer=adam", "--beta_1=0.8", "--beta_2=0.95"], keras.optimizers.Adam,
         {"beta_1": 0.8, "beta_2": 0.95}),
        (["--optimizer=sgd", "--momentum=0.7", "--nesterov"], keras.optimizers.SGD,
         {"momentum": 0.7, "nesterov": True}),
        (["--optimizer=rmsprop", "--momentum=0.5"], keras.optimizers.RMSprop, {"momentum": 0.5}),
        (["--optimizer=adagrad", "--beta_1=0.6"], keras.optimizers.Adagrad, {}),
        (["--optimizer=adadelta", "--momentum=0.9"], keras.optimizers.Adadelta, {}),
        (["--optimizer=adamw", "--weight_decay=0.01", "--beta_1=0.7"], keras.optimizers.AdamW,
         {"weight_decay": 0.01, "beta_1": 0.7}),
    ],
)
def test_optimizers(argv: list[str], cls: type, attributes: dict[str, object]) -> None:
    model = build(*argv, "--learning_rate=0.05")
    assert type(model.optimizer) is cls
    assert float(model.optimizer.learning_rate) == pytest.approx(0.05)
    for name, value in attributes.items():
        assert getattr(model.optimizer, name) == pytest.approx(value)


def schedule(*argv: str, steps_per_epoch: int = 10) -> object:
    return builtin.learning_rate(config("--learning_rate=0.1", *argv).hparams, steps_per_epoch)


def at(lr: object, step: int) -> float:
    return float(keras.ops.convert_to_numpy(lr(step)))  # type: ignore[operator]


def test_constant_and_plateau_are_plain_rates() -> None:
    assert schedule() == pytest.approx(0.1)
    assert schedule("--lr_schedule=plateau", "--plateau_factor=0.2") == pytest.approx(0.1)


def test_exponential_schedule() -> None:
    lr = schedule("--lr_schedule=exponential", "--decay_steps=100", "--decay_rate=0.5")
    assert isinstance(lr, keras.optimizers.schedules.ExponentialDecay)
    assert at(lr, 0) == pytest.approx(0.1)
    assert at(lr, 100) == pytest.approx(0.05)


def test_cosine_schedule() -> None:
    lr = schedule("--lr_schedule=cosine", "--decay_steps=50", "--cosine_alpha=0.1")
    assert isinstance(lr, keras.optimizers.schedules.CosineDecay)
    assert at(lr, 0) == pytest.approx(0.1)
    assert at(lr, 50) == pytest.approx(0.01)
    assert at(lr, 25) == pytest.approx(0.055, rel=1e-3)


def test_step_schedule_drops_every_n_epochs() -> None:
    lr = schedule("--lr_schedule=step", "--step_drop_every=2", "--step_drop_factor=0.5", "--epochs=7",
                  steps_per_epoch=10)
    assert isinstance(lr, keras.optimizers.schedules.PiecewiseConstantDecay)
    assert lr.boundaries == [20, 40, 60, 80]  # covers all 7 epochs (70 steps)
    rates = [at(lr, s) for s in (0, 19, 21, 41, 61, 69)]
    assert rates == pytest.approx([0.1, 0.1, 0.05, 0.025, 0.0125, 0.0125])


def test_step_schedule_longer_than_training() -> None:
    lr = schedule("--lr_schedule=step", "--step_drop_every=50", "--epochs=3", steps_per_epoch=4)
    assert lr.boundaries == [200]  # type: ignore[attr-defined]


def test_schedule_reaches_the_optimizer() -> None:
    model = build("--lr_schedule=exponential", "--decay_steps=10", "--decay_rate=0.5")
    assert isinstance(model.optimizer._learning_rate, keras.optimizers.schedules.ExponentialDecay)
    assert np.isfinite(train_one_step(model, (8, 8, 1)))


# keras.applications bases (random weights, 32x32).

def test_mobilenet_v2_on_grayscale_8x8() -> None:
    model = build("--base_model=mobilenet_v2", "--base-weights=random", "--fine_tune_at=0",
                  "--num_dense_layers=0", "--global_pooling=avg", "--dropout_placement=after_conv")
    assert model.name == "builtin_mobilenet_v2"
    resize = model.get_layer("resize")
    assert (resize.height, resize.width) == (32, 32)
    assert isinstance(model.get_layer("to_rgb"), keras.layers.Concatenate)
    pre = model.get_layer("mobilenet_v2_preprocess")
    assert (pre.scale, pre.offset) == (2.0, -1.0)
    base = model.get_layer("mobilenet_v2")
    assert base.input.shape == (None, 32, 32, 3)
    assert model.get_layer("base_dropout").rate == 0.25
    assert model.output.shape == (None, 3)
    assert all(layer.trainable for layer in base.layers)


def test_fine_tune_at_freezes_lower_layers_and_their_batch_norm() -> None:
    model = build("--base_model=mobilenet_v2", "--base-weights=random", "--fine_tune_at=30",
                  input_shape=(32, 32, 3))
    base = model.get_layer("mobilenet_v2")
    assert not any(layer.trainable for layer in base.layers[:30])
    assert all(layer.trainable for layer in base.layers[30:])
    norms = [layer for layer in base.layers if isinstance(layer, keras.layers.BatchNormalization)]
    frozen = next(layer for layer in norms if base.layers.index(layer) < 30)
    unfrozen = next(layer for layer in norms if base.layers.index(layer) >= 30)
    before = [keras.ops.convert_to_numpy(layer.moving_mean) for layer in (frozen, unfrozen)]
    model(np.random.default_rng(0).random((4, 32, 32, 3), dtype=np.float32), training=True)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(frozen.moving_mean), before[0])
    assert not np.array_equal(keras.ops.convert_to_numpy(unfrozen.moving_mean), before[1])


def test_fine_tune_at_beyond_depth_freezes_the_whole_base() -> None:
    model = build("--base_model=mobilenet_v2", "--base-weights=random", "--fine_tune_at=1000",
                  input_shape=(32, 32, 3))
    assert not model.get_layer("mobilenet_v2").trainable_weights
    assert model.trainable_weights  # the head still trains


@pytest.mark.parametrize("base", ["efficientnet_b0", "resnet50"])
def test_other_bases_build(base: str) -> None:
    model = build(f"--base_model={base}", "--base-weights=random", "--num_dense_layers=0",
                  "--global_pooling=avg", input_shape=(32, 32, 3), classes=4)
    assert model.get_layer(base).input.shape == (None, 32, 32, 3)
    assert model.get_layer(f"{base}_preprocess") is not None
    assert model.output.shape == (None, 4)


def test_resnet50_preprocessing_is_caffe_style() -> None:
    model = build("--base_model=resnet50", "--base-weights=random", input_shape=(32, 32, 3))
    pre = model.get_layer("resnet50_preprocess")
    assert not pre.trainable and not pre.trainable_weights
    pixel = np.array([[[[0.2, 0.5, 1.0]]]], dtype=np.float32)
    out = np.asarray(pre(pixel))[0, 0, 0]
    np.testing.assert_allclose(out, [255.0 - 103.939, 127.5 - 116.779, 51.0 - 123.68], rtol=1e-5)


def test_base_needs_one_or_three_channels() -> None:
    with pytest.raises(TrainerError) as info:
        build("--base_model=mobilenet_v2", "--base-weights=random", input_shape=(32, 32, 2))
    assert info.value.exit_code == EXIT_MODEL


def test_local_weights_file_round_trip(tmp_path: Path) -> None:
    source = keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(32, 32, 3))
    path = tmp_path / "base.weights.h5"
    source.save_weights(str(path))
    model = build("--base_model=mobilenet_v2", f"--base-weights={path}", input_shape=(32, 32, 3))
    loaded = model.get_layer("mobilenet_v2").get_weights()
    for left, right in zip(source.get_weights(), loaded, strict=True):
        np.testing.assert_array_equal(left, right)


def test_missing_weights_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.h5"
    with pytest.raises(TrainerError) as info:
        build("--base_model=mobilenet_v2", f"--base-weights={path}", input_shape=(32, 32, 3))
    assert info.value.exit_code == EXIT_MODEL
    message = str(info.value)
    assert str(path) in message and "--base-weights=PATH" in message and "--base-weights=random" in message


def test_unreadable_weights_file(tmp_path: Path) -> None:
    path = tmp_path / "junk.weights.h5"
    path.write_bytes(b"not hdf5")
    with pytest.raises(TrainerError) as info:
        build("--base_model=mobilenet_v2", f"--base-weights={path}", input_shape=(32, 32, 3))
    assert info.value.exit_code == EXIT_MODEL
    assert "--base-weights" in str(info.value)


def test_imagenet_download_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(builtin, "_APPS", "http://127.0.0.1:9/")
    with pytest.raises(TrainerError) as info:
        build("--base_model=mobilenet_v2", "--base-weights=imagenet", f"--cache-dir={tmp_path}",
              input_shape=(32, 32, 3))
    assert info.value.exit_code == EXIT_MODEL
    message = str(info.value)
    assert "ImageNet" in message and "--base-weights=random" in message and str(tmp_path) in message


def test_imagenet_weights_from_cache_with_efficientnet_correction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A stand-in for the ImageNet file: a random network whose Normalization holds ImageNet statistics.
    source = keras.applications.EfficientNetB0(include_top=False, weights=None, input_shape=(32, 32, 3))
    norm = next(layer for layer in source.layers if isinstance(layer, keras.layers.Normalization))
    mean = np.array([0.485, 0.456, 0.406], dtype=np.float32)
    std = np.array(builtin.IMAGENET_STD_RGB, dtype=np.float32)
    norm.set_weights([mean, std**2, np.array(1, dtype=norm.get_weights()[2].dtype)])
    (tmp_path / "models").mkdir()
    source.save_weights(str(tmp_path / "models" / "eff.weights.h5"))
    monkeypatch.setitem(builtin.IMAGENET_WEIGHTS, "efficientnet_b0",
                        Remote("eff.weights.h5", "http://127.0.0.1:9/eff.weights.h5", cache_subdir="models"))
    model = build("--base_model=efficientnet_b0", "--base-weights=imagenet", f"--cache-dir={tmp_path}",
                  input_shape=(32, 32, 3))
    pre = model.get_layer("efficientnet_b0_preprocess")
    root = np.sqrt(std)
    np.testing.assert_allclose(pre.scale, 255.0 / root, rtol=1e-5)
    np.testing.assert_allclose(pre.offset, 255.0 * mean * (1 - 1 / root), rtol=1e-4)


# Whole-model behaviour.

def test_one_training_step_is_finite() -> None:
    model = build("--num_conv_layers=2", "--num_dense_layers=1", "--batch_norm", "--dropout_placement=both",
                  "--regularization=l1_l2", "--optimizer=sgd", "--momentum=0.9", "--aug_rotation=0.1",
                  "--aug_contrast=0.2", "--image_size=12")
    assert np.isfinite(train_one_step(model, (8, 8, 1)))


def test_partial_hparams_take_defaults() -> None:
    cfg = config()
    model = builtin.build_model({"num_conv_layers": 0}, (8, 8, 1), 2, steps_per_epoch=1, config=cfg)
    assert model.name == "builtin_mlp"


@pytest.mark.parametrize(
    "argv",
    [
        ("--num_conv_layers=1", "--aug_zoom=0.1", "--aug_brightness=0.1", "--batch_norm"),
        ("--base_model=mobilenet_v2", "--base-weights=random", "--fine_tune_at=20"),
        pytest.param(("--base_model=resnet50", "--base-weights=random"), marks=pytest.mark.slow),
    ],
)
def test_keras_format_round_trip(tmp_path: Path, argv: tuple[str, ...]) -> None:
    model = build(*argv, input_shape=(8, 8, 1))
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, compile=False)
    x = np.random.default_rng(0).random((2, 8, 8, 1), dtype=np.float32)
    np.testing.assert_allclose(loaded(x, training=False), model(x, training=False), rtol=1e-5, atol=1e-6)


def test_mixed_precision_keeps_a_float32_output() -> None:
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = build("--num_conv_layers=1", "--batch_norm", "--aug_contrast=0.1")
        assert model.get_layer("conv_0").compute_dtype == "float16"
        assert model.output.dtype == "float32"
        assert np.isfinite(train_one_step(model, (8, 8, 1)))
    finally:
        keras.mixed_precision.set_global_policy("float32")
