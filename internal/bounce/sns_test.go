package bounce_test

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"

	"nurture/internal/bounce"
	"nurture/internal/store"
)

// snsStandIn is a local TLS server standing in for sns.<region>.amazonaws.com:
// it serves a signing certificate made by the test, and counts
// subscription confirmations.
type snsStandIn struct {
	srv       *httptest.Server
	key       *rsa.PrivateKey
	certURL   string
	certGets  atomic.Int32
	confirmed atomic.Value // the Token of the last confirmation
}

func newSNSStandIn(t *testing.T) *snsStandIn {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sns.test"},
		NotBefore: ts("2026-01-01T00:00:00Z"), NotAfter: ts("2027-01-01T00:00:00Z")}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	s := &snsStandIn{key: key}
	mux := http.NewServeMux()
	mux.HandleFunc("/SimpleNotificationService-test.pem", func(w http.ResponseWriter, r *http.Request) {
		s.certGets.Add(1)
		w.Write(pemBytes)
	})
	mux.HandleFunc("/confirm", func(w http.ResponseWriter, r *http.Request) {
		s.confirmed.Store(r.URL.Query().Get("Token"))
		w.Write([]byte("<ConfirmSubscriptionResponse/>"))
	})
	s.srv = httptest.NewTLSServer(mux)
	t.Cleanup(s.srv.Close)
	s.certURL = s.srv.URL + "/SimpleNotificationService-test.pem"
	return s
}

func (s *snsStandIn) host() string {
	u, _ := url.Parse(s.srv.URL)
	return u.Host
}

func (s *snsStandIn) config() bounce.HandlerConfig {
	return bounce.HandlerConfig{SNSVerify: true, SNSHostAllowed: func(h string) bool { return h == s.host() }, Client: s.srv.Client()}
}

// sign signs an SNS message as SNS does, with version 1 (SHA1) or 2
// (SHA256).
func (s *snsStandIn) sign(t *testing.T, m map[string]any, version string) {
	t.Helper()
	m["SignatureVersion"] = version
	m["SigningCertURL"] = s.certURL
	keys := []string{"Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"}
	if m["Type"] != "Notification" {
		keys = []string{"Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"}
	}
	var text strings.Builder
	for _, k := range keys {
		if v, ok := m[k]; ok {
			text.WriteString(k + "\n" + v.(string) + "\n")
		}
	}
	var sig []byte
	var err error
	if version == "1" {
		d := sha1.Sum([]byte(text.String()))
		sig, err = rsa.SignPKCS1v15(rand.Reader, s.key, crypto.SHA1, d[:])
	} else {
		d := sha256.Sum256([]byte(text.String()))
		sig, err = rsa.SignPKCS1v15(rand.Reader, s.key, crypto.SHA256, d[:])
	}
	if err != nil {
		t.Fatal(err)
	}
	m["Signature"] = base64.StdEncoding.EncodeToString(sig)
}

