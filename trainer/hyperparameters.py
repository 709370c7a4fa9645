"""The built-in model's search space: declared once, here, without TensorFlow.

The trainer's flags are derived from this declaration (``trainer.args``), ``python -m trainer
--print-space`` prints it, and ``katib_hp`` reads it to compile Experiments. Ranges are the values the
trainer accepts; defaults are what a KerasTuner user would start from.
"""

from __future__ import annotations

from katib_hp.space import SearchSpace

MAX_CONV_LAYERS = 4
MAX_DENSE_LAYERS = 4

ACTIVATIONS = ["relu", "tanh", "selu", "elu", "leaky_relu", "gelu", "swish"]
OPTIMIZERS = ["adam", "sgd", "rmsprop", "adagrad", "adadelta", "adamw"]
SCHEDULES = ["constant", "exponential", "cosine", "step", "plateau"]
REGULARIZERS = ["none", "l1", "l2", "l1_l2"]
DROPOUT_PLACEMENTS = ["none", "after_conv", "after_dense", "both"]
INITIALIZERS = ["glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "lecun_uniform", "lecun_normal"]
BASE_MODELS = ["none", "mobilenet_v2", "efficientnet_b0", "resnet50"]
POOLINGS = ["max", "avg", "none"]
GLOBAL_POOLINGS = ["flatten", "avg", "max"]

# The parameter Hyperband uses as its resource.
EPOCHS = "epochs"


def builtin_space() -> SearchSpace:
    """Return a fresh copy of the built-in model's search space."""
    hp = SearchSpace()

    # Input and fine-tuning.
    hp.Int("image_size", 0, 1024, default=0,
           help="resize inputs to this square size; 0 keeps the dataset's own size")
    hp.Choice("base_model", BASE_MODELS, default="none",
              help="a keras.applications base to fine-tune instead of the conv stack")
    with hp.conditional_scope("base_model", BASE_MODELS[1:]):
        hp.Int("fine_tune_at", 0, 1000, default=100,
               help="layers of the base below this index stay frozen (>= its depth freezes it all)")

    # Data augmentation (Keras preprocessing layers, active only while training).
    hp.Float("aug_rotation", 0.0, 0.5, step=0.05, default=0.0, help="RandomRotation factor (fraction of 2*pi)")
    hp.Float("aug_width_shift", 0.0, 0.5, step=0.05, default=0.0, help="RandomTranslation width factor")
    hp.Float("aug_height_shift", 0.0, 0.5, step=0.05, default=0.0, help="RandomTranslation height factor")
    hp.Float("aug_zoom", 0.0, 0.5, step=0.05, default=0.0, help="RandomZoom factor")
    hp.Boolean("aug_horizontal_flip", default=False)
    hp.Boolean("aug_vertical_flip", default=False)
    hp.Float("aug_brightness", 0.0, 0.9, step=0.05, default=0.0, help="RandomBrightness factor")
    hp.Float("aug_contrast", 0.0, 0.9, step=0.05, default=0.0, help="RandomContrast factor")

    # Convolutional stack (used when base_model=none).
    hp.Int("num_conv_layers", 0, MAX_CONV_LAYERS, default=2, help="0 gives a plain MLP")
    for i in range(MAX_CONV_LAYERS):
        with hp.conditional_scope("num_conv_layers", list(range(i + 1, MAX_CONV_LAYERS + 1))):
            hp.Int(f"conv_filters_{i}", 8, 512, step=8, default=32 * 2 ** min(i, 2))
            hp.Choice(f"conv_kernel_size_{i}", [1, 3, 5, 7], default=3)
            hp.Choice(f"conv_strides_{i}", [1, 2], default=1)
    with hp.conditional_scope("num_conv_layers", list(range(1, MAX_CONV_LAYERS + 1))):
        hp.Choice("pooling", POOLINGS, default="max", help="pooling after each conv block")
    hp.Choice("global_pooling", GLOBAL_POOLINGS, default="flatten",
              help="how feature maps become a vector before the dense layers")

    # Dense stack.
    hp.Int("num_dense_layers", 0, MAX_DENSE_LAYERS, default=1)
    hp.Choice("dropout_placement", DROPOUT_PLACEMENTS, default="after_dense")
    with hp.conditional_scope("dropout_placement", ["after_conv", "both"]):
        hp.Float("conv_dropout_rate", 0.0, 0.7, step=0.05, default=0.25)
    for i in range(MAX_DENSE_LAYERS):
        with hp.conditional_scope("num_dense_layers", list(range(i + 1, MAX_DENSE_LAYERS + 1))):
            hp.Int(f"dense_units_{i}", 8, 2048, step=8, default=128)
            with hp.conditional_scope("dropout_placement", ["after_dense", "both"]):
                hp.Float(f"dropout_rate_{i}", 0.0, 0.7, step=0.05, default=0.2)

    # Layer details.
    hp.Choice("activation", ACTIVATIONS, default="relu")
    hp.Boolean("batch_norm", default=False, help="batch normalization after conv and dense layers")
    hp.Choice("kernel_initializer", INITIALIZERS, default="glorot_uniform")
    hp.Choice("regularization", REGULARIZERS, default="none")
    with hp.conditional_scope("regularization", ["l1", "l1_l2"]):
        hp.Float("l1", 1e-8, 1e-1, sampling="log", default=1e-5)
    with hp.conditional_scope("regularization", ["l2", "l1_l2"]):
        hp.Float("l2", 1e-8, 1e-1, sampling="log", default=1e-4)

    # Optimizer.
    hp.Choice("optimizer", OPTIMIZERS, default="adam")
    hp.Float("learning_rate", 1e-6, 10.0, sampling="log", default=1e-3)
    with hp.conditional_scope("optimizer", ["adam", "adamw"]):
        hp.Float("beta_1", 0.5, 0.999, default=0.9)
        hp.Float("beta_2", 0.9, 0.9999, default=0.999)
    with hp.conditional_scope("optimizer", ["sgd", "rmsprop"]):
        hp.Float("momentum", 0.0, 0.99, default=0.0)
    with hp.conditional_scope("optimizer", ["sgd"]):
        hp.Boolean("nesterov", default=False)
    with hp.conditional_scope("optimizer", ["adamw"]):
        hp.Float("weight_decay", 1e-6, 1e-1, sampling="log", default=4e-3)

    # Learning-rate schedule.
    hp.Choice("lr_schedule", SCHEDULES, default="constant")
    with hp.conditional_scope("lr_schedule", ["exponential", "cosine"]):
        hp.Int("decay_steps", 1, 1_000_000, sampling="log", default=1000, help="optimizer steps per decay period")
    with hp.conditional_scope("lr_schedule", ["exponential"]):
        hp.Float("decay_rate", 0.01, 0.99, default=0.9)
    with hp.conditional_scope("lr_schedule", ["cosine"]):
        hp.Float("cosine_alpha", 0.0, 0.5, default=0.0, help="final rate as a fraction of the initial one")
    with hp.conditional_scope("lr_schedule", ["step"]):
        hp.Int("step_drop_every", 1, 100, default=10, help="epochs between drops")
        hp.Float("step_drop_factor", 0.01, 0.99, default=0.5)
    with hp.conditional_scope("lr_schedule", ["plateau"]):
        hp.Float("plateau_factor", 0.01, 0.99, default=0.5)
        hp.Int("plateau_patience", 1, 50, default=3)

    # Training loop.
    hp.Int("batch_size", 8, 4096, step=2, sampling="log", default=32)
    hp.Int(EPOCHS, 1, 1000, default=10, help="epochs to train (the Hyperband resource)")
    hp.Int("early_stopping_patience", 0, 100, default=0,
           help="stop after this many epochs without improvement, restoring the best weights; 0 disables")
    hp.Int("seed", 0, 2**31 - 1, default=42)
    return hp
