package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/org/deploy-kit/internal/action"
)

// received is what a loopback webhook server was sent.
type received struct {
	mu       sync.Mutex
	requests []*http.Request
	bodies   []string
}

func server(t *testing.T, handle func(w http.ResponseWriter, r *http.Request)) (*httptest.Server, *received) {
	rec := &received{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rec.mu.Lock()
		rec.requests = append(rec.requests, r)
		rec.bodies = append(rec.bodies, string(body))
		rec.mu.Unlock()
		if handle != nil {
			handle(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, rec
}

var failed = Message{Action: "deploy", Stack: "hello", Env: "production", Version: "2.0.0", Status: "rolled-back",
	Title: "deploykit deploy: rolled-back — hello 2.0.0 on production", Text: "#### Hand-off\n- Failing step: **verify**", JobURL: "https://git.example.com/team/hello/actions/runs/7"}

func TestEachFormat(t *testing.T) {
	for _, tc := range []struct {
		format, token string
		check         func(t *testing.T, r *http.Request, body string)
	}{
		{"json", "", func(t *testing.T, r *http.Request, body string) {
			assert.Equal(t, http.MethodPost, r.Method)
			assert.Equal(t, "application/json", r.Header.Get("Content-Type"))
			var got Message
			require.NoError(t, json.Unmarshal([]byte(body), &got))
			assert.Equal(t, failed, got)
		}},
		{"slack", "", func(t *testing.T, r *http.Request, body string) {
			assert.Equal(t, http.MethodPost, r.Method)
			assert.JSONEq(t, `{"text": "*deploykit deploy: rolled-back — hello 2.0.0 on production*\n#### Hand-off\n- Failing step: **verify**"}`, body)
		}},
		{"matrix", "syt_room_token", func(t *testing.T, r *http.Request, body string) {
			assert.Equal(t, http.MethodPut, r.Method)
			assert.Regexp(t, `^/_matrix/client/v3/rooms/!room:example.org/send/m.room.message/deploykit-[0-9a-f]{16}$`, r.URL.Path)
			assert.Equal(t, "Bearer syt_room_token", r.Header.Get("Authorization"))
			assert.JSONEq(t, `{"msgtype": "m.text", "body": "deploykit deploy: rolled-back — hello 2.0.0 on production\n\n#### Hand-off\n- Failing step: **verify**"}`, body)
		}},
		{"ntfy", "tk_topic", func(t *testing.T, r *http.Request, body string) {
			assert.Equal(t, http.MethodPost, r.Method)
			assert.Equal(t, "/deploys", r.URL.Path)
			assert.Equal(t, "deploykit deploy: rolled-back - hello 2.0.0 on production", r.Header.Get("Title"))
			assert.Equal(t, "warning", r.Header.Get("Tags"))
			assert.Equal(t, "high", r.Header.Get("Priority"))
			assert.Equal(t, failed.JobURL, r.Header.Get("Click"))
			assert.Equal(t, "Bearer tk_topic", r.Header.Get("Authorization"))
			assert.Equal(t, failed.Text, body)
		}},
	} {
		t.Run(tc.format, func(t *testing.T) {
			srv, rec := server(t, nil)
			path := map[string]string{"matrix": "/_matrix/client/v3/rooms/!room:example.org/send/m.room.message", "ntfy": "/deploys"}[tc.format]
			require.NoError(t, Send(context.Background(), &Webhook{URL: srv.URL + path, Format: tc.format, Token: tc.token, Timeout: time.Second}, failed))
			require.Len(t, rec.requests, 1)
			tc.check(t, rec.requests[0], rec.bodies[0])
		})
	}
}

func TestAServerThatFailsOrHangsCostsBoundedTime(t *testing.T) {
	defer func(p time.Duration) { retryPause = p }(retryPause)
	retryPause = 10 * time.Millisecond // the pauses' length is not what is tested
	srv, rec := server(t, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusInternalServerError) })
	err := Send(context.Background(), &Webhook{URL: srv.URL, Format: "json", Timeout: time.Second}, failed)
	require.Error(t, err)
	assert.Equal(t, "after 3 attempt(s): HTTP 500 Internal Server Error", err.Error())
	assert.Len(t, rec.requests, 3, "a 5xx is retried, 3 attempts in all")

	// A server that never answers: each attempt ends at the webhook's timeout.
	release := make(chan struct{})
	var mu sync.Mutex
	hung := 0
	hang, _ := server(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hung++
		mu.Unlock()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release)
	err = Send(context.Background(), &Webhook{URL: hang.URL + "/secret-token-in-path", Format: "slack", Timeout: 200 * time.Millisecond}, failed)
	require.Error(t, err)
	assert.Equal(t, "after 3 attempt(s): ", err.Error()[:len("after 3 attempt(s): ")])
	assert.Contains(t, err.Error(), "context deadline exceeded", "each attempt ended by its timeout")
	assert.NotContains(t, err.Error(), "secret-token-in-path", "the URL may hold a token")
	mu.Lock()
	assert.Equal(t, 3, hung)
	mu.Unlock()

	gone, rec := server(t, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNotFound) })
	err = Send(context.Background(), &Webhook{URL: gone.URL, Format: "json", Timeout: time.Second}, failed)
	assert.EqualError(t, err, "after 1 attempt(s): HTTP 404 Not Found")
	assert.Len(t, rec.requests, 1, "a 4xx is final")
}

