# A grid node with Debian's Chromium and chromedriver.
#   docker build -f deploy/docker/node-chromium.Dockerfile -t herd-node-chromium .
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_CFLAGS="-O2 -Wno-deprecated-declarations" go build -trimpath -ldflags="-s -w" -o /out/herd ./cmd/herd

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends chromium chromium-driver fonts-liberation ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --uid 65532 --create-home --shell /usr/sbin/nologin herd
COPY --from=build /out/herd /usr/local/bin/herd
USER 65532:65532
EXPOSE 5555
ENTRYPOINT ["/usr/local/bin/herd"]
CMD ["node", "--hub", "http://herd-hub:4444", "--browser", "browserName=chrome,maxSessions=5,binary=/usr/bin/chromium,driver=/usr/bin/chromedriver"]
