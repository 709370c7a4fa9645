"""Datasets for the trainer: loading, a seeded train/validation split and the tf.data input pipeline.

Every dataset ends up as float32 NHWC images in [0, 1] with integer labels. Any problem with the data
is reported as a ``TrainerError`` with exit code ``EXIT_DATA`` and one line that says what went wrong,
where, and how to fix it.
"""

from __future__ import annotations

import contextlib
import gzip
import math
import pickle
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from trainer.args import EXIT_DATA, TrainConfig, TrainerError

# Images of a folder dataset when the image_size hyperparameter is 0.
FOLDER_DEFAULT_SIZE = 64
# Extensions image_dataset_from_directory decodes.
IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
# A folder dataset is cached in memory (and shuffled over all of it) only below this many decoded bytes;
# above, it is decoded from disk every epoch and shuffled within a bounded window.
FOLDER_CACHE_BYTES = 2 * 1024**3
# Without a timeout, a download from a cluster without egress can hang the pod instead of failing.
DOWNLOAD_TIMEOUT_S = 60.0

ArrayData = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]


@dataclass
class Data:
    """The input pipelines of one run and what the model needs to know about them."""

    train: tf.data.Dataset
    val: tf.data.Dataset
    input_shape: tuple[int, int, int]
    num_classes: int
    train_size: int
    val_size: int
    steps_per_epoch: int
    name: str


@dataclass(frozen=True)
class Remote:
    """One file of a downloadable dataset, laid out in the cache the way keras.datasets lays it out."""

    fname: str
    origin: str
    file_hash: str | None = None
    cache_subdir: str = "datasets"
    extract: bool = False


_GCS = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
_FASHION = ("train-labels-idx1-ubyte.gz", "train-images-idx3-ubyte.gz")

# Module level so that a test can point a dataset at an origin that fails at once.
REMOTES: dict[str, list[Remote]] = {
    "mnist": [
        Remote("mnist.npz", _GCS + "mnist.npz",
               "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"),
    ],
    "fashion_mnist": [Remote(name, _GCS + name, cache_subdir="datasets/fashion-mnist") for name in _FASHION],
    "cifar10": [
        Remote("cifar-10-batches-py-target", "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
               "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce", extract=True),
    ],
}


def _fail(message: str) -> TrainerError:
    return TrainerError(message, EXIT_DATA)


@contextlib.contextmanager
def _socket_timeout(seconds: float) -> Iterator[None]:
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def fetch(remote: Remote, cache_dir: Path | None) -> Path:
    """Return the local path of ``remote``, downloading it into the Keras cache layout if needed.

    Args:
        remote: the file and where it comes from.
        cache_dir: the cache root (``--cache-dir``); None uses Keras's own (``~/.keras`` or $KERAS_HOME).

    Raises:
        OSError: the file is not cached and could not be downloaded (the message says why).
    """
    try:
        with _socket_timeout(DOWNLOAD_TIMEOUT_S):
            path = keras.utils.get_file(
                remote.fname, remote.origin, file_hash=remote.file_hash, cache_subdir=remote.cache_subdir,
                extract=remote.extract, cache_dir=None if cache_dir is None else str(cache_dir),
            )
    except Exception as exc:  # get_file wraps network errors in a bare Exception
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise OSError(reason) from exc
    return Path(path)


def cache_location(cache_dir: Path | None) -> str:
    """Describe the cache root for messages."""
    return str(cache_dir) if cache_dir is not None else "~/.keras (or $KERAS_HOME)"


def _download(name: str, cache_dir: Path | None) -> list[Path]:
    paths = []
    for remote in REMOTES[name]:
        try:
            paths.append(fetch(remote, cache_dir))
        except OSError as exc:
            where = f"{cache_location(cache_dir)}/{remote.cache_subdir}/{remote.fname}"
            raise _fail(
                f"--dataset={name}: download of {remote.origin} failed ({exc}); pre-populate the cache "
                f"({where}) or pass --cache-dir=DIR pointing at a volume that holds it"
            ) from None
    return paths


