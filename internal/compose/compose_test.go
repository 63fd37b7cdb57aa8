package compose_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"nurture/internal/audience"
	"nurture/internal/campaign"
	"nurture/internal/compose"
	"nurture/internal/mail"
	"nurture/internal/testenv"
	"nurture/internal/tracking"
	"nurture/internal/unsubscribe"
)

func TestSenderPrecedence(t *testing.T) {
	withFrom := &campaign.Campaign{Name: "c", Email: campaign.Email{Template: "welcome", From: "Campaign <c@camp.example>"}}
	without := &campaign.Campaign{Name: "c", Email: campaign.Email{Template: "welcome"}}
	variant := &campaign.Variant{Name: "b", From: "Variant <v@var.example>"}
	plain := &campaign.Variant{Name: "a"}
	settings := &campaign.Settings{From: "Settings <s@set.example>"}
	for _, tc := range []struct {
		name     string
		mailFrom string
		camp     *campaign.Campaign
		v        *campaign.Variant
		settings *campaign.Settings
		want     string
	}{
		{"variant beats all", "Env <e@env.example>", withFrom, variant, settings, "Variant <v@var.example>"},
		{"campaign beats MAIL_FROM and settings", "Env <e@env.example>", withFrom, plain, settings, "Campaign <c@camp.example>"},
		{"MAIL_FROM beats settings", "Env <e@env.example>", without, nil, settings, "Env <e@env.example>"},
		{"settings without MAIL_FROM", "", without, plain, settings, "Settings <s@set.example>"},
		{"default", "", without, nil, &campaign.Settings{}, compose.DefaultFrom},
		{"default without settings", "", without, nil, nil, compose.DefaultFrom},
	} {
		c := compose.New(compose.Config{From: tc.mailFrom})
		if got := c.From(tc.camp, tc.v, tc.settings); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestMessage(t *testing.T) {
	tmpls, err := mail.LoadTemplates(testenv.Fixture("templates"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	cu := &audience.Customer{ID: "c1", Email: "ann@example.com", FirstName: "Ann", CreatedAt: now.Add(-48 * time.Hour), LastActiveAt: now}
	camp := &campaign.Campaign{Name: "welcome", Email: campaign.Email{Template: "welcome"},
		Variants: []campaign.Variant{{Name: "b", Subject: "Psst {{.FirstName}}"}}}
	c := compose.New(compose.Config{})
	settings := &campaign.Settings{From: "Shop <hi@shop.example>"}

	m, err := c.Message(compose.Input{DeliveryID: "d1", Campaign: camp, Settings: settings, Templates: tmpls, Template: "welcome",
		Variant: "b", Customer: cu, Stage: "new", Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject != "Psst Ann" || m.From != "Shop <hi@shop.example>" || m.MessageID != "<d1@shop.example>" || m.To != "ann@example.com" ||
		m.Text != "Hi Ann, welcome to the shop.\n" || m.Headers["X-Nurture-Delivery"] != "d1" || m.Headers["X-Nurture-Campaign"] != "welcome" {
		t.Errorf("message: %+v", m)
	}

	// The Message-ID domain follows the settings of a reloaded set, and
	// back again.
	for i, from := range []string{"Other <hi@other.example>", "Shop <hi@shop.example>", "no address at all"} {
		m, err := c.Message(compose.Input{DeliveryID: "d2", Campaign: camp, Settings: &campaign.Settings{From: from}, Templates: tmpls,
			Template: "welcome", Customer: cu, Stage: "new", Now: now})
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"<d2@other.example>", "<d2@shop.example>", "<d2@localhost>"}[i]; m.MessageID != want {
			t.Errorf("from %q: Message-ID %s, want %s", from, m.MessageID, want)
		}
	}

	_, err = c.Message(compose.Input{DeliveryID: "d1", Campaign: camp, Templates: tmpls, Template: "gone", Customer: cu, Now: now})
	if !errors.Is(err, compose.ErrTemplateNotFound) || err.Error() != `template "gone" not found` {
		t.Errorf("missing template: %v", err)
	}
}

func TestTemplate(t *testing.T) {
	journey := &campaign.Campaign{Name: "onboarding", Steps: []campaign.Step{{Template: "welcome-1"}, {Template: "welcome-2"}}}
	single := &campaign.Campaign{Name: "winback", Email: campaign.Email{Template: "winback"},
		Variants: []campaign.Variant{{Name: "a"}, {Name: "b", Template: "winback-b"}}}
	for _, tc := range []struct {
		camp         *campaign.Campaign
		step         int
		variant      string
		want, errMsg string
	}{
		{journey, 0, "", "welcome-1", ""},
		{journey, 2, "", "welcome-2", ""},
		{journey, 3, "", "", `step 3: campaign "onboarding" has steps 1 to 2`},
		{journey, -1, "", "", `step -1: campaign "onboarding" has steps 1 to 2`},
		{single, 0, "", "winback", ""},
		{single, 1, "", "winback", ""},
		{single, 0, "a", "winback", ""},
		{single, 0, "b", "winback-b", ""},
		{single, 0, "holdout", "", `variant "holdout": campaign "winback" has no such variant; its variants are a, b`},
	} {
		got, err := compose.Template(tc.camp, tc.step, tc.variant)
		if got != tc.want || (err == nil) != (tc.errMsg == "") || (err != nil && err.Error() != tc.errMsg) {
			t.Errorf("%s step %d variant %q: %q, %v; want %q, %q", tc.camp.Name, tc.step, tc.variant, got, err, tc.want, tc.errMsg)
		}
	}
}

// TestMessageTracked: a delivery of a campaign that tracks gets the pixel
// and its links through the click redirect, the unsubscribe link aside;
// a campaign that does not, a preview (no delivery id) and a composer
// without tracking get the email as the template made it.
func TestMessageTracked(t *testing.T) {
	tmpls, err := mail.LoadTemplates("testdata/templates")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	const base, secret = "https://mail.example.com", "0123456789abcdef-secret"
	unsub, err := unsubscribe.New(unsubscribe.Config{BaseURL: base, Secret: secret, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	links, err := tracking.New(tracking.Config{BaseURL: base, Secret: secret, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	cu := &audience.Customer{ID: "c1", Email: "ann@example.com", FirstName: "Ann", CreatedAt: now, LastActiveAt: now}
	yes, no := true, false
	settings := &campaign.Settings{Tracking: &campaign.Tracking{Opens: &yes, Clicks: &yes}}
	tracked := &campaign.Campaign{Name: "promo", Email: campaign.Email{Template: "promo"}}
	untracked := &campaign.Campaign{Name: "promo", Email: campaign.Email{Template: "promo"}, Tracking: &campaign.Tracking{Opens: &no, Clicks: &no}}
	id := uuid.MustParse("6f1c1a52-7d59-4c4e-9f0e-2f1d1c0b9a01")
	unsubURL := unsub.URL("c1", "promo")
	shop := "https://shop.example.com/new?who=c1"
	plainHTML := `<html><body><p>Hi Ann, see <a href="https://shop.example.com/new?who=c1">what is new</a>.</p>
<p><a href="` + strings.ReplaceAll(unsubURL, "&", "&amp;") + `">Unsubscribe</a></p></body></html>
`
	plainText := "Hi Ann, see what is new: " + shop + "\nUnsubscribe: " + unsubURL + "\n"
	for _, tc := range []struct {
		name       string
		cfg        compose.Config
		camp       *campaign.Campaign
		deliveryID string
		html, text string
	}{
		{"tracked", compose.Config{Unsubscribe: unsub, Tracking: links}, tracked, id.String(),
			`<html><body><p>Hi Ann, see <a href="` + links.ClickURL(id, shop) + `">what is new</a>.</p>
<p><a href="` + strings.ReplaceAll(unsubURL, "&", "&amp;") + `">Unsubscribe</a></p><img src="` + links.OpenURL(id) +
				`" width="1" height="1" alt="" style="display:block;width:1px;height:1px;border:0"></body></html>
`,
			"Hi Ann, see what is new: " + links.ClickURL(id, shop) + "\nUnsubscribe: " + unsubURL + "\n"},
		{"campaign says no", compose.Config{Unsubscribe: unsub, Tracking: links}, untracked, id.String(), plainHTML, plainText},
		{"preview", compose.Config{Unsubscribe: unsub, Tracking: links}, tracked, "preview", plainHTML, plainText},
		{"no tracking configured", compose.Config{Unsubscribe: unsub}, tracked, id.String(), plainHTML, plainText},
	} {
		m, err := compose.New(tc.cfg).Message(compose.Input{DeliveryID: tc.deliveryID, Campaign: tc.camp, Settings: settings,
			Templates: tmpls, Template: "promo", Customer: cu, Stage: "new", Now: now})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if m.HTML != tc.html {
			t.Errorf("%s: HTML\n got %s\nwant %s", tc.name, m.HTML, tc.html)
		}
		if m.Text != tc.text {
			t.Errorf("%s: text\n got %s\nwant %s", tc.name, m.Text, tc.text)
		}
	}
}

func TestListUnsubscribeMailto(t *testing.T) {
	tmpls, err := mail.LoadTemplates(testenv.Fixture("templates"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	cu := &audience.Customer{ID: "c1", Email: "ann@example.com", CreatedAt: now.Add(-48 * time.Hour), LastActiveAt: now}
	camp := &campaign.Campaign{Name: "welcome", Email: campaign.Email{Template: "welcome"}}
	for _, mailto := range []string{"", "unsubscribe@mail.example.com"} {
		links, err := unsubscribe.New(unsubscribe.Config{BaseURL: "https://mail.example.com", Secret: "0123456789abcdef-secret",
			Mailto: mailto, Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		m, err := compose.New(compose.Config{Unsubscribe: links}).Message(compose.Input{DeliveryID: "d1", Campaign: camp, Templates: tmpls,
			Template: "welcome", Customer: cu, Stage: "new", Now: now})
		if err != nil {
			t.Fatal(err)
		}
		want := "<" + links.URL("c1", "welcome") + ">"
		if mailto != "" {
			want += ", <mailto:unsubscribe@mail.example.com?subject=unsubscribe-" + links.Token("c1", "welcome") + ">"
		}
		if got := m.Headers["List-Unsubscribe"]; got != want {
			t.Errorf("mailto %q: List-Unsubscribe\n got %s\nwant %s", mailto, got, want)
		}
	}
}

// BenchmarkMessage builds the shipped winback email for one customer, as
// a worker does for each delivery: facts, template, headers.
func BenchmarkMessage(b *testing.B) {
	tmpls, err := mail.LoadTemplates("../../templates")
	if err != nil {
		b.Fatal(err)
	}
	now := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	bought := now.Add(-90 * 24 * time.Hour)
	cu := &audience.Customer{ID: "c1", Email: "ann@example.com", FirstName: "Ann", CreatedAt: now.Add(-400 * 24 * time.Hour),
		LastActiveAt: bought, LastPurchaseAt: &bought, OrdersCount: 3, Attributes: map[string]any{"plan": "pro"}}
	camp := &campaign.Campaign{Name: "winback", Email: campaign.Email{Template: "winback"}}
	settings := &campaign.Settings{From: "Shop <hi@shop.example>"}
	c := compose.New(compose.Config{})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Message(compose.Input{DeliveryID: "d1", Campaign: camp, Settings: settings, Templates: tmpls,
			Template: "winback", Customer: cu, Stage: "lapsed", Now: now}); err != nil {
			b.Fatal(err)
		}
	}
}
