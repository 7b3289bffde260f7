# herd serve in front of the Python example workers (keystroke, face, mean):
# Debian's Python with numpy, the adapter and the examples.
#   docker build -f deploy/docker/python-worker.Dockerfile -t herd-python-worker .
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_CFLAGS="-O2 -Wno-deprecated-declarations" go build -trimpath -ldflags="-s -w" -o /out/herd ./cmd/herd

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-numpy ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --uid 65532 --create-home --shell /usr/sbin/nologin herd
WORKDIR /app
COPY adapters/python adapters/python
COPY examples/keystroke/worker.py examples/keystroke/worker.py
COPY examples/face/worker.py examples/face/worker.py
COPY examples/mean-python examples/mean-python
COPY --from=build /out/herd /usr/local/bin/herd
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/herd"]
CMD ["serve", "--worker", "/usr/bin/python3 examples/keystroke/worker.py", "--data-dir", "/data"]
