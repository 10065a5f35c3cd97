# syntax=docker/dockerfile:1
#
# Outrider as a container image: a static binary in distroless/static, run as a
# numeric non-root user, no shell. scripts/check-image.sh runs the same build commands
# without a Docker engine and checks the binary (static, size, runs, this file linted).
#
#   docker build -t outrider .
#   docker run --rm -p 9717:9717 outrider demo
#
# Why static glibc and not musl: the glibc target is the one every Rust toolchain
# image (and this project's CI machine, where no musl target can be installed) has.
# `--target` is explicit so only Outrider is linked statically, not the build scripts
# and proc macros cargo runs on the builder.
#
# DNS: a static glibc binary must not resolve names through getaddrinfo (glibc loads
# NSS modules with dlopen, and this image has no libc to load). The alert receivers'
# HTTP client uses hickory, a resolver that reads /etc/resolv.conf and /etc/hosts
# itself; check-image.sh delivers an alert to a webhook named by host name from an
# empty root. --listen takes an IP literal (0.0.0.0:9717), never a host name.

FROM rust:1.95-bookworm AS build
WORKDIR /src
# Only what the build needs (see .dockerignore); benches/ because Cargo.toml names them.
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches ./benches
ENV RUSTFLAGS="-C target-feature=+crt-static"
# Cache mounts (BuildKit) keep crates and compiled dependencies between builds; the
# binary is copied out of the cached target dir in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    target="$(uname -m)-unknown-linux-gnu" \
 && cargo build --release --locked --target "$target" \
 && cp "target/$target/release/outrider" /outrider \
 && /outrider --version

# distroless/static: CA certificates, /etc/passwd with `nonroot` (65532), tzdata;
# no shell, no package manager, no libc.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /outrider /outrider
# Numeric, so Kubernetes' runAsNonRoot can check it without reading /etc/passwd.
# To read another container's /proc fully, run as the app's UID instead (see
# docs/kubernetes.md).
USER 65532:65532
EXPOSE 9717
ENTRYPOINT ["/outrider"]
