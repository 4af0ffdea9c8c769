# Build: release binary of the shipgate service.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin shipgate

# Run: a small Debian with the binary, as an unprivileged user.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --home /var/lib/shipgate --create-home shipgate
COPY --from=build /src/target/release/shipgate /usr/local/bin/shipgate
USER shipgate
WORKDIR /var/lib/shipgate
ENV SHIPGATE_LISTEN=0.0.0.0:8080
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --retries=3 CMD curl -fsS http://127.0.0.1:8080/readyz || exit 1
ENTRYPOINT ["shipgate"]
CMD ["serve"]
