# Builds the nurture binary into a small image with the shipped campaigns
# and templates. docker-compose.yml runs it next to PostgreSQL, Redis and
# Mailpit.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/nurture ./cmd/nurture

FROM gcr.io/distroless/static-debian12:nonroot
WORKDIR /app
COPY --from=build /out/nurture /app/nurture
COPY campaigns /app/campaigns
COPY templates /app/templates
EXPOSE 8080
ENTRYPOINT ["/app/nurture"]
CMD ["serve"]
