package restore

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/org/deploy-kit/internal/action"
	"github.com/org/deploy-kit/internal/history"
	"github.com/org/deploy-kit/internal/testenv"
	"github.com/org/deploy-kit/internal/testenv/enginefake"
)

// Run in process, without Docker (SQLite): what a restore records, outputs
// and reports, and a dry run's plan. No engine is reachable: the repair's
// container sweep warns.
func TestRunRecordsOutputsAndReports(t *testing.T) {
	db, file, _ := sqliteWithBackup(t)
	environ, output, summary := testenv.Runner{RunID: "5"}.Env(t, "DOCKER_HOST=unix://"+filepath.Join(t.TempDir(), "no-engine.sock"))
	var log bytes.Buffer
	a := action.NewContext(environ, &log)
	a.Spec = &Spec
	o := sqliteOptions(t, db, file)

	// A dry run: the plan, nothing changed, nothing recorded.
	o.DryRun = true
	before, err := os.ReadFile(db)
	require.NoError(t, err)
	require.NoError(t, Run(context.Background(), a, o), log.String())
	data, err := os.ReadFile(summary)
	require.NoError(t, err)
	assert.Contains(t, string(data), "### deploykit restore: dry run — "+filepath.Base(file)+" into SQLite database "+db)
	assert.Contains(t, string(data), "Would: take a safety backup of SQLite database "+db)
	after, err := os.ReadFile(db)
	require.NoError(t, err)
	assert.Equal(t, before, after)
	assert.NoFileExists(t, o.HistoryFile)
	require.NoError(t, os.Truncate(summary, 0))

	o.DryRun = false
	require.NoError(t, Run(context.Background(), a, o), log.String())
	entries, err := history.File{Path: o.HistoryFile}.Read()
	require.NoError(t, err)
	require.Len(t, entries, 1)
	e := entries[0]
	assert.Equal(t, []string{history.ActionRestore, filepath.Base(file), history.StatusSuccess}, []string{e.Action, e.Version, e.Status})
	assert.Contains(t, e.Notes, "job https://git.example.com/team/app/actions/runs/5")
	data, err = os.ReadFile(summary)
	require.NoError(t, err)
	s := string(data)
	assert.Contains(t, s, "### deploykit restore: success — "+filepath.Base(file))
	assert.Contains(t, s, "| backup | "+file+" |")
	assert.Contains(t, s, "| notes | 2 | 2 |")
	assert.Contains(t, s, "Checks of the backup before anything changed:")
	out, err := os.ReadFile(output)
	require.NoError(t, err)
	assert.Contains(t, string(out), "safety-backup<<")
	assert.Contains(t, string(out), file)
}

// TestRunChecksAndNotifies: after the restore the health and smoke checks run
// against the app (here a loopback server); when they pass the restore is a
// success, when the app answers wrong it is a failure that names the check
// and the safety backup holding the data from before, recorded as failed in
// the history and sent to notify-url either way (notify-on: always).
func TestRunChecksAndNotifies(t *testing.T) {
	var healthy atomic.Bool
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !healthy.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	defer app.Close()
	hook, sent := testenv.Webhook(t, http.StatusOK)

	db, file, _ := sqliteWithBackup(t)
	environ, _, summary := testenv.Runner{RunID: "6"}.Env(t, "DOCKER_HOST=unix://"+filepath.Join(t.TempDir(), "no-engine.sock"))
	var log bytes.Buffer
	a := action.NewContext(environ, &log)
	a.Spec = &Spec
	o := sqliteOptions(t, db, file)
	o.HealthURL, o.HealthAttempts, o.HealthInitialDelay, o.HealthMaxDelay = app.URL+"/health", 1, time.Millisecond, time.Millisecond
	o.SmokeBaseURL, o.SmokeChecks = app.URL, []string{"/version=200"}
	o.Notify.URL, o.Notify.On = hook, "always"

	healthy.Store(true)
	require.NoError(t, Run(context.Background(), a, o), log.String())
	data, err := os.ReadFile(summary)
	require.NoError(t, err)
	assert.Contains(t, string(data), "health and smoke checks passed")
	require.NoError(t, os.Truncate(summary, 0))

	healthy.Store(false)
	o.SafetyDir = t.TempDir() // safety backups are named by the second: this one has a directory of its own
	err = Run(context.Background(), a, o)
	require.Error(t, err)
	assert.Equal(t, action.ExitFailed, action.ExitCode(err))
	assert.Contains(t, err.Error(), "restored, but ")
	assert.Contains(t, err.Error(), "; the data from before is in the safety backup "+o.SafetyDir+"/pre-restore-")
	entries, rerr := history.File{Path: o.HistoryFile}.Read()
	require.NoError(t, rerr)
	require.Len(t, entries, 2)
	assert.Equal(t, []string{history.StatusSuccess, history.StatusFailed}, []string{entries[0].Status, entries[1].Status})
	data, err = os.ReadFile(summary)
	require.NoError(t, err)
	assert.Contains(t, string(data), "### deploykit restore: failed — "+filepath.Base(file))
	got := sent()
	require.Len(t, got, 2, "one notification per restore")
	assert.Contains(t, got[0], `"status":"success"`)
	assert.Contains(t, got[1], `"status":"failed"`)
}