def _read_idx(path: Path, offset: int) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        return np.frombuffer(f.read(), np.uint8, offset=offset)


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays only, so a tampered cache cannot run code."""

    _ALLOWED = frozenset({
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
    })

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}")
        if module == "numpy.core.multiarray":
            module = "numpy._core.multiarray"
        return super().find_class(module, name)


def _cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with open(path, "rb") as f:
        batch = _ArrayUnpickler(f, encoding="bytes").load()
    images = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return images, np.asarray(batch[b"labels"])


def _load_remote(name: str, cache_dir: Path | None) -> tuple[np.ndarray, np.ndarray]:
    """Training images and labels of a downloadable dataset; its test split is kept out of tuning."""
    paths = _download(name, cache_dir)
    try:
        if name == "mnist":
            with np.load(paths[0], allow_pickle=False) as f:
                return f["x_train"], f["y_train"]
        if name == "fashion_mnist":
            labels = _read_idx(paths[0], 8)
            return _read_idx(paths[1], 16).reshape(len(labels), 28, 28), labels
        parts = [_cifar_batch(paths[0] / "cifar-10-batches-py" / f"data_batch_{i}") for i in range(1, 6)]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    except (OSError, ValueError, KeyError, EOFError, pickle.UnpicklingError) as exc:
        raise _fail(
            f"--dataset={name}: the cached files are unreadable ({type(exc).__name__}: {exc}); delete them "
            f"from {cache_location(cache_dir)}/datasets so they are downloaded again"
        ) from None


def generate_shapes(
    samples: int, size: int = 32, channels: int = 3, classes: int = 4, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Generate a synthetic image-classification dataset of simple filled shapes.

    Class 0 is a disc, 1 a square, 2 an upward triangle and 3 a cross. Each image has its own position,
    size, background and foreground colour (the foreground always brighter than the background in every
    channel) and a little Gaussian noise, so the class is told by shape alone. Classes are balanced.

    Args:
        samples: number of images.
        size: height and width in pixels.
        channels: 1 (grayscale) or 3 (RGB).
        classes: 2 to 4 (the first ``classes`` shapes above).
        seed: everything is a function of this seed.

    Returns:
        ``(x, y)``: float32 images of shape (samples, size, size, channels) in [0, 1] and int32 labels.
    """
    if not 2 <= classes <= 4:
        raise ValueError(f"classes must be in [2, 4], got {classes}")
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(samples) % classes).astype(np.int32)
    half = rng.uniform(0.18, 0.4, samples) * size
    cx = rng.uniform(half, size - half)
    cy = rng.uniform(half, size - half)
    grid = np.arange(size, dtype=np.float32) + 0.5
    mask = np.zeros((samples, size, size), dtype=bool)
    for label in range(classes):
        idx = np.flatnonzero(y == label)
        # (n, 1, 1) against (1, size, 1) rows and (1, 1, size) columns: one boolean image per sample.
        r = half[idx, None, None]
        dx = np.abs(grid[None, None, :] - cx[idx, None, None])
        dy = grid[None, :, None] - cy[idx, None, None]
        if label == 0:
            mask[idx] = dx**2 + dy**2 <= r**2
        elif label == 1:
            # A square of the disc's area, so size is no hint.
            side = r * math.sqrt(math.pi) / 2
            mask[idx] = (dx <= side) & (np.abs(dy) <= side)
        elif label == 2:
            mask[idx] = (np.abs(dy) <= r) & (dx <= (dy + r) / 2)
        else:
            bar = np.maximum(r * 0.3, 1.0)
            mask[idx] = ((dx <= bar) & (np.abs(dy) <= r)) | ((np.abs(dy) <= bar) & (dx <= r))
    background = rng.uniform(0.0, 0.4, (samples, 1, 1, channels)).astype(np.float32)
    foreground = rng.uniform(0.6, 1.0, (samples, 1, 1, channels)).astype(np.float32)
    x = background + mask[..., None] * (foreground - background)
    x += rng.standard_normal(x.shape, dtype=np.float32) * np.float32(0.05)
    np.clip(x, 0.0, 1.0, out=x)
    return x, y


def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return (bunch.images / 16.0).astype(np.float32)[..., None], bunch.target.astype(np.int32)


