package deploy_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/org/deploy-kit/internal/testenv"
	"github.com/org/deploy-kit/internal/testenv/testapp"
)

// TestNotifiesAFailedDeploy: a deploy that fails and rolls back posts its
// hand-off to notify-url; a successful one does not with notify-on failure.
func TestNotifiesAFailedDeploy(t *testing.T) {
	t.Parallel()
	url, bodies := testenv.Webhook(t, http.StatusOK)
	a := testapp.New(t, "1.0.0")
	r := a.Deploy("--notify-url", url)
	require.Equal(t, 0, r.Code, r.Log)
	assert.Empty(t, bodies(), "notify-on failure: nothing for a success")
	assert.NotContains(t, r.Summary, "Notified (")
	assert.NotContains(t, r.Summary, "Notification (")

	a.Release("2.0.0", true)
	r = a.Deploy("--notify-url", url, "--health-attempts", "2")
	require.Equal(t, 1, r.Code, r.Log)
	require.Len(t, bodies(), 1)
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(bodies()[0]), &m))
	assert.Equal(t, "deploy", m["action"])
	assert.Equal(t, "rolled-back", m["status"])
	assert.Equal(t, false, m["ok"])
	assert.Equal(t, "2.0.0", m["version"])
	assert.Equal(t, "deploykit deploy: rolled-back — "+a.Name+" 2.0.0 on production", m["title"])
	assert.Contains(t, m["text"], "#### Hand-off: deploy of 2.0.0 failed at apply")
	assert.Contains(t, m["text"], "- Job: https://git.example.com/team/hello/actions/runs/4242")
	assert.Equal(t, "https://git.example.com/team/hello/actions/runs/4242", m["job_url"])
	assert.Contains(t, r.Summary, "\nNotified (json).\n")
	assert.NotContains(t, bodies()[0], testapp.Secret)
	assert.NotContains(t, r.Log, "t0ken", "notify-url is a secret")
}

// TestAFailingWebhookDoesNotChangeTheResult: a webhook answering 500 is tried
// three times; the deploy still succeeds and its summary says the notification
// failed.
func TestAFailingWebhookDoesNotChangeTheResult(t *testing.T) {
	t.Parallel()
	url, bodies := testenv.Webhook(t, http.StatusInternalServerError)
	a := testapp.New(t, "1.0.0")
	r := a.Deploy("--notify-url", url, "--notify-on", "always", "--notify-format", "slack", "--notify-timeout", "2s")
	require.Equal(t, 0, r.Code, r.Log)
	assert.Equal(t, "success", r.Outputs["status"])
	require.Len(t, bodies(), 3)
	assert.Contains(t, bodies()[0], `"text":"*deploykit deploy: success — `+a.Name+` 1.0.0 on production*\n1.0.0 is live on production.\n"`)
	assert.Contains(t, r.Log, "::warning::notifying (slack) failed: after 3 attempt(s): HTTP 500 Internal Server Error; the deploy's result is unchanged")
	assert.Contains(t, r.Summary, "\nNotification (slack) failed: after 3 attempt(s): HTTP 500 Internal Server Error; the result above is unchanged.\n")

	// Bad notification input is refused before anything changes.
	r = a.Deploy("--notify-url", "hooks.example.com/t0ken")
	assert.Equal(t, 2, r.Code, r.Log)
	assert.Contains(t, r.Log, "::error::input notify-url: not an http or https URL (the value is not shown: it may hold a token)")
	assert.NotContains(t, r.Log, "t0ken")
}
