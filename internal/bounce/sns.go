package bounce

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"
)

// snsMessage is the envelope SNS posts.
type snsMessage struct {
	Type             string
	MessageID        string `json:"MessageId"`
	Token            string
	TopicArn         string
	Subject          *string
	Message          string
	SubscribeURL     string
	Timestamp        string
	SignatureVersion string
	Signature        string
	SigningCertURL   string
}

// isSNS reports whether a request is an SNS message: by its header, or by
// a body that has SNS's own keys (a proxy may drop the header).
func isSNS(r *http.Request, body []byte) bool {
	if r.Header.Get("x-amz-sns-message-type") != "" {
		return true
	}
	var keys map[string]json.RawMessage
	if json.Unmarshal(body, &keys) != nil {
		return false
	}
	_, typ := keys["Type"]
	_, topic := keys["TopicArn"]
	return typ && topic
}

var snsHostPattern = regexp.MustCompile(`^sns\.[a-z0-9-]+\.amazonaws\.com$`)

// snsHost is the default SNSHostAllowed: sns.<region>.amazonaws.com, on
// the default port.
func snsHost(host string) bool { return snsHostPattern.MatchString(host) }

// allowedURL checks that raw is an https URL on an allowed host.
func allowedURL(raw string, hostAllowed func(string) bool) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" || u.User != nil || !hostAllowed(u.Host) {
		return nil, fmt.Errorf("%q is not an https URL on sns.<region>.amazonaws.com", raw)
	}
	return u, nil
}

func (h *webhook) sns(w http.ResponseWriter, r *http.Request, body []byte) {
	var m snsMessage
	if err := json.Unmarshal(body, &m); err != nil {
		h.rec.metrics.BounceRejected(SourceSES, "invalid")
		writeError(w, http.StatusBadRequest, "SNS message: "+jsonError(err))
		return
	}
	if m.Type == "" || m.MessageID == "" {
		h.rec.metrics.BounceRejected(SourceSES, "invalid")
		writeError(w, http.StatusBadRequest, "SNS message: Type and MessageId are required")
		return
	}
	if header := r.Header.Get("x-amz-sns-message-type"); header != "" && header != m.Type {
		h.rec.metrics.BounceRejected(SourceSES, "invalid")
		writeError(w, http.StatusBadRequest, fmt.Sprintf("SNS message: Type %q differs from the x-amz-sns-message-type header %q", m.Type, header))
		return
	}
	// A token is enough; without one, the signature must verify.
	if !h.tokenOK(r) {
		if !h.cfg.SNSVerify {
			h.unauthorized(w, SourceSES)
			return
		}
		if err := h.verify(r.Context(), &m); err != nil {
			h.rec.metrics.BounceRejected(SourceSES, "signature")
			h.log.Warn("SNS message refused", "message_id", m.MessageID, "topic", m.TopicArn, "err", err)
			writeError(w, http.StatusUnauthorized, "the SNS signature does not verify: "+err.Error())
			return
		}
	}
	switch m.Type {
	case "SubscriptionConfirmation":
		h.confirm(w, r, &m)
	case "UnsubscribeConfirmation":
		h.log.Warn("SNS topic unsubscribed this endpoint", "topic", m.TopicArn)
		writeJSON(w, http.StatusOK, map[string]int{"accepted": 0, "duplicates": 0})
	case "Notification":
		notices, err := sesNotices(&m)
		if err != nil {
			h.rec.metrics.BounceRejected(SourceSES, "unparseable")
			h.log.Warn("SES notification not understood", "message_id", m.MessageID, "err", err)
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		h.record(w, r, SourceSES, notices)
	default:
		h.rec.metrics.BounceRejected(SourceSES, "invalid")
		writeError(w, http.StatusBadRequest, fmt.Sprintf("SNS message: unknown Type %q", m.Type))
	}
}

// confirm confirms a subscription by fetching its SubscribeURL, which
// must be on SNS's own host.
func (h *webhook) confirm(w http.ResponseWriter, r *http.Request, m *snsMessage) {
	u, err := allowedURL(m.SubscribeURL, h.cfg.SNSHostAllowed)
	if err != nil {
		h.rec.metrics.BounceRejected(SourceSES, "invalid")
		writeError(w, http.StatusUnprocessableEntity, "SubscribeURL: "+err.Error())
		return
	}
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, u.String(), nil)
	if err == nil {
		var resp *http.Response
		if resp, err = h.cfg.Client.Do(req); err == nil {
			io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("answered %s", resp.Status)
			}
		}
	}
	if err != nil {
		h.rec.metrics.BounceRejected(SourceSES, "failed")
		h.log.Error("SNS subscription not confirmed", "topic", m.TopicArn, "err", err)
		writeError(w, http.StatusBadGateway, "confirming the subscription failed; SNS will send the confirmation again")
		return
	}
	h.log.Info("SNS subscription confirmed", "topic", m.TopicArn)
	writeJSON(w, http.StatusOK, map[string]bool{"confirmed": true})
}

