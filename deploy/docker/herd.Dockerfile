# herd itself: hub, node (relay mode), serve with a worker brought in by a
# derived image. Build from the repository root:
#   docker build -f deploy/docker/herd.Dockerfile -t herd .
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# cgo stays on: GPU metrics load NVML at run time through it.
RUN CGO_CFLAGS="-O2 -Wno-deprecated-declarations" go build -trimpath -ldflags="-s -w" -o /out/herd ./cmd/herd

FROM gcr.io/distroless/base-debian12:nonroot
COPY --from=build /out/herd /usr/local/bin/herd
USER nonroot:nonroot
ENTRYPOINT ["/usr/local/bin/herd"]
