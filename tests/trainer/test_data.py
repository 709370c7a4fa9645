"""trainer.data: datasets, the seeded split and the tf.data pipelines (offline, small)."""

from __future__ import annotations

import gzip
import io
import pickle
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from trainer import data
from trainer.args import EXIT_DATA, TrainConfig, TrainerError, parse_args


def config(*argv: str) -> TrainConfig:
    return parse_args(list(argv))[0]


def batches(ds: tf.data.Dataset) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(x.numpy(), y.numpy()) for x, y in ds]


def expect_data_error(cfg: TrainConfig, *fragments: str) -> str:
    with pytest.raises(TrainerError) as info:
        data.load_data(cfg)
    assert info.value.exit_code == EXIT_DATA
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message
    return message


# digits and the split.

def test_digits_shapes_ranges_and_labels() -> None:
    d = data.load_data(config())
    assert d.name == "digits"
    assert d.input_shape == (8, 8, 1)
    assert d.num_classes == 10
    assert d.train_size + d.val_size == 1797
    assert d.val_size == round(1797 * 0.2)
    assert d.steps_per_epoch == -(-d.train_size // 32)
    train = batches(d.train)
    assert len(train) == d.steps_per_epoch
    x, y = train[0]
    assert x.shape == (32, 8, 8, 1) and x.dtype == np.float32 and y.dtype == np.int32
    xs = np.concatenate([b[0] for b in train])
    ys = np.concatenate([b[1] for b in train])
    assert xs.min() >= 0.0 and xs.max() == pytest.approx(1.0)
    assert set(np.unique(ys)) == set(range(10))


def test_split_is_deterministic_by_seed() -> None:
    a = data.load_arrays(config("--seed=1"))
    b = data.load_arrays(config("--seed=1"))
    c = data.load_arrays(config("--seed=2"))
    for left, right in zip(a[:4], b[:4], strict=True):
        np.testing.assert_array_equal(left, right)
    assert not np.array_equal(a[1], c[1])
    assert a[4] == c[4] == 10


def test_validation_split_fraction() -> None:
    x_train, _, x_val, _, _ = data.load_arrays(config("--validation-split=0.5"))
    assert abs(len(x_train) - len(x_val)) <= 1


def test_max_samples_caps_training_only() -> None:
    d = data.load_data(config("--max-samples=100", "--batch_size=16"))
    assert d.train_size == 100
    assert d.val_size == round(1797 * 0.2)
    assert d.steps_per_epoch == 7
    assert sum(len(y) for _, y in batches(d.train)) == 100


def test_train_pipeline_reshuffles_deterministically_and_val_is_fixed() -> None:
    first = data.load_data(config("--seed=3"))
    second = data.load_data(config("--seed=3"))
    epoch_1 = np.concatenate([y for _, y in batches(first.train)])
    epoch_2 = np.concatenate([y for _, y in batches(first.train)])
    again_1 = np.concatenate([y for _, y in batches(second.train)])
    np.testing.assert_array_equal(epoch_1, again_1)
    assert not np.array_equal(epoch_1, epoch_2)
    assert sorted(epoch_1) == sorted(epoch_2)
    val_1 = np.concatenate([y for _, y in batches(first.val)])
    val_2 = np.concatenate([y for _, y in batches(first.val)])
    np.testing.assert_array_equal(val_1, val_2)


def test_split_needs_two_samples() -> None:
    with pytest.raises(TrainerError) as info:
        data.split(np.zeros((1, 2, 2, 1)), np.zeros(1), 0.2, 0)
    assert info.value.exit_code == EXIT_DATA


# shapes.

def test_shapes_deterministic_and_seed_dependent() -> None:
    x1, y1 = data.generate_shapes(50, 16, 3, 4, seed=5)
    x2, y2 = data.generate_shapes(50, 16, 3, 4, seed=5)
    x3, _ = data.generate_shapes(50, 16, 3, 4, seed=6)
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(y1, y2)
    assert not np.array_equal(x1, x3)


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("classes", [2, 3, 4])
def test_shapes_shapes_ranges_and_balance(channels: int, classes: int) -> None:
    x, y = data.generate_shapes(120, 20, channels, classes, seed=0)
    assert x.shape == (120, 20, 20, channels) and x.dtype == np.float32
    assert y.dtype == np.int32
    assert x.min() >= 0.0 and x.max() <= 1.0
    counts = np.bincount(y, minlength=classes)
    assert len(counts) == classes
    assert counts.max() - counts.min() <= 1


def test_shapes_every_image_has_a_shape() -> None:
    x, _ = data.generate_shapes(200, 16, 1, 4, seed=1)
    # Foreground is >= 0.6 and background <= 0.4 before noise: every image has bright pixels.
    assert ((x[..., 0] > 0.5).sum(axis=(1, 2)) >= 4).all()


def test_shapes_generation_is_fast() -> None:
    start = time.perf_counter()
    data.generate_shapes(2000, 32, 3, 4, seed=0)
    assert time.perf_counter() - start < 2.0


def test_shapes_dataset_through_load_data() -> None:
    d = data.load_data(config("--dataset=shapes", "--shapes-samples=100", "--shapes-size=12",
                              "--shapes-channels=1", "--shapes-classes=3"))
    assert d.input_shape == (12, 12, 1)
    assert d.num_classes == 3
    assert (d.train_size, d.val_size) == (80, 20)


def test_shapes_are_learnable() -> None:
    import keras

    from trainer.model import build_model

    cfg = config("--dataset=shapes", "--shapes-samples=600", "--shapes-size=16", "--shapes-channels=1",
                 "--num_conv_layers=2", "--conv_filters_0=8", "--conv_filters_1=16", "--dense_units_0=32",
                 "--learning_rate=0.003", "--seed=0")
    keras.utils.set_random_seed(0)
    d = data.load_data(cfg)
    model = build_model(cfg.hparams, d.input_shape, d.num_classes, steps_per_epoch=d.steps_per_epoch,
                        config=cfg)
    history = model.fit(d.train, validation_data=d.val, epochs=6, shuffle=False, verbose=0)
    assert max(history.history["val_accuracy"]) > 0.45  # chance is 0.25


# npz.

def test_npz_train_keys_uint8_scaled(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    path = tmp_path / "d.npz"
    x = rng.integers(0, 256, (40, 6, 5), dtype=np.uint8)
    x[0, 0, 0] = 255
    np.savez(path, x_train=x, y_train=rng.integers(0, 3, 40))
    cfg = config("--dataset=npz", f"--data-file={path}", "--validation-split=0.25")
    x_train, _, x_val, _, classes = data.load_arrays(cfg)
    assert x_train.shape == (30, 6, 5, 1) and x_val.shape == (10, 6, 5, 1)
    assert x_train.dtype == np.float32
    assert max(x_train.max(), x_val.max()) == pytest.approx(1.0)
    assert classes == 3
    d = data.load_data(cfg)
    assert d.input_shape == (6, 5, 1) and d.name == "npz"


def test_npz_own_validation_and_float_images(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    path = tmp_path / "d.npz"
    np.savez(path, x_train=rng.random((20, 4, 4, 3)), y_train=np.arange(20) % 2,
             x_val=rng.random((7, 4, 4, 3)), y_val=np.arange(7) % 2)
    d = data.load_data(config("--dataset=npz", f"--data-file={path}"))
    assert (d.train_size, d.val_size, d.num_classes) == (20, 7, 2)
    assert d.input_shape == (4, 4, 3)


def test_npz_x_y_layout(tmp_path: Path) -> None:
    path = tmp_path / "xy.npz"
    np.savez(path, x=np.zeros((10, 3, 3), dtype=np.uint8), y=np.arange(10)[:, None] % 4)
    x_train, y_train, x_val, _, classes = data.load_arrays(config("--dataset=npz", f"--data-file={path}"))
    assert (len(x_train), len(x_val)) == (8, 2)
    assert y_train.ndim == 1 and classes == 4


def test_npz_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.npz"
    expect_data_error(config("--dataset=npz", f"--data-file={path}"), f"--data-file={path}", "x_train")


def test_npz_not_an_npz(tmp_path: Path) -> None:
    path = tmp_path / "junk.npz"
    path.write_text("not numpy")
    expect_data_error(config("--dataset=npz", f"--data-file={path}"), f"--data-file={path}", "numpy.savez")


def test_npz_missing_keys(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    np.savez(path, images=np.zeros((4, 2, 2)), labels=np.zeros(4))
    expect_data_error(config("--dataset=npz", f"--data-file={path}"), f"--data-file={path}", "images",
                      "x_train, y_train")


def test_npz_length_mismatch(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    np.savez(path, x_train=np.zeros((5, 2, 2)), y_train=np.zeros(4, dtype=int))
    expect_data_error(config("--dataset=npz", f"--data-file={path}"), f"--data-file={path}", "same length")


def test_npz_val_shape_mismatch(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    np.savez(path, x_train=np.zeros((5, 2, 2)), y_train=np.arange(5) % 2, x_val=np.zeros((3, 3, 3)),
             y_val=np.arange(3) % 2)
    expect_data_error(config("--dataset=npz", f"--data-file={path}"), f"--data-file={path}", "must match")


@pytest.mark.parametrize(
    ("arrays", "fragment"),
    [
        ({"x_train": np.zeros((4, 2)), "y_train": np.zeros(4, dtype=int)}, "(N, H, W)"),
        ({"x_train": np.full((4, 2, 2), 3.0), "y_train": np.arange(4) % 2}, "[0, 1]"),
        ({"x_train": np.zeros((4, 2, 2)), "y_train": np.array([0, 1, -1, 0])}, "non-negative"),
        ({"x_train": np.zeros((4, 2, 2)), "y_train": np.zeros(4, dtype=int)}, "at least 2 classes"),
        ({"x_train": np.zeros((4, 2, 2)), "y_train": np.arange(4) % 2, "x_val": np.zeros((2, 2, 2))},
         "together"),
    ],
)
def test_npz_bad_contents(tmp_path: Path, arrays: dict[str, np.ndarray], fragment: str) -> None:
    path = tmp_path / "d.npz"
    np.savez(path, **arrays)  # type: ignore[arg-type]
    expect_data_error(config("--dataset=npz", f"--data-file={path}"), f"--data-file={path}", fragment)


# folder.

def write_folder(root: Path, classes: dict[str, int], size: tuple[int, int] = (10, 12)) -> Path:
    rng = np.random.default_rng(0)
    for name, count in classes.items():
        (root / name).mkdir(parents=True)
        for i in range(count):
            pixels = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
            (root / name / f"{i}.png").write_bytes(tf.io.encode_png(pixels).numpy())
    return root


def test_folder_default_size(tmp_path: Path) -> None:
    root = write_folder(tmp_path / "imgs", {"cat": 12, "dog": 8})
    d = data.load_data(config("--dataset=folder", f"--data-dir={root}", "--batch_size=8"))
    assert d.input_shape == (64, 64, 3)
    assert d.num_classes == 2
    assert (d.train_size, d.val_size) == (16, 4)
    assert d.steps_per_epoch == 2
    x, y = next(iter(d.train))
    assert x.shape[1:] == (64, 64, 3) and x.dtype == tf.float32 and y.dtype == tf.int32
    train = batches(d.train)
    assert sum(len(b[1]) for b in train) == 16
    assert min(b[0].min() for b in train) >= 0.0 and max(b[0].max() for b in train) <= 1.0
    assert sum(len(b[1]) for b in batches(d.val)) == 4


def test_folder_image_size_and_max_samples(tmp_path: Path) -> None:
    root = write_folder(tmp_path / "imgs", {"a": 5, "b": 5, "c": 5})
    cfg = config("--dataset=folder", f"--data-dir={root}", "--image_size=16", "--max-samples=6",
                 "--batch_size=8")
    d = data.load_data(cfg)
    assert d.input_shape == (16, 16, 3)
    assert d.num_classes == 3 and d.train_size == 6
    first = np.sort(np.concatenate([b[0].reshape(len(b[0]), -1)[:, 0] for b in batches(d.train)]))
    second = np.sort(np.concatenate([b[0].reshape(len(b[0]), -1)[:, 0] for b in batches(d.train)]))
    np.testing.assert_array_equal(first, second)  # the same capped subset every epoch


def test_folder_as_arrays(tmp_path: Path) -> None:
    root = write_folder(tmp_path / "imgs", {"a": 5, "b": 5})
    x_train, y_train, x_val, y_val, classes = data.load_arrays(
        config("--dataset=folder", f"--data-dir={root}", "--image_size=8"))
    assert x_train.shape == (8, 8, 8, 3) and x_val.shape == (2, 8, 8, 3)
    assert classes == 2 and set(np.concatenate([y_train, y_val])) <= {0, 1}


def test_folder_missing_dir(tmp_path: Path) -> None:
    path = tmp_path / "missing"
    expect_data_error(config("--dataset=folder", f"--data-dir={path}"), f"--data-dir={path}",
                      "no such directory")


def test_folder_empty_dir(tmp_path: Path) -> None:
    expect_data_error(config("--dataset=folder", f"--data-dir={tmp_path}"), f"--data-dir={tmp_path}",
                      "at least 2")


def test_folder_one_class(tmp_path: Path) -> None:
    root = write_folder(tmp_path / "imgs", {"only": 3})
    expect_data_error(config("--dataset=folder", f"--data-dir={root}"), f"--data-dir={root}", "at least 2")


def test_folder_class_dirs_without_images(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "notes.txt").write_text("x")
    expect_data_error(config("--dataset=folder", f"--data-dir={tmp_path}"), f"--data-dir={tmp_path}",
                      "no images")


# Downloadable datasets, offline: an origin that refuses at once, and pre-populated caches.

def test_download_failure_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(data.REMOTES, "mnist", [data.Remote("mnist.npz", "http://127.0.0.1:9/mnist.npz")])
    message = expect_data_error(config("--dataset=mnist", f"--cache-dir={tmp_path}"), "--dataset=mnist",
                                "download", "--cache-dir", str(tmp_path))
    assert "127.0.0.1:9" in message


def _offline(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    remotes = [data.Remote(r.fname, "http://127.0.0.1:9/" + r.fname, None, r.cache_subdir, r.extract)
               for r in data.REMOTES[name]]
    monkeypatch.setitem(data.REMOTES, name, remotes)


def test_mnist_from_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _offline(monkeypatch, "mnist")
    (tmp_path / "datasets").mkdir()
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "datasets" / "mnist.npz", x_train=rng.integers(0, 256, (50, 28, 28), dtype=np.uint8),
             y_train=np.arange(50) % 10, x_test=np.zeros((1, 28, 28)), y_test=np.zeros(1))
    d = data.load_data(config("--dataset=mnist", f"--cache-dir={tmp_path}"))
    assert d.input_shape == (28, 28, 1) and d.num_classes == 10 and (d.train_size, d.val_size) == (40, 10)


def test_fashion_mnist_from_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _offline(monkeypatch, "fashion_mnist")
    folder = tmp_path / "datasets" / "fashion-mnist"
    folder.mkdir(parents=True)
    labels = (np.arange(20) % 10).astype(np.uint8)
    (folder / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(bytes(8) + labels.tobytes()))
    (folder / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(bytes(16) + bytes(20 * 28 * 28)))
    cfg = config("--dataset=fashion_mnist", f"--cache-dir={tmp_path}")
    x_train, _, x_val, _, classes = data.load_arrays(cfg)
    assert x_train.shape == (16, 28, 28, 1) and len(x_val) == 4 and classes == 10


def test_cifar10_from_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _offline(monkeypatch, "cifar10")
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        for i in range(1, 6):
            batch = {b"data": np.full((2, 3072), 255, dtype=np.uint8), b"labels": [i % 10, (i + 1) % 10]}
            payload = pickle.dumps(batch, protocol=2)
            info = tarfile.TarInfo(f"cifar-10-batches-py/data_batch_{i}")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    (tmp_path / "datasets").mkdir()
    (tmp_path / "datasets" / "cifar-10-batches-py-target_archive").write_bytes(archive.getvalue())
    x_train, _, x_val, _, classes = data.load_arrays(config("--dataset=cifar10", f"--cache-dir={tmp_path}"))
    assert x_train.shape == (8, 32, 32, 3) and len(x_val) == 2
    assert x_train.max() == 1.0 and classes == 7


def test_cifar10_cache_refuses_code(tmp_path: Path) -> None:
    class Evil:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (print, ("pwned",))

    path = tmp_path / "batch"
    path.write_bytes(pickle.dumps({b"data": Evil()}, protocol=2))
    with pytest.raises(pickle.UnpicklingError):
        data._cifar_batch(path)
