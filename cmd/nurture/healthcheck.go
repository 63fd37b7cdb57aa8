package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"nurture/internal/httpserver"
)

// healthcheckTimeout bounds one health check, connection and body included.
const healthcheckTimeout = 5 * time.Second

// healthcheck asks this machine's HTTP role for /healthz, for container
// health checks in images that have no curl: status 0 on 200, 1 otherwise,
// with the answer's body on stdout either way.
func (a *app) healthcheck(ctx context.Context, args []string) error {
	fs := a.flags("healthcheck")
	addr := fs.String("http-addr", a.env("HTTP_ADDR", httpserver.DefaultAddr), "listen address of the HTTP role to check; 0.0.0.0 or no host means 127.0.0.1 (HTTP_ADDR)")
	if err := a.parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		fs.Usage()
		return exitError{code: 2}
	}
	url := "http://" + dialAddr(*addr) + "/healthz"
	ctx, cancel := context.WithTimeout(ctx, healthcheckTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return exitError{code: 1, msg: fmt.Sprintf("nurture healthcheck: %v", err)}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return exitError{code: 1, msg: fmt.Sprintf("nurture healthcheck: %v", err)}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	a.stdout.Write(body)
	if err != nil {
		return exitError{code: 1, msg: fmt.Sprintf("nurture healthcheck: read %s: %v", url, err)}
	}
	if resp.StatusCode != http.StatusOK {
		return exitError{code: 1, msg: fmt.Sprintf("nurture healthcheck: %s answered %s", url, resp.Status)}
	}
	return nil
}

// dialAddr turns a listen address into one to connect to: a server
// listening on every interface (0.0.0.0, ::, or no host) is reached on
// 127.0.0.1. checkSetting has made sure addr is host:port.
func dialAddr(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}