func (f *fixture) loadSNS(t *testing.T, name string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(f.readFile(t, name), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func encode(t *testing.T, m map[string]any) string {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func snsHeader(m map[string]any) map[string]string {
	return map[string]string{"x-amz-sns-message-type": m["Type"].(string), "Content-Type": "text/plain; charset=UTF-8"}
}

func TestSESBounceAndComplaint(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	url := f.serve(t, bounce.HandlerConfig{Tokens: []string{token}})
	for _, name := range []string{"ses-bounce.json", "ses-complaint.json"} {
		m := f.loadSNS(t, name)
		// Without a token, and without SNS_VERIFY: refused.
		if code, got := post(t, url, "", snsHeader(m), encode(t, m)); code != 401 {
			t.Errorf("%s without a token: %d %s", name, code, got)
		}
		if code, got := post(t, url, "Bearer "+token, snsHeader(m), encode(t, m)); code != 200 || got != `{"accepted":1,"duplicates":0}`+"\n" {
			t.Errorf("%s: %d %s", name, code, got)
		}
		// SNS delivers it again: nothing new.
		if code, got := post(t, url, "Bearer "+token, snsHeader(m), encode(t, m)); code != 200 || got != `{"accepted":0,"duplicates":1}`+"\n" {
			t.Errorf("%s again: %d %s", name, code, got)
		}
	}
	if got, want := f.suppressions(t), map[string]string{"frank@example.com": "bounce/ses", "grace@example.com": "complaint/ses"}; !reflect.DeepEqual(got, want) {
		t.Errorf("suppressions %v, want %v", got, want)
	}
	if got, want := f.marks(t), map[int]string{6: "hard@2026-07-03T14:20:05Z", 7: "complaint@2026-07-04T08:00:00Z"}; !reflect.DeepEqual(got, want) {
		t.Errorf("deliveries %v, want %v", got, want)
	}
	if got, want := f.consent(t, "c7"), []store.ConsentChange{{Subscribed: false, Source: "complaint", Campaign: "review-request", ChangedAt: f.now}}; !reflect.DeepEqual(got, want) {
		t.Errorf("consent of c7 %+v, want %+v", got, want)
	}
	if got := f.consent(t, "c6"); len(got) != 0 {
		t.Errorf("a bounce changed c6's consent: %+v", got)
	}
	if n := f.bounceCount(t); n != 2 {
		t.Errorf("%d bounce rows, want 2", n)
	}
	// A transient bounce is soft; a delivery notification records nothing.
	m := f.loadSNS(t, "ses-bounce.json")
	m["MessageId"] = "another-sns-message"
	m["Message"] = strings.Replace(m["Message"].(string), `"bounceType":"Permanent"`, `"bounceType":"Transient"`, 1)
	m["Message"] = strings.Replace(m["Message"].(string), "frank@example.com", "ann@example.net", 1)
	if code, got := post(t, url, "Bearer "+token, snsHeader(m), encode(t, m)); code != 200 || got != `{"accepted":1,"duplicates":0}`+"\n" {
		t.Errorf("transient: %d %s", code, got)
	}
	if got := f.suppressions(t); got["ann@example.net"] != "" {
		t.Errorf("one transient bounce suppressed ann")
	}
	m["MessageId"] = "a-delivery"
	m["Message"] = `{"notificationType":"Delivery","mail":{},"delivery":{}}`
	if code, got := post(t, url, "Bearer "+token, snsHeader(m), encode(t, m)); code != 200 || got != `{"accepted":0,"duplicates":0}`+"\n" {
		t.Errorf("delivery notification: %d %s", code, got)
	}
	m["Message"] = `not json`
	if code, got := post(t, url, "Bearer "+token, snsHeader(m), encode(t, m)); code != 400 ||
		got != `{"error":"the SNS Message is not an SES notification: malformed JSON at byte 2: invalid character 'o' in literal null (expecting 'u')"}`+"\n" {
		t.Errorf("not SES: %d %s", code, got)
	}
}

func TestSNSSubscriptionConfirmation(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	sns := newSNSStandIn(t)
	url := f.serve(t, sns.config())
	m := map[string]any{
		"Type": "SubscriptionConfirmation", "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b", "Token": "2336412f37fb687f5d51e6e241d09c805",
		"TopicArn":     "arn:aws:sns:us-east-1:123456789012:ses-feedback",
		"Message":      "You have chosen to subscribe to the topic arn:aws:sns:us-east-1:123456789012:ses-feedback.\nTo confirm the subscription, visit the SubscribeURL included in this message.",
		"SubscribeURL": sns.srv.URL + "/confirm?Action=ConfirmSubscription&TopicArn=arn:aws:sns:us-east-1:123456789012:ses-feedback&Token=2336412f37fb687f5d51e6e241d09c805",
		"Timestamp":    "2026-07-04T12:00:00.000Z",
	}
	sns.sign(t, m, "1")
	if code, got := post(t, url, "", snsHeader(m), encode(t, m)); code != 200 || got != `{"confirmed":true}`+"\n" {
		t.Fatalf("confirmation: %d %s", code, got)
	}
	if got := sns.confirmed.Load(); got != "2336412f37fb687f5d51e6e241d09c805" {
		t.Errorf("SubscribeURL fetched with token %v", got)
	}
	// A SubscribeURL elsewhere is not fetched, signature or not.
	sns.confirmed.Store("")
	m["SubscribeURL"] = "http://" + sns.host() + "/confirm?Token=x"
	sns.sign(t, m, "1")
	if code, got := post(t, url, "", snsHeader(m), encode(t, m)); code != 422 ||
		got != `{"error":"SubscribeURL: \"http://`+sns.host()+`/confirm?Token=x\" is not an https URL on sns.<region>.amazonaws.com"}`+"\n" {
		t.Errorf("plain http SubscribeURL: %d %s", code, got)
	}
	if got := sns.confirmed.Load(); got != "" {
		t.Errorf("a refused SubscribeURL was fetched")
	}
	// The default host rule.
	def := f.serve(t, bounce.HandlerConfig{Tokens: []string{token}})
	m["SubscribeURL"] = "https://sns.us-east-1.amazonaws.com.evil.example/confirm"
	if code, got := post(t, def, "Bearer "+token, snsHeader(m), encode(t, m)); code != 422 ||
		got != `{"error":"SubscribeURL: \"https://sns.us-east-1.amazonaws.com.evil.example/confirm\" is not an https URL on sns.<region>.amazonaws.com"}`+"\n" {
		t.Errorf("look-alike host: %d %s", code, got)
	}
}

func TestSNSSignature(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	sns := newSNSStandIn(t)
	url := f.serve(t, sns.config())

	// Version 1 (SHA1) and 2 (SHA256), each valid.
	for i, name := range []string{"ses-bounce.json", "ses-complaint.json"} {
		m := f.loadSNS(t, name)
		sns.sign(t, m, []string{"1", "2"}[i])
		if code, got := post(t, url, "", snsHeader(m), encode(t, m)); code != 200 || got != `{"accepted":1,"duplicates":0}`+"\n" {
			t.Errorf("%s signed with version %d: %d %s", name, i+1, code, got)
		}
	}
	if got := sns.certGets.Load(); got != 1 {
		t.Errorf("certificate fetched %d times, want once (cached)", got)
	}
	if got, want := f.suppressions(t), map[string]string{"frank@example.com": "bounce/ses", "grace@example.com": "complaint/ses"}; !reflect.DeepEqual(got, want) {
		t.Errorf("suppressions %v, want %v", got, want)
	}

	// Forged: a message changed after signing, another key, a certificate
	// from elsewhere, an unknown version.
	forged := func(change func(m map[string]any)) map[string]any {
		m := f.loadSNS(t, "ses-bounce.json")
		m["MessageId"] = "forged-" + t.Name()
		m["Message"] = strings.Replace(m["Message"].(string), "frank@example.com", "ann@example.net", 1)
		sns.sign(t, m, "2")
		change(m)
		return m
	}
	other := newSNSStandIn(t)
	for _, tt := range []struct {
		name string
		m    map[string]any
		want string
	}{
		{"changed", forged(func(m map[string]any) { m["Message"] = strings.Replace(m["Message"].(string), "ann@", "bob@", 1) }),
			"the signature does not match the message"},
		{"other key", forged(func(m map[string]any) { other.sign(t, m, "2"); m["SigningCertURL"] = sns.certURL }),
			"the signature does not match the message"},
		{"certificate elsewhere", forged(func(m map[string]any) { other.sign(t, m, "2") }),
			`SigningCertURL: "` + other.certURL + `" is not an https URL on sns.<region>.amazonaws.com`},
		{"version", forged(func(m map[string]any) { m["SignatureVersion"] = "3" }), `SignatureVersion "3": want 1 or 2`},
		{"no signature", forged(func(m map[string]any) { delete(m, "Signature") }), "the Signature is not base64"},
	} {
		code, got := post(t, url, "", snsHeader(tt.m), encode(t, tt.m))
		if want := `{"error":"the SNS signature does not verify: ` + strings.ReplaceAll(tt.want, `"`, `\"`) + `"}` + "\n"; code != 401 || got != want {
			t.Errorf("%s:\n got %d %s\nwant 401 %s", tt.name, code, got, want)
		}
	}
	if got := f.suppressions(t); got["ann@example.net"] != "" || got["bob@contoso.example"] != "" {
		t.Errorf("a forged message suppressed: %v", got)
	}
	if n := f.bounceCount(t); n != 2 {
		t.Errorf("%d bounce rows, want 2", n)
	}
	// A certificate outside its validity is refused.
	f.now = ts("2027-02-01T00:00:00Z")
	m := forged(func(map[string]any) {})
	if code, got := post(t, url, "", snsHeader(m), encode(t, m)); code != 401 || !strings.Contains(got, "the certificate is not valid at 2027-02-01T00:00:00Z") {
		t.Errorf("expired certificate: %d %s", code, got)
	}
}
