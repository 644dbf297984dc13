// Package notify tells a person how a deploy, rollback or backup went: one POST
// (PUT for Matrix) to a webhook, in the format the receiving service reads
// (docs/notifications.md). It never changes the job's result: the caller reports
// what happened in its summary.
package notify

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/org/deploy-kit/internal/action"
)

// Inputs are the notification inputs of deploy, rollback and backup.
var Inputs = []action.Input{
	{Name: "notify-url", Secret: true, Description: "Webhook to tell about the outcome (see notify-format); empty sends nothing."},
	{Name: "notify-on", Kind: action.Enum, Enum: []string{"failure", "success", "always"}, Default: "failure", Description: "When to notify: failure (also cancelled or rolled back), success, or always."},
	{Name: "notify-format", Kind: action.Enum, Enum: []string{"json", "slack", "matrix", "ntfy"}, Default: "json", Description: "json (the kit's own fields), slack (Slack, Mattermost, Rocket.Chat, Discord's /slack URL), matrix (notify-url is the room's send/m.room.message URL, notify-token its access token), ntfy (a topic URL)."},
	{Name: "notify-token", Secret: true, Description: "Bearer token for notify-url (matrix needs one; ntfy takes one for a protected topic)."},
	{Name: "notify-timeout", Kind: action.Duration, Default: "10s", Description: "Timeout of each of the 3 attempts to notify."},
}

// Webhook is where and how to notify; its fields are the notification inputs.
type Webhook struct {
	URL     string        `input:"notify-url"`
	Format  string        `input:"notify-format"`
	Token   string        `input:"notify-token"`
	On      string        `input:"notify-on"`
	Timeout time.Duration `input:"notify-timeout"`
}

// Checked checks the webhook read from the inputs; nil when notify-url is empty.
func (t Webhook) Checked() (*Webhook, error) {
	if t.URL == "" {
		return nil, nil
	}
	u, err := url.Parse(t.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, action.Usagef("input notify-url: not an http or https URL (the value is not shown: it may hold a token)")
	}
	if t.Format == "matrix" && t.Token == "" {
		return nil, action.Usagef("input notify-token is required with notify-format matrix (the room's access token)")
	}
	if t.Timeout <= 0 {
		t.Timeout = 10 * time.Second
	}
	return &t, nil
}

// Wants reports whether an outcome is to be notified: ok is a success.
func (t *Webhook) Wants(ok bool) bool {
	return t != nil && (t.On == "always" || (t.On == "success") == ok)
}

// Message is what to tell.
type Message struct {
	Action  string `json:"action"` // deploy, rollback, backup
	Stack   string `json:"stack,omitempty"`
	Env     string `json:"environment,omitempty"`
	Version string `json:"version,omitempty"`
	Status  string `json:"status"`
	OK      bool   `json:"ok"`
	Title   string `json:"title"`
	Text    string `json:"text"` // Markdown: what happened, the hand-off on failure
	JobURL  string `json:"job_url,omitempty"`
}

// attempts is how many times a notification is tried; a 4xx answer is final.
const attempts = 3

// Send delivers m, retrying a network error, a 5xx or a 429 with a pause of 1 s
// then 2 s; each attempt has the webhook's timeout.
func Send(ctx context.Context, t *Webhook, m Message) error {
	txn := txnID()
	for attempt := 1; ; attempt++ {
		retry, err := t.send(ctx, m, txn)
		if err == nil {
			return nil
		}
		if !retry || attempt == attempts {
			return fmt.Errorf("after %d attempt(s): %w", attempt, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("after %d attempt(s): %w", attempt, errors.Join(err, ctx.Err()))
		case <-time.After(time.Duration(attempt) * retryPause):
		}
	}
}

// retryPause is the first pause between attempts; the second is twice as long.
var retryPause = time.Second

// client follows no redirect: a 302 would turn the POST into a bodiless GET that
// looks delivered, a 307 resend the body and the Authorization header to the
// new address. A 3xx is a failed notification.
var client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func (t *Webhook) send(ctx context.Context, m Message, txn string) (retry bool, err error) {
	method, target, body, header := http.MethodPost, t.URL, []byte(nil), http.Header{}
	header.Set("Content-Type", "application/json")
	switch t.Format {
	case "slack":
		body, err = json.Marshal(map[string]string{"text": "*" + m.Title + "*\n" + m.Text})
	case "matrix":
		method, target = http.MethodPut, strings.TrimRight(t.URL, "/")+"/"+txn
		body, err = json.Marshal(map[string]string{"msgtype": "m.text", "body": m.Title + "\n\n" + m.Text})
	case "ntfy":
		header.Set("Content-Type", "text/plain; charset=utf-8")
		header.Set("Title", asciiHeader(m.Title))
		if m.OK {
			header.Set("Tags", "white_check_mark")
		} else {
			header.Set("Tags", "warning")
			header.Set("Priority", "high")
		}
		if m.JobURL != "" {
			header.Set("Click", m.JobURL)
		}
		body = []byte(m.Text)
	default:
		body, err = json.Marshal(m)
	}
	if err != nil {
		return false, err
	}
	if t.Token != "" {
		header.Set("Authorization", "Bearer "+t.Token)
	}
	ctx, cancel := context.WithTimeout(ctx, t.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, target, bytes.NewReader(body))
	if err != nil {
		return false, errors.New("the request could not be made") // the URL may hold a token
	}
	req.Header = header
	resp, err := client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // without the URL, which may hold a token
		}
		return true, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		return false, fmt.Errorf("HTTP %s, redirecting to %q: a notification follows no redirect (it would resend the message, and the token, elsewhere, or drop the body); set notify-url to the address that takes it", resp.Status, action.Name(resp.Header.Get("Location")))
	}
	if resp.StatusCode >= 300 {
		return resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests, fmt.Errorf("HTTP %s", resp.Status)
	}
	return false, nil
}

// txnID is a Matrix transaction ID: one per message, kept across its attempts, so
// a retried PUT is not delivered twice.
func txnID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return "deploykit-" + hex.EncodeToString(b)
}

// asciiHeader keeps a header value to printable ASCII (ntfy reads titles from it).
func asciiHeader(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '—':
			return '-'
		case r < 0x20 || r > 0x7e:
			return -1
		}
		return r
	}, s)
}

// Tell sends m for a run of what (deploy, rollback, backup) within a minute,
// masking its title and text like every other output, and returns the summary's
// line: "Notified (format)." or why it failed — a failure is a warning in the
// log, never a different result.
func Tell(ctx context.Context, a *action.Context, t *Webhook, m Message, what string) string {
	m.Title, m.Text = a.MaskString(m.Title), a.MaskString(m.Text)
	send, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	if err := Send(send, t, m); err != nil {
		a.Warningf("notifying (%s) failed: %v; the %s's result is unchanged", t.Format, err, what)
		return fmt.Sprintf("Notification (%s) failed: %v; the result above is unchanged.", t.Format, a.MaskString(err.Error()))
	}
	a.Logf("notified (%s)", t.Format)
	return fmt.Sprintf("Notified (%s).", t.Format)
}
