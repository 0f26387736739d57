# zmqauth: one image for the manager and the injected sidecar.
#
# The build line below is also run by test/deploy (TestDockerfileBuild), which
# parses it and checks the result is a static binary: keep it one RUN line
# starting with the environment assignments, then `go build`.

FROM --platform=$BUILDPLATFORM golang:1.26 AS build
# Set by BuildKit for each target platform (docker buildx build --platform).
ARG TARGETOS
ARG TARGETARCH
WORKDIR /src
# Dependencies first, so that a source change does not download them again.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# GOEXPERIMENT=simd compiles the AVX2 Salsa20 for CURVE messages (amd64; other
# architectures and CPUs without AVX2 use x/crypto's), as `make build` does.
RUN CGO_ENABLED=0 GOEXPERIMENT=simd GOOS=${TARGETOS:-linux} GOARCH=${TARGETARCH:-amd64} go build -trimpath -ldflags "-s -w" -o /out/zmqauth ./cmd/zmqauth

# distroless static: no shell, no libc, CA certificates and tzdata only; the
# "nonroot" user is 65532, the uid the Deployment and the injected sidecar
# run as.
FROM gcr.io/distroless/static:nonroot
COPY --from=build /out/zmqauth /zmqauth
USER 65532:65532
ENTRYPOINT ["/zmqauth"]
