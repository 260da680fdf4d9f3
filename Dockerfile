# The bridge built from source, as the add-on runs it (`--data /data`), for an add-on
# built on the Home Assistant machine itself (scripts/local-addon puts this file and the
# sources into a local add-on folder) or for Docker anywhere:
#   docker build -t folotoy-bridge .
#   docker run -v "$PWD/data:/data" folotoy-bridge      # reads /data/options.json
# The published add-on image (addon/Dockerfile) holds the same binary, built by the
# release workflow.
#
# The base and the labels are addon/Dockerfile's (why: there), so an add-on built from
# source sits on the published image's base with its labels. Like addon/Dockerfile, this
# file is the whole build configuration, without build.yaml: SOURCE (below) has its value
# as its default, which scripts/local-addon sets for a local add-on folder.

FROM rust:1-alpine3.21 AS build
# Where the sources are in the build context: `.` at the repository root, `source` in a
# local add-on folder (whose own translations/ are the add-on's option names).
ARG SOURCE=.
# hadolint ignore=DL3018
RUN apk add --no-cache musl-dev
WORKDIR /src
COPY ${SOURCE}/Cargo.toml ${SOURCE}/Cargo.lock ./
COPY ${SOURCE}/benches ./benches
COPY ${SOURCE}/src ./src
COPY ${SOURCE}/translations ./translations
# The ready watch lists, carried in the binary.
COPY ${SOURCE}/data/watch ./data/watch
# The add-on's option names, which configuration errors quote.
COPY ${SOURCE}/addon/translations ./addon/translations
RUN cargo build --release --locked --no-default-features --bin folotoy-ha-bridge

FROM alpine:3.21
ARG BUILD_ARCH
ARG BUILD_VERSION
COPY --from=build /src/target/release/folotoy-ha-bridge /usr/bin/folotoy-ha-bridge
LABEL io.hass.type="app" \
      io.hass.arch="${BUILD_ARCH}" \
      io.hass.version="${BUILD_VERSION}" \
      io.hass.name="FoloToy bridge" \
      io.hass.description="Puts FoloToy AI talking toys into Home Assistant over MQTT" \
      io.hass.url="https://github.com/folotoy-ha-bridge/folotoy-ha-bridge" \
      org.opencontainers.image.title="FoloToy bridge" \
      org.opencontainers.image.source="https://github.com/folotoy-ha-bridge/folotoy-ha-bridge" \
      org.opencontainers.image.licenses="MIT"
CMD ["/usr/bin/folotoy-ha-bridge", "--data", "/data"]
