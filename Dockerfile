# Beacon in a container: build on Debian 12, run on a slim Debian 12 with
# only the runtime libraries, as a non-root user, with its data in /data.
#
#   docker build -t beacon .
#   docker run -p 8080:8080 -v beacon-data:/data \
#       -e BEACON_BASE_URL=https://beacon.example.com beacon

FROM debian:12-slim AS build
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y \
        --no-install-recommends build-essential cmake pkg-config \
        libmicrohttpd-dev libsodium-dev libsqlite3-dev libcjson-dev \
        libidn2-dev libicu-dev libpsl-dev nodejs npm \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# dashboard_vendor copies the dashboard's chart library from npm into
# static/vendor/, which the runtime stage takes with the rest of static/.
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DBUILD_TESTING=OFF \
    && cmake --build /build -j"$(nproc)" --target beacon dashboard_vendor

FROM debian:12-slim
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y \
        --no-install-recommends libmicrohttpd12 libsodium23 libsqlite3-0 \
        libcjson1 libidn2-0 libicu72 libpsl5 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --home-dir /data \
        --shell /usr/sbin/nologin beacon \
    && mkdir -p /data \
    && chown beacon:beacon /data
COPY --from=build /build/beacon /usr/local/bin/beacon
COPY --from=build /src/static /usr/share/beacon/static
COPY --from=build /src/rules /usr/share/beacon/rules
ENV BEACON_STATIC_DIR=/usr/share/beacon/static \
    BEACON_RULES=/usr/share/beacon/rules/beacon.rules
USER beacon
WORKDIR /data
VOLUME /data
EXPOSE 8080
CMD ["beacon", "serve", "--listen", "0.0.0.0:8080", \
     "--db", "/data/beacon.db", "--key-file", "/data/signing.key", \
     "--api-key-file", "/data/api.key"]
