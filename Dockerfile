# The Home Assistant add-on image. The Supervisor builds it from this folder with
# BUILD_FROM taken from build.yaml; the standalone GPU image is Dockerfile.cuda.
ARG BUILD_FROM=ghcr.io/home-assistant/amd64-base-debian:trixie
FROM ${BUILD_FROM}

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:${PATH} \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1 \
    HF_HOME=/data/huggingface

RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv \
    && rm -rf /var/lib/apt/lists/*

# The install step CI runs (.ci/run), without the GPU extra: Home Assistant OS
# gives add-ons no NVIDIA GPU, CSM comes from a GPU host through `remote`.
WORKDIR /usr/src/wyoming-verba
COPY pyproject.toml README.md ./
COPY wyoming_verba ./wyoming_verba
RUN python3 -m venv "${VIRTUAL_ENV}" \
    && pip install ".[piper]" \
    && python3 -m wyoming_verba --version

WORKDIR /
COPY addon/rootfs /
COPY run.sh /etc/s6-overlay/s6-rc.d/verba/run
COPY addon/healthcheck.sh /usr/local/bin/verba-healthcheck
RUN chmod a+x /etc/s6-overlay/s6-rc.d/verba/run /etc/s6-overlay/s6-rc.d/verba/finish \
        /etc/s6-overlay/s6-rc.d/discovery/run /usr/local/bin/verba-healthcheck \
    && rm -rf /usr/src/wyoming-verba

# A describe -> info round trip, as Home Assistant itself does every 30 s.
HEALTHCHECK --start-period=10m --interval=30s --timeout=10s --retries=3 \
    CMD verba-healthcheck 127.0.0.1 10200 5 || exit 1
