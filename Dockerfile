# The trial image: the Keras trainer only (no Kubernetes client, no kubeflow-katib).
#   GPU (default): docker build -t katib-hp-trainer:0.1.0 .
#   CPU (kind):    docker build --build-arg VARIANT=cpu -t katib-hp-trainer:0.1.0-cpu .
# Trial templates run `python -u -m trainer ...` explicitly: Katib wraps that command in `sh -c`, so the
# image keeps a shell, and there is no ENTRYPOINT to resolve from a registry.
ARG VARIANT=gpu

FROM tensorflow/tensorflow:2.20.0-gpu AS base-gpu
FROM tensorflow/tensorflow:2.20.0 AS base-cpu

FROM base-${VARIANT} AS trainer
ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    KERAS_HOME=/home/trainer/.keras

WORKDIR /opt/katib-hp
COPY pyproject.toml README.md ./
COPY katib_hp ./katib_hp
COPY trainer ./trainer
# The base image already provides TensorFlow; this adds KerasTuner and scikit-learn (digits data).
RUN python -m pip install ".[trainer]" \
    && useradd --uid 1000 --user-group --create-home --shell /usr/sbin/nologin trainer \
    && mkdir -p /var/log/katib /data /checkpoints \
    && chown -R 1000:1000 /var/log/katib /data /checkpoints

USER 1000:1000
WORKDIR /home/trainer
CMD ["python", "-u", "-m", "trainer"]
