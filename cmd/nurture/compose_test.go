package main

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
)

// Docker cannot run where the tests run, so these tests check the
// container set-up as text: the compose files parse, every image is pinned,
// the nurture service reads campaigns and templates from the host and is
// health-checked by a command this binary has.

// composeFile is the part of a compose file these tests look at.
type composeFile struct {
	Services map[string]struct {
		Image       string            `yaml:"image"`
		Build       any               `yaml:"build"`
		Command     []string          `yaml:"command"`
		Environment map[string]string `yaml:"environment"`
		Volumes     []string          `yaml:"volumes"`
		Ports       []string          `yaml:"ports"`
		Healthcheck struct {
			Test []string `yaml:"test"`
		} `yaml:"healthcheck"`
	} `yaml:"services"`
}

func readCompose(t *testing.T, path string) composeFile {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f composeFile
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if len(f.Services) == 0 {
		t.Fatalf("%s: no services", path)
	}
	return f
}

func TestExactVersion(t *testing.T) {
	t.Parallel()
	digest := "@sha256:" + strings.Repeat("0a", 32)
	for ref, want := range map[string]bool{
		"postgres:16.15":          true,
		"redis:7.4.11":            true,
		"axllent/mailpit:v1.28.2": true,
		"golang:1.26.8-bookworm":  true,
		"gcr.io/distroless/static-debian12:nonroot" + digest: true,
		"postgres:16":           false,
		"postgres":              false,
		"redis:7.4":             false,
		"redis:latest":          false,
		"axllent/mailpit:v1.21": false,
		"golang:1.26-bookworm":  false,
		"gcr.io/distroless/static-debian12:nonroot": false,
	} {
		if got := exactVersion(ref); got != want {
			t.Errorf("exactVersion(%q) = %v, want %v", ref, got, want)
		}
	}
}

func TestDockerCompose(t *testing.T) {
	t.Parallel()
	root := filepath.Join("..", "..")
	f := readCompose(t, filepath.Join(root, "docker-compose.yml"))

	// The services scripts/services.sh runs when Docker is all there is.
	dev := readCompose(t, filepath.Join(root, "scripts", "compose.services.yml"))
	for name, s := range dev.Services {
		if !exactVersion(s.Image) {
			t.Errorf("scripts/compose.services.yml: service %s: image %q is not pinned to an exact version", name, s.Image)
		}
		for _, p := range s.Ports {
			if !strings.HasPrefix(p, "127.0.0.1:") {
				t.Errorf("scripts/compose.services.yml: service %s publishes %q beyond the host's loopback", name, p)
			}
		}
	}

	for name, s := range f.Services {
		switch {
		case s.Image == "" && s.Build == nil:
			t.Errorf("service %s: neither image nor build", name)
		case s.Image != "" && !exactVersion(s.Image):
			t.Errorf("service %s: image %q is not pinned to an exact version", name, s.Image)
		}
	}

	n, ok := f.Services["nurture"]
	if !ok {
		t.Fatal("no nurture service")
	}
	wantVolumes := []string{"./campaigns:/app/campaigns:ro", "./templates:/app/templates:ro", "./examples:/examples:ro"}
	if !reflect.DeepEqual(n.Volumes, wantVolumes) {
		t.Errorf("nurture volumes = %q, want %q", n.Volumes, wantVolumes)
	}
	for _, dir := range []string{"campaigns", "templates"} {
		if fi, err := os.Stat(filepath.Join(root, dir)); err != nil || !fi.IsDir() {
			t.Errorf("mounted directory %s: %v", dir, err)
		}
	}
	wantTest := []string{"CMD", "/usr/local/bin/nurture", "healthcheck"}
	if !reflect.DeepEqual(n.Healthcheck.Test, wantTest) {
		t.Errorf("nurture healthcheck test = %q, want %q", n.Healthcheck.Test, wantTest)
	}
	// The merge key brings the shared settings in.
	for k, want := range map[string]string{
		"HTTP_ADDR":      "0.0.0.0:8080",
		"ADMIN_PASSWORD": "${ADMIN_PASSWORD:-change-me-before-exposing-this}",
		"DATABASE_URL":   "postgres://nurture:nurture@postgres:5432/nurture?sslmode=disable",
		"SMTP_URL":       "smtp://mailpit:1025?tls=none",
	} {
		if got := n.Environment[k]; got != want {
			t.Errorf("nurture environment %s = %q, want %q", k, got, want)
		}
	}
	for name, s := range f.Services {
		for _, p := range s.Ports {
			if !strings.HasPrefix(p, "127.0.0.1:") {
				t.Errorf("service %s publishes %q beyond the host's loopback", name, p)
			}
		}
	}

	// The health check's command exists in this binary.
	if _, stderr, code := cli(t, nil, "healthcheck", "-h"); code != 0 || !strings.HasPrefix(stderr, "Usage: nurture healthcheck ") {
		t.Errorf("nurture healthcheck -h: status %d, stderr %q", code, stderr)
	}
}

func TestDockerfile(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(filepath.Join("..", "..", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	var from []string
	lines := strings.Split(string(b), "\n")
	for _, l := range lines {
		if fields := strings.Fields(l); len(fields) >= 2 && fields[0] == "FROM" {
			from = append(from, fields[1])
			if !exactVersion(fields[1]) {
				t.Errorf("FROM %s: not pinned to an exact version or digest", fields[1])
			}
		}
	}
	if len(from) != 2 {
		t.Errorf("FROM lines %q, want a builder and a runtime", from)
	}
	for _, want := range []string{
		"COPY --from=build /out/nurture /usr/local/bin/nurture", // where the compose health check runs it
		"ENV HTTP_ADDR=0.0.0.0:8080",                            // reachable through a published port; needs ADMIN_PASSWORD
		`ENTRYPOINT ["/usr/local/bin/nurture"]`,
	} {
		if !slices.Contains(lines, want) {
			t.Errorf("Dockerfile has no line %q", want)
		}
	}

	ignore, err := os.ReadFile(filepath.Join("..", "..", ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{".git", "bin", "outbox"} {
		if !slices.Contains(strings.Split(string(ignore), "\n"), want) {
			t.Errorf(".dockerignore does not leave out %s", want)
		}
	}
}

// exactVersion reports whether an image reference is pinned: by digest,
// or by a tag with major, minor and patch numbers. PostgreSQL's are two
// numbers since version 10: its second number is the patch release.
func exactVersion(ref string) bool {
	if pinnedDigest.MatchString(ref) {
		return true
	}
	m := pinnedTag.FindStringSubmatch(ref)
	return m != nil && (m[3] != "" || m[1] == "postgres")
}

var (
	pinnedDigest = regexp.MustCompile(`^[a-z0-9./-]+(:[a-z0-9._-]+)?@sha256:[0-9a-f]{64}$`)
	pinnedTag    = regexp.MustCompile(`^([a-z0-9./-]+):v?([0-9]+\.[0-9]+)(\.[0-9]+)?(-[a-z0-9]+)?$`)
)
