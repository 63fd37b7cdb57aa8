package main

import (
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
)

// healthServer answers GET /healthz with status and body, and anything
// else with 404, on 127.0.0.1.
func healthServer(t *testing.T, status int, body string) (port string) {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.Path != "/healthz" {
			http.Error(w, "unexpected "+r.Method+" "+r.URL.Path, http.StatusNotFound)
			return
		}
		w.WriteHeader(status)
		w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	_, port, err := net.SplitHostPort(srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	return port
}

func TestHealthcheck(t *testing.T) {
	t.Parallel()
	okBody := `{"postgres":"ok","redis":"ok"}`
	downBody := `{"postgres":"ok","redis":"unavailable"}`
	up := healthServer(t, http.StatusOK, okBody)
	down := healthServer(t, http.StatusServiceUnavailable, downBody)

	// A port nothing listens on: one the system just handed out and took back.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, closed, _ := net.SplitHostPort(l.Addr().String())
	l.Close()

	for _, tc := range []struct {
		name       string
		env        map[string]string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{
			name:       "healthy on the address given",
			env:        map[string]string{"HTTP_ADDR": "127.0.0.1:" + up},
			wantStdout: okBody,
		},
		{
			name:       "every interface is reached on loopback",
			env:        map[string]string{"HTTP_ADDR": "0.0.0.0:" + up},
			wantStdout: okBody,
		},
		{
			name:       "no host is reached on loopback",
			env:        map[string]string{"HTTP_ADDR": ":" + up},
			wantStdout: okBody,
		},
		{
			name:       "IPv6 any is reached on loopback",
			args:       []string{"--http-addr", "[::]:" + up},
			wantStdout: okBody,
		},
		{
			name:       "unhealthy prints the body and fails",
			env:        map[string]string{"HTTP_ADDR": "0.0.0.0:" + down},
			wantCode:   1,
			wantStdout: downBody,
			wantStderr: "nurture healthcheck: http://127.0.0.1:" + down + "/healthz answered 503 Service Unavailable\n",
		},
		{
			name:       "nothing listening",
			env:        map[string]string{"HTTP_ADDR": "127.0.0.1:" + closed},
			wantCode:   1,
			wantStderr: `nurture healthcheck: Get "http://127.0.0.1:` + closed + `/healthz": dial tcp 127.0.0.1:` + closed + ": connect: connection refused\n",
		},
		{
			name:       "malformed address",
			env:        map[string]string{"HTTP_ADDR": "8080"},
			wantCode:   2,
			wantStderr: "nurture: HTTP_ADDR=\"8080\": want host:port or :port, such as :8080\n",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, code := cli(t, tc.env, append([]string{"healthcheck"}, tc.args...)...)
			if code != tc.wantCode || stdout != tc.wantStdout || stderr != tc.wantStderr {
				t.Errorf("healthcheck: status %d\nstdout %q\nstderr %q\nwant status %d\nstdout %q\nstderr %q",
					code, stdout, stderr, tc.wantCode, tc.wantStdout, tc.wantStderr)
			}
		})
	}
}