// TestRunStopsAndStartsTheServices: with stop-services, the restore finds the
// services' running containers in the project, names them in the lock file,
// stops them (with their grace) before the restore and starts them again
// after; the engine is answered in process (enginefake). A service with no
// container in the project is refused before anything.
func TestRunStopsAndStartsTheServices(t *testing.T) {
	d := enginefake.New(t)
	d.On("GET", "/containers/json", func(w http.ResponseWriter, r *http.Request) {
		if !strings.Contains(r.URL.Query().Get("filters"), "com.docker.compose.project=shop") {
			enginefake.WriteJSON(w, []container.Summary{}) // nothing a killed run left
			return
		}
		enginefake.WriteJSON(w, []container.Summary{
			{ID: "web1", Names: []string{"/shop-web-1"}, State: "running", Labels: map[string]string{"com.docker.compose.service": "web"}},
			{ID: "worker1", Names: []string{"/shop-worker-1"}, State: "restarting", Labels: map[string]string{"com.docker.compose.service": "worker"}},
			{ID: "web0", Names: []string{"/shop-web-0"}, State: "exited", Labels: map[string]string{"com.docker.compose.service": "web"}},
		})
	})
	d.JSON("GET", "/containers/[a-z0-9]+/json", json.RawMessage(`{"Id":"x","State":{"Running":true}}`))
	d.JSON("GET", "/networks", []network.Summary{})
	d.JSON("GET", "/volumes", volume.ListResponse{})
	d.OK("POST", "/containers/[a-z0-9]+/(stop|start)")

	db, file, _ := sqliteWithBackup(t)
	environ, _, summary := testenv.Runner{RunID: "8"}.Env(t, "DOCKER_HOST="+d.Host)
	var log bytes.Buffer
	a := action.NewContext(environ, &log)
	a.Spec = &Spec
	o := sqliteOptions(t, db, file)
	o.ProjectName, o.StopServices = "shop", []string{"web", "worker"}
	require.NoError(t, Run(context.Background(), a, o), log.String())
	var acted []string
	for _, c := range d.Calls() {
		if strings.HasPrefix(c, "POST ") {
			acted = append(acted, c)
		}
	}
	assert.Equal(t, []string{"POST /containers/web1/stop?t=10", "POST /containers/worker1/stop?t=10", "POST /containers/web1/start", "POST /containers/worker1/start"}, acted,
		"the running and the restarting one stopped, then started; the exited one left alone")
	data, err := os.ReadFile(summary)
	require.NoError(t, err)
	assert.Contains(t, string(data), "stopped shop-web-1, shop-worker-1")
	assert.Contains(t, string(data), "started shop-web-1, shop-worker-1 again")

	o.StopServices = []string{"api"}
	err = Run(context.Background(), a, o)
	require.Error(t, err)
	assert.Equal(t, action.ExitUsage, action.ExitCode(err))
	assert.Contains(t, err.Error(), "input stop-services: service api has no container in project shop")
	o.ProjectName = ""
	err = Run(context.Background(), a, o)
	assert.ErrorContains(t, err, "input stop-services: set project-name too")
}
