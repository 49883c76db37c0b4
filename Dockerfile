# syntax=docker/dockerfile:1
# Build: a static binary (pure-Go SQLite, no cgo).
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/fsplane ./cmd/fsplane
# The image has no shell to make the data directory; make it here, owned by
# distroless' nonroot user (65532), so a fresh named volume inherits it.
RUN mkdir -p /out/data && chmod 0700 /out/data

# Run: no shell, no package manager, a non-root user.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/fsplane /usr/local/bin/fsplane
COPY --from=build --chown=65532:65532 /out/data /var/lib/fsplane
# The SQLite database, the Fernet key file and nothing else live here.
ENV FSPLANE_DATA_DIR=/var/lib/fsplane \
    FSPLANE_LISTEN=:8001
VOLUME ["/var/lib/fsplane"]
USER nonroot:nonroot
EXPOSE 8001
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
  CMD ["/usr/local/bin/fsplane", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/fsplane"]
CMD ["serve"]
