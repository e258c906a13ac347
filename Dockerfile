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
RUN cargo build --release --locked --bin mdkeep && strip --strip-debug target/release/mdkeep

FROM ${BASE} AS runtime-base
# python3 runs the framework scripts of jobs; frameworks themselves go in a venv
# on the data volume (or a derived image), pointed at by jobs.frameworks.<f>.python.
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates python3 tini \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /usr/share/doc/* /usr/share/man/* \
    && useradd --system --uid 10001 --user-group --home-dir /srv/mdkeep --shell /usr/sbin/nologin mdkeep \
    && mkdir -p /srv/mdkeep/data /srv/mdkeep/configs /srv/mdkeep/jobs \
    && chown -R mdkeep:mdkeep /srv/mdkeep/data
COPY configs/mdkeep.toml /srv/mdkeep/configs/mdkeep.toml
COPY jobs /srv/mdkeep/jobs
USER mdkeep
WORKDIR /srv/mdkeep
# Everything mdkeep writes (catalog, data, tmp, trash, job folders) is under
# data/, the one volume; the root filesystem can be read-only.
ENV MDKEEP_ROOT=/srv/mdkeep \
    MDKEEP__HTTP__BIND=0.0.0.0:7878 \
    RUST_LOG=mdkeep=info
VOLUME ["/srv/mdkeep/data"]
EXPOSE 7878
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["mdkeep", "healthcheck", "--url", "http://127.0.0.1:7878/healthz"]
ENTRYPOINT ["tini", "--", "mdkeep"]
CMD ["daemon", "--log-format", "json"]

# The runtime around a binary built outside (BIN, relative to the context;
# strip its debug info first, or build with the release profile's split info).
FROM runtime-base AS prebuilt
ARG BIN=target/release/mdkeep
COPY ${BIN} /usr/local/bin/mdkeep

# The default target: the binary of the build stage.
FROM runtime-base AS runtime
COPY --from=build /src/target/release/mdkeep /usr/local/bin/mdkeep
