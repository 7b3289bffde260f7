# herd serve in front of the Lua example workers (gait, mean): LuaJIT and
# lua-cjson from Debian, the adapter and the examples.
#   docker build -f deploy/docker/lua-worker.Dockerfile -t herd-lua-worker .
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_CFLAGS="-O2 -Wno-deprecated-declarations" go build -trimpath -ldflags="-s -w" -o /out/herd ./cmd/herd

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends luajit lua-cjson ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --uid 65532 --create-home --shell /usr/sbin/nologin herd
WORKDIR /app
COPY adapters/lua adapters/lua
COPY examples/gait/worker.lua examples/gait/forest.lua examples/gait/
COPY examples/mean-lua examples/mean-lua
COPY --from=build /out/herd /usr/local/bin/herd
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/herd"]
CMD ["serve", "--worker", "luajit examples/gait/worker.lua", "--data-dir", "/data"]
