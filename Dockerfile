# ConvServe images: a build stage compiles convserve-server and convserve-cli
# from this repository; a slim runtime stage carries only the two binaries and
# the packages of the shared libraries they load.
#
# The default image is CPU-only (oneDNN and the reference backend):
#   docker build -t convserve:0.1.0 .
#   docker run -p 50051:50051 -p 9090:9090 convserve:0.1.0
# The CUDA image adds the cuDNN backend (target cuda): CUDA 13 and cuDNN 9
# from NVIDIA's Debian 12 repository, on the same Debian 12 as the default
# image (NVIDIA's own CUDA images are Ubuntu, whose library packages are not
# the Debian 12 ones the binaries are built against). Name it with "cuda" in
# its tag: the Kubernetes lint (deploy/k8s) tells the images apart that way.
#   docker build --target cuda -t convserve:0.1.0-cuda .
#   docker run --gpus all -p 50051:50051 -p 9090:9090 convserve:0.1.0-cuda
# It runs on hosts with an NVIDIA driver for CUDA 13 (580 or later) and the
# NVIDIA Container Toolkit, which mounts the driver's libraries into the
# container; without a GPU the server computes on the CPU and logs why.
# Build arguments: CUDA_VERSION (13.0), CUDNN_VERSION (a libcudnn9-cuda-13
# package version, as `apt-cache policy libcudnn9-cuda-13` lists them; empty:
# the newest). The builder must skip the stages its target does not need
# (BuildKit, Docker's default, and podman/buildah do), so that the default
# build never reaches NVIDIA's repository.
# (podman: add --format docker, or HEALTHCHECK is dropped.)

ARG CUDA_VERSION=13.0
ARG CUDNN_VERSION=

