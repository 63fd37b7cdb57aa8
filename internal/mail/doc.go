// Package mail renders email templates and sends messages, over SMTP or to
// a file outbox. It is the only package that imports go-mail.
//
// Templates: a template NAME is templates/NAME.subject.tmpl (text, one
// line), NAME.html.tmpl (html/template, so customer data is escaped) and
// optionally NAME.txt.tmpl. Without a txt file the email is HTML only: a
// crude tag-stripped text part would read worse than none. Templates are
// executed with *Data and missingkey=error; attr reads an attribute with a
// fallback instead.
//
// Sending: NewSender returns a pool of long-lived SMTP connections that
// carry one message after another (SMTP_URL set) or the file outbox.
// go-mail connects, says EHLO and does STARTTLS and AUTH; the package
// renders messages itself (7bit, 8bit when the server offers 8BITMIME, else
// quoted-printable) and runs each mail transaction on go-mail's
// connection, pipelined when the server offers PIPELINING. Every
// message carries the caller's stable Message-ID, so a resend after a crash
// is recognisable as the same email. Errors are *SendError, classified as
// temporary (4xx, network, timeouts) or permanent (5xx, bad addresses); see
// IsPermanent.
//
// DKIM: with Config.DKIM set (LoadDKIM), both transports sign every
// message (RSA-SHA256, relaxed/relaxed, d= the From domain) with
// github.com/emersion/go-msgauth/dkim over the bytes sent.
package mail
