package pages_test

import (
	"bytes"
	"context"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"nurture/internal/testenv"
)

// chromium finds the headless browser; without one the test is skipped,
// except in CI, which installs it (scripts/services.sh).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium is not installed, and CI must run the browser tests: scripts/services.sh installs it")
	}
	t.Skip("chromium is not installed: the browser tests need it (scripts/services.sh installs it, or apt-get install chromium)")
	return ""
}

// shotsDir is where the screenshots go: PAGES_SCREENSHOTS when set, else
// the test's temporary directory.
func shotsDir(t *testing.T) string {
	if d := os.Getenv("PAGES_SCREENSHOTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

// browse runs headless Chromium on url with extra flags (a fresh profile
// each time) and returns its standard output.
func browse(t *testing.T, bin, u string, flags ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	args := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--user-data-dir=" + t.TempDir()}, flags...)
	cmd := exec.CommandContext(ctx, bin, append(args, u)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %s: %v\n%s", u, err, errb.String())
	}
	return out.String()
}

// TestPagesInBrowser loads each page in headless Chromium behind the
// login, checks the fixture's figures in the DOM it built, and keeps a
// screenshot of each, at a desktop and at a phone's width.
func TestPagesInBrowser(t *testing.T) {
	bin := chromium(t)
	t.Parallel()
	st := testenv.Store(t)
	seed(t, st)
	base := server(t, st, ts("2026-06-20T08:00:00Z"))
	login := strings.Replace(base, "http://", "http://"+url.UserPassword("admin", "s3cret pass").String()+"@", 1)
	dir := shotsDir(t)
	t.Logf("screenshots in %s", dir)

	dom := browse(t, bin, login+"/campaigns", "--dump-dom")
	checkRows(t, dom, "report", reportHead, welcomeLine, winbackLine, variantA, holdoutLine)

	dom = browse(t, bin, login+"/campaigns/winback", "--dump-dom")
	checkRows(t, dom, "report", reportHead, winbackLine, variantA, holdoutLine)
	checkRows(t, dom, "days", "Day | Planned | Sent | Opened | Clicked | Converted | Conv. rate | Revenue",
		"2026-06-01 | 4 | 2 | 1 | 1 | 1 | 50.0% | 40.00",
		"2026-06-02 | 2 | 1 | 1 | 0 | 1 | 100.0% | 60.00")
	if !strings.Contains(dom, `href="/monitoring/queues/retention"`) || !strings.Contains(dom, "<svg") {
		t.Errorf("/campaigns/winback in the browser lacks the queue link or the chart")
	}

	dom = browse(t, bin, login+"/lifecycle?from=2026-06-01&to=2026-06-02", "--dump-dom")
	checkRows(t, dom, "history", "Day | new | active | at_risk | All", "2026-06-01 | 1 | 3 | 2 | 6", "2026-06-02 | 0 | 5 | 1 | 6")
	checkRows(t, dom, "stages", "Stage | Customers | Revenue | Average value",
		"new | 0 | 0.00 | 0.00", "active | 5 | 115.00 | 23.00", "at_risk | 1 | 0.00 | 0.00", "all | 6 | 115.00 | 19.17")

	// Without the password the browser gets the 401, not the figures.
	if dom := browse(t, bin, base+"/campaigns", "--dump-dom"); strings.Contains(dom, "winback") {
		t.Errorf("/campaigns without the password shows the report:\n%s", dom)
	}

	for _, shot := range []struct{ name, path, size string }{
		{"campaigns", "/campaigns", "1280,900"},
		{"campaigns-phone", "/campaigns", "390,1600"},
		{"campaign-winback", "/campaigns/winback", "1280,1400"},
		{"lifecycle", "/lifecycle?from=2026-06-01&to=2026-06-02", "1280,1800"},
		{"lifecycle-phone", "/lifecycle?from=2026-06-01&to=2026-06-02", "390,2400"},
	} {
		file := filepath.Join(dir, shot.name+".png")
		browse(t, bin, login+shot.path, "--hide-scrollbars", "--window-size="+shot.size, "--screenshot="+file)
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatalf("screenshot of %s: %v", shot.path, err)
		}
		if !bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")) || len(b) < 10_000 {
			t.Errorf("screenshot of %s: %d bytes, not a page's PNG", shot.path, len(b))
		}
	}
}
