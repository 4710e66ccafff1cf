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
# The API on every interface: anyone who can reach the published port can direct load with it,
# so give it a key (without one, it warns at start), from a file or the environment, never as
# --api-key on the command line, where every local user sees it in the process list:
#   docker run -p 8000:80 -v "$PWD/key:/run/secrets/pacer_key:ro" pacer \
#     serve --addr 0.0.0.0:80 --api-key-file /run/secrets/pacer_key --allow-target 10.0.0.0/8
#   docker run -p 8000:80 -e PACER_API_KEY=change-me pacer
# Requests may name data sets and tokenizers ("dataset", "tokenizer") only inside --data-dir; mount
# one read-only to allow them (without it, both fields are refused):
#   docker run -p 8000:80 -e PACER_API_KEY=change-me -v "$PWD/data:/data:ro" pacer \
#     serve --addr 0.0.0.0:80 --data-dir /data
# Arguments after the image name replace the default command (`docker run --rm pacer demo`).
ENTRYPOINT ["pacer"]
CMD ["serve", "--addr", "0.0.0.0:80"]