# ---------------------------------------------------------------- CPU build
FROM debian:bookworm AS build
WORKDIR /src
# Dependencies first, in their own layer: source edits do not reinstall them.
COPY scripts/install-deps.sh scripts/
RUN scripts/install-deps.sh build && apt-get clean && rm -rf /var/lib/apt/lists/*
COPY . .
# Release at -O2, the optimisation level the tests run at (RelWithDebInfo),
# without debug info. Only the two binaries: with the tests it takes far longer.
RUN cmake -S . -B /build -G Ninja -DCMAKE_BUILD_TYPE=Release \
        -DCMAKE_CXX_FLAGS_RELEASE="-O2 -DNDEBUG" -DCONVSERVE_WITH_CUDA=OFF \
 && cmake --build /build --parallel "$(nproc)" --target convserve-server convserve-cli \
 && strip /build/bin/convserve-server /build/bin/convserve-cli
# The runtime packages, derived rather than kept by hand: every shared library
# the binaries load (ldd), mapped to the Debian package that ships it (dpkg -S).
# None of NVIDIA's: the default image stays CPU-only.
RUN bash deploy/runtime-packages.sh /build /build/bin/convserve-server /build/bin/convserve-cli \
 && if [ -s /build/nvidia-packages.txt ]; then echo "the CPU build loads NVIDIA's libraries" >&2; exit 1; fi

# ---------------------------------------------------------------- CUDA build
FROM debian:bookworm AS cuda-build
WORKDIR /src
# The CPU build's first layers, so they are built once for both.
COPY scripts/install-deps.sh scripts/
RUN scripts/install-deps.sh build && apt-get clean && rm -rf /var/lib/apt/lists/*
ARG CUDA_VERSION
ARG CUDNN_VERSION
# NVIDIA's Debian 12 repository (its keyring package, kept for the runtime
# stage): nvcc and the CUDA runtime's headers and static library (cudart is
# linked statically), cuDNN 9 for this CUDA major, and the libraries cuDNN
# loads with dlopen for some engines: cuBLASLt and NVRTC.
RUN set -eu; \
    case "$(dpkg --print-architecture)" in \
      amd64) arch=x86_64 ;; arm64) arch=sbsa ;; \
      *) echo "NVIDIA has no Debian 12 CUDA repository for $(dpkg --print-architecture)" >&2; exit 1 ;; \
    esac; \
    apt-get update; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates curl; \
    mkdir -p /build; \
    curl -fsSL --retry 3 -o /build/cuda-keyring.deb \
      "https://developer.download.nvidia.com/compute/cuda/repos/debian12/$arch/cuda-keyring_1.1-1_all.deb"; \
    dpkg -i /build/cuda-keyring.deb; \
    apt-get update; \
    cuda=$(echo "$CUDA_VERSION" | tr . -); major=${CUDA_VERSION%%.*}; pin=${CUDNN_VERSION:+=$CUDNN_VERSION}; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      "cuda-nvcc-$cuda" "cuda-cudart-dev-$cuda" "cuda-cccl-$cuda" "libcublas-$cuda" "cuda-nvrtc-$cuda" \
      "libcudnn9-cuda-$major$pin" "libcudnn9-dev-cuda-$major$pin" "libcudnn9-headers-cuda-$major$pin"; \
    ls -d /usr/local/cuda-"$CUDA_VERSION"/targets/*/lib > /etc/ld.so.conf.d/convserve-cuda.conf; \
    ldconfig; \
    apt-get clean; rm -rf /var/lib/apt/lists/*
ENV PATH=/usr/local/cuda-${CUDA_VERSION}/bin:${PATH}
COPY . .
RUN cmake -S . -B /build -G Ninja -DCMAKE_BUILD_TYPE=Release \
        -DCMAKE_CXX_FLAGS_RELEASE="-O2 -DNDEBUG" -DCONVSERVE_WITH_CUDA=ON \
        -DCUDAToolkit_ROOT=/usr/local/cuda-${CUDA_VERSION} \
 && cmake --build /build --parallel "$(nproc)" --target convserve-server convserve-cli \
 && strip /build/bin/convserve-server /build/bin/convserve-cli
# As for the CPU image, plus what cuDNN loads with dlopen; cuDNN, cuBLAS and
# NVRTC come from NVIDIA's repository, pinned to the versions built against.
RUN major=${CUDA_VERSION%%.*}; \
    bash deploy/runtime-packages.sh /build --dlopen "libcublasLt.so.$major" --dlopen "libnvrtc.so.$major" \
        /build/bin/convserve-server /build/bin/convserve-cli \
 && grep -q '^libcudnn9' /build/nvidia-packages.txt \
 && cp /etc/ld.so.conf.d/convserve-cuda.conf /build/

# ---------------------------------------------------------------- runtime
# What both images share: the user, the configuration and the health check.
FROM debian:bookworm-slim AS runtime
LABEL org.opencontainers.image.title="convserve" \
      org.opencontainers.image.description="TensorFlow's convolution ops (tf.nn.conv*) as a gRPC service" \
      org.opencontainers.image.version="0.1.0"
# A fixed numeric non-root user, so that Kubernetes' runAsNonRoot can check it.
RUN groupadd --system --gid 10001 convserve \
 && useradd --system --uid 10001 --gid 10001 --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin convserve
# Configuration is the CONVSERVE_* variables (convserve-server --help lists
# them all); here gRPC and metrics listen on every interface.
ENV CONVSERVE_ADDRESS=0.0.0.0:50051 \
    CONVSERVE_METRICS_ADDRESS=0.0.0.0:9090
EXPOSE 50051 9090
# Healthy only while the gRPC health service says SERVING (after the warm-up
# convolution; NOT_SERVING while draining). It follows CONVSERVE_ADDRESS's port;
# a wildcard host is asked through loopback. (An --address flag given as
# arguments overrides the variable and is not seen here.) With
# CONVSERVE_TLS_CERT set it asks over TLS, verifying the server with the ca.crt
# beside the certificate (a Kubernetes TLS Secret's layout) or else with the
# certificate itself; either way the certificate must name the address asked
# (127.0.0.1 for a wildcard). Health needs no token. With mutual TLS
# (CONVSERVE_TLS_CLIENT_CA) it has no client certificate: override it
# (docker run --health-cmd, compose healthcheck) to pass --tls-cert/--tls-key.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD a="${CONVSERVE_ADDRESS:-0.0.0.0:50051}"; \
      case "${a%:*}" in ""|0.0.0.0|"[::]") a="127.0.0.1:${a##*:}" ;; esac; \
      set -- --address "$a" --timeout 4; \
      if [ -n "${CONVSERVE_TLS_CERT:-}" ]; then \
        ca="${CONVSERVE_TLS_CERT%/*}/ca.crt"; [ -r "$ca" ] || ca="$CONVSERVE_TLS_CERT"; \
        set -- "$@" --tls-ca "$ca"; \
      fi; \
      exec /usr/local/bin/convserve-cli "$@" health
# SIGTERM drains calls in flight for CONVSERVE_GRACE_PERIOD_S (30 s), then exits 0.
ENTRYPOINT ["/usr/local/bin/convserve-server"]

# ---------------------------------------------------------------- CUDA image
FROM runtime AS cuda
ARG CUDA_VERSION
LABEL org.opencontainers.image.description="TensorFlow's convolution ops (tf.nn.conv*) as a gRPC service, with the cuDNN backend (CUDA ${CUDA_VERSION}, cuDNN 9)"
COPY --from=cuda-build /build/runtime-packages.txt /build/nvidia-packages.txt /build/cuda-keyring.deb \
     /build/convserve-cuda.conf /tmp/
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates \
 && dpkg -i /tmp/cuda-keyring.deb \
 && apt-get update \
 && cat /tmp/runtime-packages.txt /tmp/nvidia-packages.txt > /tmp/packages.txt \
 && DEBIAN_FRONTEND=noninteractive xargs -a /tmp/packages.txt \
        apt-get install -y --no-install-recommends \
 && mv /tmp/convserve-cuda.conf /etc/ld.so.conf.d/ && ldconfig \
 && apt-get clean && rm -rf /var/lib/apt/lists/* /tmp/*
COPY --from=cuda-build /build/bin/convserve-server /build/bin/convserve-cli /usr/local/bin/
# Everything the binaries and cuDNN load resolves here (the driver's libcuda
# comes from the NVIDIA Container Toolkit at run time: cudart loads it).
RUN if ldd /usr/local/bin/convserve-server /usr/local/bin/convserve-cli | grep 'not found'; then exit 1; fi \
 && major=${CUDA_VERSION%%.*} \
 && for lib in libcudnn.so.9 "libcublasLt.so.$major" "libnvrtc.so.$major"; do \
      ldconfig -p | awk -v l="$lib" '$1 == l {f = 1} END {exit !f}' || { echo "$lib is not in the loader's cache" >&2; exit 1; }; \
    done
# The container toolkit mounts the compute driver (and nvidia-smi), and refuses
# to start on a driver older than this CUDA. The GPUs are the ones the runtime
# hands the container (docker run --gpus, a Kubernetes nvidia.com/gpu limit);
# convserve-server uses all of them unless CONVSERVE_CUDA_DEVICES says otherwise.
ENV NVIDIA_DRIVER_CAPABILITIES=compute,utility \
    NVIDIA_REQUIRE_CUDA="cuda>=${CUDA_VERSION}"
USER 10001

# ---------------------------------------------------------------- CPU image (the default: last)
FROM runtime AS cpu
COPY --from=build /build/runtime-packages.txt /tmp/
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive xargs -a /tmp/runtime-packages.txt \
        apt-get install -y --no-install-recommends \
 && apt-get clean && rm -rf /var/lib/apt/lists/* /tmp/runtime-packages.txt
COPY --from=build /build/bin/convserve-server /build/bin/convserve-cli /usr/local/bin/
USER 10001
