package history

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fixture is a month of one stack on two environments, with the answers worked
// out by hand in TestStatsFromAFixture.
const fixture = `2026-10-01T10:00:00Z | app | production | deploy | 0.9.0 | success | sha=old
2026-11-02T10:00:00Z | app | production | deploy | 1.0.0 | success | sha=aaa
2026-11-05T10:00:00Z | app | production | deploy | 1.1.0 | failed | sha=bbb
2026-11-05T10:00:00Z | app | production | rollback | 1.0.0 | success | from 1.1.0; sha=aaa
garbage that is not a history line
2026-11-06T09:00:00Z | app | production | deploy | 1.1.1 | success | sha=ccc
2026-11-10T10:00:00Z | app | production | deploy | 1.2.0 | failed | sha=ddd
2026-11-10T10:30:00Z | app | production | deploy | 1.2.1 | success | sha=eee
2026-13-01T10:00:00Z | app | production | deploy | 9.9.9 | success | a bad month

2026-11-20T10:00:00Z | app | production | deploy | 1.3.0 | cancelled | sha=fff
2026-11-28T10:00:00Z | app | production | deploy | 1.4.0 | failed | sha=ggg
2026-11-29T10:00:00Z | app | staging | verified | 1.4.0 | success | sha=ggg
2026-11-29T11:00:00Z | app | staging | deploy | 1.4.0 | success | sha=ggg
`

func TestStatsFromAFixture(t *testing.T) {
	path := filepath.Join(t.TempDir(), "history.log")
	require.NoError(t, os.WriteFile(path, []byte(fixture), 0o644))
	entries, skipped, err := File{Path: path}.ReadCounting()
	require.NoError(t, err)
	assert.Equal(t, 2, skipped, "the garbage line and the bad month; the empty line is no entry")

	commits := map[string]time.Time{
		"aaa": time.Date(2026, 11, 2, 8, 0, 0, 0, time.UTC), // 2 h before its deploy
		"ccc": time.Date(2026, 11, 6, 8, 0, 0, 0, time.UTC), // 1 h
		"ggg": time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC),
	}
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	stats := Compute(entries, now, 30*24*time.Hour, func(sha string) (time.Time, bool) { t, ok := commits[sha]; return t, ok })
	require.Len(t, stats, 2)

	prod := stats[0]
	assert.Equal(t, "production", prod.Env)
	// In the window (from 2026-10-31 12:00): successes 1.0.0, 1.1.1, 1.2.1;
	// failures 1.1.0, 1.2.0, 1.4.0; 1.3.0 was cancelled; 0.9.0 is too old.
	assert.Equal(t, 6, prod.Deploys)
	assert.Equal(t, 3, prod.Succeeded)
	assert.Equal(t, 3, prod.Failed)
	assert.Equal(t, 1, prod.Rollbacks)
	assert.InDelta(t, 3/(30.0/7), prod.PerWeek, 1e-9)
	assert.InDelta(t, 0.5, prod.ChangeFailureRate, 1e-9)
	// 1.1.0 was restored by the rollback at the same second, 1.2.0 by 1.2.1 after
	// 30 minutes: a mean of 15 minutes; 1.4.0 has not been restored.
	assert.Equal(t, 2, prod.Restored)
	assert.Equal(t, 1, prod.Unrestored)
	assert.Equal(t, 15*time.Minute, prod.TimeToRestore)
	// Commit times are known for aaa (2 h) and ccc (1 h): median 1 h 30 min.
	assert.Equal(t, 2, prod.LeadTimes)
	assert.Equal(t, 90*time.Minute, prod.LeadTime)
	assert.Equal(t, "Last 30 days on production: 6 deploy(s), 0.7 a week, 50% failed, time to restore 15m0s, 1 failure(s) not restored yet, lead time 1h30m0s.", prod.Trend())

	staging := stats[1]
	assert.Equal(t, "staging", staging.Env)
	assert.Equal(t, 1, staging.Deploys)
	assert.Zero(t, staging.ChangeFailureRate)
	assert.Equal(t, time.Hour, staging.LeadTime)
	assert.InDelta(t, 7/30.0, staging.PerWeek, 1e-9)
}

func TestFilter(t *testing.T) {
	entries := []Entry{
		{Time: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), Stack: "a", Env: "prod", Action: ActionDeploy},
		{Time: time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC), Stack: "b", Env: "prod", Action: ActionRollback},
		{Time: time.Date(2026, 11, 3, 0, 0, 0, 0, time.UTC), Stack: "a", Env: "staging", Action: ActionDeploy},
	}
	count := func(f Filter) int {
		n := 0
		for _, e := range entries {
			if f.Match(e) {
				n++
			}
		}
		return n
	}
	assert.Equal(t, 3, count(Filter{}))
	assert.Equal(t, 2, count(Filter{Stack: "a"}))
	assert.Equal(t, 2, count(Filter{Env: "prod"}))
	assert.Equal(t, 1, count(Filter{Action: ActionRollback}))
	assert.Equal(t, 2, count(Filter{Since: time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)}))
}
