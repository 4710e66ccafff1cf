# Build stage: the Rust toolchain, a locked release build.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches ./benches
RUN cargo build --release --locked --bin pacer

# Runtime stage: just the binary. TLS roots are compiled in (webpki-roots), so no CA bundle is needed.
FROM debian:bookworm-slim
COPY --from=build /src/target/release/pacer /usr/local/bin/pacer
EXPOSE 80
CMD ["pacer", "serve", "--addr", "0.0.0.0:80"]