// stringToSign is what SNS signs: the message's fields, by name, in
// alphabetical order.
func (m *snsMessage) stringToSign() (string, error) {
	var b strings.Builder
	add := func(k, v string) { b.WriteString(k + "\n" + v + "\n") }
	switch m.Type {
	case "Notification":
		add("Message", m.Message)
		add("MessageId", m.MessageID)
		if m.Subject != nil {
			add("Subject", *m.Subject)
		}
		add("Timestamp", m.Timestamp)
		add("TopicArn", m.TopicArn)
		add("Type", m.Type)
	case "SubscriptionConfirmation", "UnsubscribeConfirmation":
		add("Message", m.Message)
		add("MessageId", m.MessageID)
		add("SubscribeURL", m.SubscribeURL)
		add("Timestamp", m.Timestamp)
		add("Token", m.Token)
		add("TopicArn", m.TopicArn)
		add("Type", m.Type)
	default:
		return "", fmt.Errorf("unknown Type %q", m.Type)
	}
	return b.String(), nil
}

// verify checks the message's signature with the certificate it names.
func (h *webhook) verify(ctx context.Context, m *snsMessage) error {
	var hash crypto.Hash
	switch m.SignatureVersion {
	case "1":
		hash = crypto.SHA1
	case "2":
		hash = crypto.SHA256
	default:
		return fmt.Errorf("SignatureVersion %q: want 1 or 2", m.SignatureVersion)
	}
	sig, err := base64.StdEncoding.DecodeString(m.Signature)
	if err != nil || len(sig) == 0 {
		return errors.New("the Signature is not base64")
	}
	text, err := m.stringToSign()
	if err != nil {
		return err
	}
	key, err := h.certs.key(ctx, m.SigningCertURL, h.cfg.Now())
	if err != nil {
		return err
	}
	var digest []byte
	if hash == crypto.SHA1 {
		d := sha1.Sum([]byte(text))
		digest = d[:]
	} else {
		d := sha256.Sum256([]byte(text))
		digest = d[:]
	}
	if err := rsa.VerifyPKCS1v15(key, hash, digest, sig); err != nil {
		return errors.New("the signature does not match the message")
	}
	return nil
}

// certCache fetches signing certificates and keeps their keys.
type certCache struct {
	client      *http.Client
	hostAllowed func(string) bool
	mu          sync.Mutex
	keys        map[string]*x509.Certificate
}

// maxCerts bounds the cache: SNS uses a handful of certificates.
const maxCerts = 32

func newCertCache(client *http.Client, hostAllowed func(string) bool) *certCache {
	return &certCache{client: client, hostAllowed: hostAllowed, keys: map[string]*x509.Certificate{}}
}

// key returns the RSA key of the certificate at raw, valid at now.
func (c *certCache) key(ctx context.Context, raw string, now time.Time) (*rsa.PublicKey, error) {
	u, err := allowedURL(raw, c.hostAllowed)
	if err != nil {
		return nil, fmt.Errorf("SigningCertURL: %w", err)
	}
	if !strings.HasSuffix(u.Path, ".pem") {
		return nil, fmt.Errorf("SigningCertURL %q: not a .pem file", raw)
	}
	c.mu.Lock()
	cert := c.keys[raw]
	c.mu.Unlock()
	if cert == nil {
		if cert, err = c.fetch(ctx, u); err != nil {
			return nil, fmt.Errorf("SigningCertURL %q: %w", raw, err)
		}
		c.mu.Lock()
		if len(c.keys) >= maxCerts {
			clear(c.keys)
		}
		c.keys[raw] = cert
		c.mu.Unlock()
	}
	if now.Before(cert.NotBefore) || now.After(cert.NotAfter) {
		return nil, fmt.Errorf("SigningCertURL %q: the certificate is not valid at %s", raw, now.UTC().Format(time.RFC3339))
	}
	key, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("SigningCertURL %q: not an RSA certificate", raw)
	}
	return key, nil
}

