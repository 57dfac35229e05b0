# ConvServe image: a build stage compiles convserve-server and convserve-cli
# from this repository; a slim runtime stage carries only the two binaries and
# the Debian packages of the shared libraries they load.
#   docker build -t convserve .
#   docker run -p 50051:50051 -p 9090:9090 convserve
# (podman: add --format docker, or HEALTHCHECK is dropped.)

FROM debian:bookworm AS build
WORKDIR /src
# Dependencies first, in their own layer: source edits do not reinstall them.
COPY scripts/install-deps.sh scripts/
RUN scripts/install-deps.sh build && apt-get clean && rm -rf /var/lib/apt/lists/*
COPY . .
# Release at -O2, the optimisation level the tests run at (RelWithDebInfo),
# without debug info. Only the two binaries: with the tests it takes far longer.
RUN cmake -S . -B /build -G Ninja -DCMAKE_BUILD_TYPE=Release \
        -DCMAKE_CXX_FLAGS_RELEASE="-O2 -DNDEBUG" \
 && cmake --build /build --parallel "$(nproc)" --target convserve-server convserve-cli \
 && strip /build/bin/convserve-server /build/bin/convserve-cli
# The runtime packages, derived rather than kept by hand: every shared library
# the binaries load (ldd), mapped to the Debian package that ships it (dpkg -S).
# Debian 12 is mid-/usr-merge, so a library ldd finds under /lib may be
# registered under /usr/lib, or the other way round: try both spellings.
RUN set -eu; cd /build; \
    ldd bin/convserve-server bin/convserve-cli > ldd.txt; \
    if grep 'not found' ldd.txt; then exit 1; fi; \
    for lib in $(awk '$2 == "=>" && $3 ~ /^\// {print $3}  $1 ~ /^\// && $2 ~ /^\(/ {print $1}' ldd.txt | sort -u); do \
      package=""; \
      for path in "$lib" "${lib#/usr}" "/usr$lib" "$(readlink -f "$lib")"; do \
        package=$(dpkg -S "$path" 2>/dev/null | grep -v '^diversion' | head -1 | cut -d: -f1); \
        [ -z "$package" ] || break; \
      done; \
      [ -n "$package" ] || { echo "no Debian package ships $lib" >&2; exit 1; }; \
      echo "$package" >> packages.txt; \
    done; \
    sort -u packages.txt > runtime-packages.txt; \
    cat runtime-packages.txt

FROM debian:bookworm-slim
LABEL org.opencontainers.image.title="convserve" \
      org.opencontainers.image.description="TensorFlow's convolution ops (tf.nn.conv*) as a gRPC service" \
      org.opencontainers.image.version="0.1.0"
COPY --from=build /build/runtime-packages.txt /tmp/
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive xargs -a /tmp/runtime-packages.txt \
        apt-get install -y --no-install-recommends \
 && apt-get clean && rm -rf /var/lib/apt/lists/* /tmp/runtime-packages.txt
COPY --from=build /build/bin/convserve-server /build/bin/convserve-cli /usr/local/bin/
# A fixed numeric non-root user, so that Kubernetes' runAsNonRoot can check it.
RUN groupadd --system --gid 10001 convserve \
 && useradd --system --uid 10001 --gid 10001 --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin convserve
USER 10001

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
