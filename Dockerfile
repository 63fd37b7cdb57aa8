# Builds the nurture binary into a small image with the shipped campaigns
# and templates. docker-compose.yml runs it next to PostgreSQL, Redis and
# Mailpit, with campaigns/ and templates/ mounted from the host instead.
# Base images are pinned: the builder by exact version, the runtime (which
# has no version tags) by digest.
FROM golang:1.26.8-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/nurture ./cmd/nurture

FROM gcr.io/distroless/static-debian12:nonroot@sha256:d093aa3e30dbadd3efe1310db061a14da60299baff8450a17fe0ccc514a16639
WORKDIR /app
# On PATH, so `docker compose exec nurture nurture ...` runs any command.
COPY --from=build /out/nurture /usr/local/bin/nurture
COPY campaigns /app/campaigns
COPY templates /app/templates
# Listen where a published port reaches. The HTTP role then refuses to start
# without ADMIN_PASSWORD, and says so: the admin pages are never open to the
# network by default.
ENV HTTP_ADDR=0.0.0.0:8080
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/nurture"]
CMD ["serve"]