func TestInputs(t *testing.T) {
	spec := action.Spec{Name: "demo", Inputs: Inputs}
	parse := func(args ...string) (*Webhook, error) {
		in, err := action.ParseInputs(&spec, args, func(string) string { return "" }, nil)
		require.NoError(t, err)
		var tgt Webhook
		in.Decode(&tgt)
		return tgt.Checked()
	}
	tgt, err := parse()
	require.NoError(t, err)
	assert.Nil(t, tgt, "no notify-url: no notification")
	assert.False(t, tgt.Wants(false))

	_, err = parse("--notify-url", "ftp://hooks.example.com/t0ken")
	assert.EqualError(t, err, "input notify-url: not an http or https URL (the value is not shown: it may hold a token)")
	assert.Equal(t, action.ExitUsage, action.ExitCode(err))
	_, err = parse("--notify-url", "https://matrix.example.org/x", "--notify-format", "matrix")
	assert.EqualError(t, err, "input notify-token is required with notify-format matrix (the room's access token)")

	tgt, err = parse("--notify-url", "https://hooks.example.com/x")
	require.NoError(t, err)
	assert.True(t, tgt.Wants(false))
	assert.False(t, tgt.Wants(true))
	tgt.On = "success"
	assert.True(t, tgt.Wants(true))
	assert.False(t, tgt.Wants(false))
	tgt.On = "always"
	assert.True(t, tgt.Wants(true) && tgt.Wants(false))
	assert.True(t, strings.HasPrefix(tgt.URL, "https://"))
}

// TestRedirectsAreNotFollowed (defects audit, item 5): a 302 would turn the POST
// into a bodiless GET that looks delivered; a 307 would resend the body and the
// bearer token to the new address. Neither is followed: a 3xx is a failed
// notification that names where it pointed, tried once.
func TestRedirectsAreNotFollowed(t *testing.T) {
	elsewhere, got := server(t, nil)
	for _, code := range []int{http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		srv, rec := server(t, func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, elsewhere.URL+"/steal", code)
		})
		err := Send(context.Background(), &Webhook{URL: srv.URL, Format: "json", Token: "tok-123", Timeout: time.Second}, failed)
		require.Error(t, err)
		assert.Equal(t, fmt.Sprintf("after 1 attempt(s): HTTP %d %s, redirecting to %q: a notification follows no redirect (it would resend the message, and the token, elsewhere, or drop the body); set notify-url to the address that takes it",
			code, http.StatusText(code), elsewhere.URL+"/steal"), err.Error())
		assert.Len(t, rec.requests, 1)
	}
	assert.Empty(t, got.requests, "nothing reached the address redirected to")
}