func (c *certCache) fetch(ctx context.Context, u *url.URL) (*x509.Certificate, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("answered %s", resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(bytes.TrimSpace(body))
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("not a PEM certificate")
	}
	return x509.ParseCertificate(block.Bytes)
}

// sesNotification is the part of an SES notification read here, as
// notifications (notificationType) and event publishing (eventType) send
// it.
type sesNotification struct {
	NotificationType string `json:"notificationType"`
	EventType        string `json:"eventType"`
	Bounce           *struct {
		BounceType        string         `json:"bounceType"`
		BounceSubType     string         `json:"bounceSubType"`
		BouncedRecipients []sesRecipient `json:"bouncedRecipients"`
		Timestamp         string         `json:"timestamp"`
	} `json:"bounce"`
	Complaint *struct {
		ComplainedRecipients  []sesRecipient `json:"complainedRecipients"`
		Timestamp             string         `json:"timestamp"`
		ComplaintFeedbackType string         `json:"complaintFeedbackType"`
	} `json:"complaint"`
	Mail struct {
		Headers []struct {
			Name  string `json:"name"`
			Value string `json:"value"`
		} `json:"headers"`
		CommonHeaders struct {
			MessageID string `json:"messageId"`
		} `json:"commonHeaders"`
	} `json:"mail"`
}

type sesRecipient struct {
	EmailAddress   string `json:"emailAddress"`
	Status         string `json:"status"`
	DiagnosticCode string `json:"diagnosticCode"`
}

// sesNotices reads the notices of an SES notification: one per bounced or
// complained recipient; none for other notifications (deliveries, sends).
func sesNotices(m *snsMessage) ([]Notice, error) {
	var n sesNotification
	if err := json.Unmarshal([]byte(m.Message), &n); err != nil {
		return nil, fmt.Errorf("the SNS Message is not an SES notification: %s", jsonError(err))
	}
	typ := n.NotificationType
	if typ == "" {
		typ = n.EventType
	}
	// Our Message-ID, as the email carried it; SES's own id is another.
	var msgID string
	for _, h := range n.Mail.Headers {
		if strings.EqualFold(h.Name, "Message-ID") {
			msgID = normalizeMessageID(h.Value)
		}
	}
	if msgID == "" {
		msgID = normalizeMessageID(n.Mail.CommonHeaders.MessageID)
	}
	when := func(ts string) time.Time {
		for _, s := range []string{ts, m.Timestamp} {
			if t, err := time.Parse(time.RFC3339, s); err == nil {
				return t.UTC()
			}
		}
		return time.Time{}
	}
	var out []Notice
	add := func(kind, email, reason string, at time.Time) error {
		email = strings.ToLower(strings.TrimSpace(email))
		if email == "" {
			return fmt.Errorf("SES %s notification: a recipient without emailAddress", strings.ToLower(typ))
		}
		if at.IsZero() {
			return fmt.Errorf("SES %s notification: no timestamp", strings.ToLower(typ))
		}
		out = append(out, Notice{Key: m.MessageID + ":" + email, Kind: kind, Email: email, MessageID: msgID, Reason: reason, OccurredAt: at})
		return nil
	}
	switch typ {
	case "Bounce":
		if n.Bounce == nil {
			return nil, errors.New("SES bounce notification without bounce")
		}
		kind := Soft // Transient, Undetermined
		if n.Bounce.BounceType == "Permanent" {
			kind = Hard
		}
		for _, r := range n.Bounce.BouncedRecipients {
			reason := strings.TrimSpace(strings.Join([]string{n.Bounce.BounceType, n.Bounce.BounceSubType, r.Status, r.DiagnosticCode}, " "))
			if err := add(kind, r.EmailAddress, reason, when(n.Bounce.Timestamp)); err != nil {
				return nil, err
			}
		}
	case "Complaint":
		if n.Complaint == nil {
			return nil, errors.New("SES complaint notification without complaint")
		}
		reason := n.Complaint.ComplaintFeedbackType
		if reason == "" {
			reason = "complaint"
		}
		for _, r := range n.Complaint.ComplainedRecipients {
			if err := add(Complaint, r.EmailAddress, reason, when(n.Complaint.Timestamp)); err != nil {
				return nil, err
			}
		}
	case "":
		return nil, errors.New("the SNS Message is not an SES notification: no notificationType")
	}
	return out, nil
}
