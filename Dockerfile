# syntax=docker/dockerfile:1.7
# latamctl images. Needs BuildKit (docker buildx, buildctl) for the cache mounts.
#
#   docker build -t latamctl:dev .                                  # runtime image (default, last stage)
#   docker build --target lambda -t latamctl-lambda:dev .            # worker as an SQS-triggered Lambda
#
# Runtime: distroless cc (glibc, CA certificates, no shell), uid/gid 65532, works with a
# read-only root filesystem; the only writable path it needs is /tmp (an emptyDir in the chart).
#
# No HEALTHCHECK: Kubernetes ignores it and probes GET /healthz and /readyz itself; distroless
# has no shell or curl to run one.
# checkov:skip=CKV_DOCKER_2:Kubernetes probes /healthz and /readyz; a Docker HEALTHCHECK is ignored there and distroless has no client to run it

ARG RUST_VERSION=1.95

############################ builder: the latamctl binary ############################
FROM rust:${RUST_VERSION}-bookworm AS builder
# `latamctl --version` names the commit; the build context has no .git (docker build
# --build-arg LATAMCTL_GIT_COMMIT=$(git rev-parse --short=12 HEAD)).
ARG LATAMCTL_GIT_COMMIT=unknown
ENV LATAMCTL_GIT_COMMIT=${LATAMCTL_GIT_COMMIT}
WORKDIR /src
COPY . .
# The target dir is a cache mount, so the binary is copied out in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,id=latamctl-target-bookworm \
    cargo build --release --locked --bin latamctl \
 && install -D -m 0755 target/release/latamctl /out/latamctl

############################ lambda-builder: latamctl-lambda on Amazon Linux 2023 ############################
# Built on the Lambda OS itself: a binary linked against bookworm's glibc 2.36 may need symbols
# that provided.al2023 (glibc 2.34) lacks.
FROM public.ecr.aws/amazonlinux/amazonlinux:2023 AS lambda-builder
ARG RUST_VERSION
ARG LATAMCTL_GIT_COMMIT=unknown
ENV RUSTUP_HOME=/usr/local/rustup CARGO_HOME=/usr/local/cargo PATH=/usr/local/cargo/bin:$PATH \
    LATAMCTL_GIT_COMMIT=${LATAMCTL_GIT_COMMIT}
RUN dnf install -y --setopt=install_weak_deps=False gcc gcc-c++ make perl tar gzip \
 && dnf clean all \
 && curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs \
    | sh -s -- -y --no-modify-path --profile minimal --default-toolchain "${RUST_VERSION}"
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,id=latamctl-target-al2023 \
    cargo build --release --locked --features lambda --bin latamctl-lambda \
 && install -D -m 0755 target/release/latamctl-lambda /out/bootstrap

############################ lambda: custom runtime image for provided.al2023 ############################
FROM public.ecr.aws/lambda/provided:al2023 AS lambda
COPY --from=lambda-builder /out/bootstrap ${LAMBDA_RUNTIME_DIR}/bootstrap
# The handler name is unused by a custom runtime; the bootstrap binary is the whole function.
CMD ["latamctl-lambda"]

############################ runtime (default target) ############################
FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
LABEL org.opencontainers.image.title="latamctl" \
      org.opencontainers.image.description="latamctl: pub/sub ingestion pipeline (api and worker roles)" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=builder /out/latamctl /usr/local/bin/latamctl
# Writable home of the nonroot user: a bare `docker run` (embedded mode) keeps ./latamctl-data here.
WORKDIR /home/nonroot
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/latamctl"]
CMD ["serve"]
