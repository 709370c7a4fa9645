"""Plain KerasTuner hypermodels, written as a KerasTuner user would, for ``--hypermodel`` tests.

Inputs are the ``digits`` dataset's 8x8x1 images, 10 classes.
"""

from __future__ import annotations

import keras
import keras_tuner as kt

NUM_CLASSES = 10
BUILD_CALLS = {"count": 0}


def build_mlp(hp: kt.HyperParameters) -> keras.Model:
    """A build(hp) function with a layer loop and a parameter that only exists when a Boolean is on."""
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten()])
    for i in range(hp.Int("num_layers", 1, 3)):
        model.add(keras.layers.Dense(hp.Int(f"units_{i}", 16, 64, step=16, default=32),
                                     activation=hp.Choice("activation", ["relu", "tanh"])))
    if hp.Boolean("dropout"):
        model.add(keras.layers.Dropout(hp.Float("dropout_rate", 0.1, 0.5, step=0.1)))
    model.add(keras.layers.Dense(NUM_CLASSES, activation="softmax"))
    model.compile(
        optimizer=keras.optimizers.Adam(hp.Float("learning_rate", 1e-4, 1e-1, sampling="log", default=1e-2)),
        loss="sparse_categorical_crossentropy",
        metrics=["sparse_categorical_accuracy"],
    )
    return model


class ConditionalHyperModel(kt.HyperModel):
    """A HyperModel subclass: model selection with conditional_scope, a conv loop, and a fit override."""

    def build(self, hp: kt.HyperParameters) -> keras.Model:
        BUILD_CALLS["count"] += 1
        model_type = hp.Choice("model_type", ["mlp", "cnn"])
        inputs = keras.Input((8, 8, 1))
        x = inputs
        with hp.conditional_scope("model_type", ["cnn"]):
            if model_type == "cnn":
                for i in range(hp.Int("conv_layers", 1, 2)):
                    x = keras.layers.Conv2D(hp.Choice(f"filters_{i}", [8, 16]), 3, padding="same",
                                            activation="relu")(x)
        x = keras.layers.Flatten()(x)
        with hp.conditional_scope("model_type", ["mlp"]):
            if model_type == "mlp":
                x = keras.layers.Dense(hp.Int("units", 32, 128, step=32), activation="relu")(x)
        outputs = keras.layers.Dense(NUM_CLASSES, activation="softmax")(x)
        model = keras.Model(inputs, outputs)
        model.compile(
            optimizer=keras.optimizers.Adam(hp.Float("lr", 1e-3, 1e-2, sampling="log", default=5e-3)),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        return model

    def fit(self, hp: kt.HyperParameters, model: keras.Model, *args, **kwargs):  # type: ignore[no-untyped-def]
        # The KerasTuner documentation's pattern: tune the batch size in fit.
        return model.fit(*args, batch_size=hp.Choice("batch_size", [16, 32, 64], default=32), **kwargs)


class ScopedHyperModel(kt.HyperModel):
    """Names under hp.name_scope contain '/', which Katib parameter names cannot."""

    def build(self, hp: kt.HyperParameters) -> keras.Model:
        model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten()])
        with hp.name_scope("block"):
            model.add(keras.layers.Dense(hp.Int("units", 16, 32, step=16), activation="relu"))
        model.add(keras.layers.Dense(NUM_CLASSES, activation="softmax"))
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        return model


class NeedsArguments(kt.HyperModel):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.width = width

    def build(self, hp: kt.HyperParameters) -> keras.Model:  # pragma: no cover - never instantiated
        raise AssertionError


def broken_build(hp: kt.HyperParameters) -> keras.Model:
    hp.Int("units", 1, 4)
    raise RuntimeError("this hypermodel is broken")


def uncompiled_build(hp: kt.HyperParameters) -> keras.Model:
    return keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                             keras.layers.Dense(hp.Int("units", 8, 16, step=8))])


def wide_build(hp: kt.HyperParameters) -> keras.Model:
    """Many choices: more probes than the build bound allows."""
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten()])
    for i in range(20):
        hp.Choice(f"choice_{i}", ["a", "b", "c", "d"])
    model.add(keras.layers.Dense(NUM_CLASSES, activation="softmax"))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


NOT_A_HYPERMODEL = 42
instance = ConditionalHyperModel()
