# Small, non-root image of the clvd binary. SQLite is pure Go, so the binary is static (CGO off).
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/clvd ./cmd/clvd && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/clvd /clvd
COPY --from=build --chown=65532:65532 /out/data /data
ENV CLVD_DATA_DIR=/data CLVD_ADDR=:8080
VOLUME ["/data"]
EXPOSE 8080
USER 65532:65532
ENTRYPOINT ["/clvd"]
CMD ["serve"]
