# mdkeep: multi-stage build, slim runtime, non-root, read-only root friendly.
#   docker build -t mdkeep .                  (builds the binary in a rust image)
#   docker build --target prebuilt --build-arg BIN=target/release/mdkeep -t mdkeep .
#                                             (the runtime around a binary built on the host)
#   docker compose up -d                      (see docker-compose.yml)
# BASE names the runtime's Debian bookworm image: a local one made with
# `debootstrap --variant=minbase bookworm` + `podman import` works as well.
ARG BASE=debian:bookworm-slim

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
RUN apt-get update && apt-get install -y --no-install-recommends gcc g++ make && rm -rf /var/lib/apt/lists/*
COPY Cargo.toml Cargo.lock ./
COPY src src
COPY configs configs
COPY benches benches
RUN cargo build --release --locked --bin mdkeep

FROM ${BASE} AS runtime-base
# python3 runs the framework scripts of jobs; frameworks themselves go in a venv
# on the data volume, pointed at by jobs.frameworks.<f>.python. Debian packages
# a deployment needs go on this line (the images below have no apt).
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates python3 tini \
    && useradd --system --uid 10001 --user-group --home-dir /srv/mdkeep --shell /usr/sbin/nologin mdkeep \
    && mkdir -p /srv/mdkeep/data /srv/mdkeep/configs /srv/mdkeep/jobs \
    && chown -R mdkeep:mdkeep /srv/mdkeep/data
COPY configs/mdkeep.toml /srv/mdkeep/configs/mdkeep.toml
COPY jobs /srv/mdkeep/jobs
# What a running mdkeep never uses: the package manager, its database and
# its TLS and signature checks, perl, glibc's iconv modules, the leap-second
# time zones, python's own tests, documentation.
RUN rm -rf /var/lib/apt /var/cache/apt /var/cache/debconf /var/lib/dpkg /usr/lib/apt \
      /usr/bin/apt* /usr/bin/dpkg* /usr/lib/*-linux-gnu/libapt-* /usr/bin/gpgv \
      /usr/lib/*-linux-gnu/libgnutls* /usr/bin/openssl /usr/bin/tini-static \
      /usr/share/zoneinfo/right /usr/share/perl5 \
      /usr/lib/*-linux-gnu/perl-base /usr/bin/perl* /usr/lib/*-linux-gnu/gconv \
      /usr/lib/python3.*/test /usr/lib/python3.*/pydoc_data /usr/lib/python3.*/idlelib \
      /usr/lib/python3.*/lib-dynload/_test* /usr/lib/python3.*/lib-dynload/_xxtestfuzz* \
      /usr/share/doc /usr/share/man /usr/share/info /usr/share/lintian /usr/share/locale \
      /usr/share/bash-completion /usr/share/common-licenses

# One layer: files removed above are gone from the image, not hidden.
FROM scratch AS runtime-root
COPY --from=runtime-base / /
USER mdkeep
WORKDIR /srv/mdkeep
# Everything mdkeep writes (catalog, data, tmp, trash, job folders) is under
# data/, the one volume; the root filesystem can be read-only.
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    MDKEEP_ROOT=/srv/mdkeep \
    MDKEEP__HTTP__BIND=0.0.0.0:7878 \
    RUST_LOG=mdkeep=info
VOLUME ["/srv/mdkeep/data"]
EXPOSE 7878
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["mdkeep", "healthcheck", "--url", "http://127.0.0.1:7878/healthz"]
ENTRYPOINT ["tini", "--", "mdkeep"]
CMD ["daemon", "--log-format", "json"]

# The runtime around a binary built outside (BIN, relative to the context;
# the release profile's binary is stripped already).
FROM runtime-root AS prebuilt
ARG BIN=target/release/mdkeep
COPY ${BIN} /usr/local/bin/mdkeep

# The default target: the binary of the build stage.
FROM runtime-root AS runtime
COPY --from=build /src/target/release/mdkeep /usr/local/bin/mdkeep