def _as_images(x: np.ndarray, where: str, key: str) -> np.ndarray:
    """NHWC float32 in [0, 1] from (N,H,W) or (N,H,W,C), integer 0..255 or float 0..1."""
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.shape[0] == 0 or min(x.shape[1:]) == 0:
        raise _fail(f"{where}: {key} has shape {x.shape}; images must be (N, H, W) or (N, H, W, C)")
    if np.issubdtype(x.dtype, np.integer) or x.dtype == bool:
        if x.min() < 0 or x.max() > 255:
            raise _fail(f"{where}: integer {key} must hold pixel values in 0..255; store uint8 images")
        return x.astype(np.float32) / np.float32(255.0)
    if not np.issubdtype(x.dtype, np.floating):
        raise _fail(f"{where}: {key} has dtype {x.dtype}; store uint8 (0..255) or float (0..1) images")
    x = x.astype(np.float32, copy=False)
    if not np.isfinite(x).all() or x.min() < 0.0 or x.max() > 1.0:
        raise _fail(f"{where}: float {key} must hold finite values in [0, 1]; rescale them or store uint8")
    return x


def _as_labels(y: np.ndarray, count: int, where: str, key: str) -> np.ndarray:
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise _fail(f"{where}: {key} has shape {y.shape}; labels must be integer class ids of shape (N,)")
    if len(y) != count:
        raise _fail(f"{where}: {key} has {len(y)} labels for {count} images; both must have the same length")
    if y.dtype.kind == "f" and np.all(np.mod(y, 1) == 0):
        y = y.astype(np.int64)
    if not np.issubdtype(y.dtype, np.integer) or (len(y) and y.min() < 0):
        raise _fail(f"{where}: {key} must be non-negative integer class ids (got dtype {y.dtype})")
    return y.astype(np.int32)


def _load_npz(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    where = f"--data-file={path}"
    layouts = "keys x_train, y_train (and optionally x_val, y_val) or x, y"
    if not path.is_file():
        raise _fail(f"{where}: no such file; pass the path of an .npz with {layouts}")
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {key: f[key] for key in f.files}
    except Exception as exc:  # np.load raises a variety of errors on non-npz input
        reason = type(exc).__name__
        raise _fail(f"{where}: not a readable .npz ({reason}); write it with numpy.savez") from None
    if "x_train" in arrays and "y_train" in arrays:
        x, y = arrays["x_train"], arrays["y_train"]
        keys = ("x_train", "y_train")
    elif "x" in arrays and "y" in arrays:
        x, y = arrays["x"], arrays["y"]
        keys = ("x", "y")
    else:
        raise _fail(f"{where}: found keys {sorted(arrays)}; the file needs {layouts}")
    x = _as_images(x, where, keys[0])
    y = _as_labels(y, len(x), where, keys[1])
    if ("x_val" in arrays) != ("y_val" in arrays):
        raise _fail(f"{where}: x_val and y_val must be given together (or neither, to split off validation)")
    if "x_val" not in arrays:
        return x, y, None, None
    x_val = _as_images(arrays["x_val"], where, "x_val")
    y_val = _as_labels(arrays["y_val"], len(x_val), where, "y_val")
    if x_val.shape[1:] != x.shape[1:]:
        raise _fail(f"{where}: x_val images are {x_val.shape[1:]} but x_train images are {x.shape[1:]}; "
                    "they must match")
    return x, y, x_val, y_val


def split(
    x: np.ndarray, y: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Split arrays into training and validation parts by a permutation drawn from ``seed``.

    Args:
        x: samples.
        y: labels, same length.
        fraction: share of the samples that go to validation (at least one sample each side).
        seed: the permutation's seed.

    Returns:
        ``(x_train, y_train, x_val, y_val)``.
    """
    n = len(x)
    if n < 2:
        raise _fail(f"only {n} sample(s): need at least 2 to split off validation data")
    n_val = min(max(1, round(n * fraction)), n - 1)
    order = np.random.default_rng(seed).permutation(n)
    val, train = order[:n_val], order[n_val:]
    return x[train], y[train], x[val], y[val]


def _num_classes(*labels: np.ndarray, where: str) -> int:
    count = int(max(int(y.max()) for y in labels if len(y))) + 1
    if count < 2:
        raise _fail(f"{where}: all labels are 0; a classifier needs at least 2 classes")
    return count


def load_arrays(config: TrainConfig) -> ArrayData:
    """Load an in-memory dataset, split and capped as ``config`` says.

    The splits are the same for the same ``config.seed``. Downloadable datasets use only their training
    part (the test part stays out of tuning); an .npz with ``x_val``/``y_val`` keeps its own validation
    data. A folder dataset is decoded into memory.

    Args:
        config: the run's settings (dataset, validation split, max samples, seed...).

    Returns:
        ``(x_train, y_train, x_val, y_val, num_classes)``: float32 NHWC images in [0, 1], int32 labels.

    Raises:
        TrainerError: with ``EXIT_DATA`` on any data problem.
    """
    name = config.dataset
    x_val = y_val = None
    if name == "digits":
        x, y = _digits()
    elif name == "shapes":
        x, y = generate_shapes(config.shapes_samples, config.shapes_size, config.shapes_channels,
                               config.shapes_classes, config.seed)
    elif name in REMOTES:
        raw_x, raw_y = _load_remote(name, config.cache_dir)
        x, y = _as_images(raw_x, name, "images"), _as_labels(raw_y, len(raw_x), name, "labels")
    elif name == "npz":
        x, y, x_val, y_val = _load_npz(_required(config.data_file, "--data-file"))
    elif name == "folder":
        return _folder_arrays(config)
    else:
        raise _fail(f"--dataset={name}: unknown dataset")
    if x_val is None or y_val is None:
        x, y, x_val, y_val = split(x, y, config.validation_split, config.seed)
    if config.max_samples > 0:
        x, y = x[: config.max_samples], y[: config.max_samples]
    where = f"--data-file={config.data_file}" if name == "npz" else f"--dataset={name}"
    return x, y, x_val, y_val, _num_classes(y, y_val, where=where)


def _required(path: Path | None, flag: str) -> Path:
    if path is None:
        raise _fail(f"{flag}=PATH is required for this dataset")
    return path


def _array_pipelines(config: TrainConfig, arrays: ArrayData) -> tuple[tf.data.Dataset, tf.data.Dataset]:
    x_train, y_train, x_val, y_val, _ = arrays
    train = (
        tf.data.Dataset.from_tensor_slices((x_train, y_train))
        .cache()
        .shuffle(len(x_train), seed=config.seed, reshuffle_each_iteration=True)
        .batch(config.batch_size)
        .prefetch(tf.data.AUTOTUNE)
    )
    val = tf.data.Dataset.from_tensor_slices((x_val, y_val)).batch(config.batch_size).cache()
    return train, val.prefetch(tf.data.AUTOTUNE)


def load_data(config: TrainConfig) -> Data:
    """Load ``config.dataset`` and build its training and validation pipelines.

    The training pipeline is cached in memory, reshuffled every epoch (deterministically from
    ``config.seed``), batched and prefetched; the validation pipeline is batched, cached and never
    shuffled. ``folder`` datasets are resized to the ``image_size`` hyperparameter when it is > 0, else
    to 64x64, always as RGB; they are cached only when their decoded size is under 2 GiB.

    Args:
        config: the run's settings.

    Returns:
        The pipelines and their shapes and sizes.

    Raises:
        TrainerError: with ``EXIT_DATA`` and a one-line message on any data problem.
    """
    if config.dataset == "folder":
        return _folder_data(config)
    arrays = load_arrays(config)
    x_train, _, x_val, _, num_classes = arrays
    train, val = _array_pipelines(config, arrays)
    height, width, channels = (int(d) for d in x_train.shape[1:])
    return Data(
        train=train, val=val, input_shape=(height, width, channels), num_classes=num_classes,
        train_size=len(x_train), val_size=len(x_val),
        steps_per_epoch=math.ceil(len(x_train) / config.batch_size), name=config.dataset,
    )


# Folder datasets.

def folder_image_size(config: TrainConfig) -> int:
    """The square size folder images are loaded at: the image_size hyperparameter, else 64."""
    size = int(config.hparams.get("image_size", 0) or 0)
    return size if size > 0 else FOLDER_DEFAULT_SIZE


def _check_folder(directory: Path) -> None:
    where = f"--data-dir={directory}"
    layout = "one sub-folder of images per class"
    if not directory.is_dir():
        raise _fail(f"{where}: no such directory; pass a folder with {layout}")
    classes = sorted(p for p in directory.iterdir() if p.is_dir())
    if len(classes) < 2:
        raise _fail(f"{where}: found {len(classes)} class sub-folder(s); a classifier needs {layout}, "
                    "at least 2")
    images = sum(1 for c in classes for p in c.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
    if images == 0:
        raise _fail(f"{where}: no images ({', '.join(IMAGE_EXTENSIONS)}) in its class sub-folders; "
                    f"add images to {layout}")


def _folder_datasets(config: TrainConfig) -> tuple[tf.data.Dataset, tf.data.Dataset, int, int, int, int]:
    directory = _required(config.data_dir, "--data-dir")
    _check_folder(directory)
    size = folder_image_size(config)
    try:
        train, val = keras.utils.image_dataset_from_directory(
            str(directory), labels="inferred", label_mode="int", color_mode="rgb", batch_size=None,
            image_size=(size, size), shuffle=True, seed=config.seed,
            validation_split=config.validation_split, subset="both", verbose=False,
        )
    except (ValueError, OSError, tf.errors.OpError) as exc:
        message = " ".join(str(exc).split())
        raise _fail(f"--data-dir={directory}: cannot load images ({message}); check the folder layout "
                    "(one sub-folder per class) and --validation-split") from None
    num_classes = len(train.class_names)
    if num_classes < 2:
        raise _fail(f"--data-dir={directory}: only {num_classes} class(es) with images; need at least 2")
    train_size, val_size = len(train.file_paths), len(val.file_paths)

    def scale(image: tf.Tensor, label: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return image / 255.0, tf.cast(label, tf.int32)

    train = train.map(scale, num_parallel_calls=tf.data.AUTOTUNE)
    val = val.map(scale, num_parallel_calls=tf.data.AUTOTUNE)
    return train, val, size, num_classes, train_size, val_size


def _folder_data(config: TrainConfig) -> Data:
    train, val, size, num_classes, train_size, val_size = _folder_datasets(config)
    image_bytes = size * size * 3 * 4
    if config.max_samples > 0 and config.max_samples < train_size:
        train_size = config.max_samples
        # Caching right after take() pins the subset the first epoch drew for all later ones.
        train = train.take(train_size)
    if train_size * image_bytes <= FOLDER_CACHE_BYTES:
        train = train.cache()
        buffer = train_size
    else:
        buffer = max(config.batch_size * 8, min(train_size, FOLDER_CACHE_BYTES // 4 // image_bytes))
    train = (
        train.shuffle(buffer, seed=config.seed, reshuffle_each_iteration=True)
        .batch(config.batch_size)
        .prefetch(tf.data.AUTOTUNE)
    )
    val = val.batch(config.batch_size)
    if val_size * image_bytes <= FOLDER_CACHE_BYTES:
        val = val.cache()
    return Data(
        train=train, val=val.prefetch(tf.data.AUTOTUNE), input_shape=(size, size, 3),
        num_classes=num_classes, train_size=train_size, val_size=val_size,
        steps_per_epoch=math.ceil(train_size / config.batch_size), name=config.dataset,
    )


def _folder_arrays(config: TrainConfig) -> ArrayData:
    train, val, _, num_classes, _, _ = _folder_datasets(config)
    if config.max_samples > 0:
        train = train.take(config.max_samples)

    def stack(ds: tf.data.Dataset) -> tuple[np.ndarray, np.ndarray]:
        xs, ys = zip(*ds.batch(256).as_numpy_iterator(), strict=True)
        return np.concatenate(xs).astype(np.float32), np.concatenate(ys).astype(np.int32)

    try:
        x_train, y_train = stack(train)
        x_val, y_val = stack(val)
    except tf.errors.OpError as exc:
        raise _fail(f"--data-dir={config.data_dir}: an image could not be decoded ({exc.message})") from None
    return x_train, y_train, x_val, y_val, num_classes
