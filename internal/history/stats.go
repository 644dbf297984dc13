package history

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// Filter selects entries: by stack, environment and action (each "" for any) and
// by time (Since zero for all).
type Filter struct {
	Stack, Env, Action string
	Since              time.Time
}

// Match reports whether e passes the filter.
func (f Filter) Match(e Entry) bool {
	return (f.Stack == "" || e.Stack == f.Stack) && (f.Env == "" || e.Env == f.Env) &&
		(f.Action == "" || e.Action == f.Action) && !e.Time.Before(f.Since)
}

// Stats are the delivery figures of one stack and environment over a window,
// from its history: how often it deploys, how often a deploy fails, how long a
// failure takes to be put right, and how long a commit takes to reach it.
type Stats struct {
	Stack string `json:"stack"`
	Env   string `json:"environment"`
	// Deploys counts the deploys that ended (succeeded, forced or failed);
	// cancelled ones are left out: they say nothing about the change.
	Deploys   int `json:"deploys"`
	Succeeded int `json:"succeeded"`
	Failed    int `json:"failed"`
	Rollbacks int `json:"rollbacks"`
	// PerWeek is successful deploys per 7 days of the window.
	PerWeek float64 `json:"deploys_per_week"`
	// ChangeFailureRate is Failed / Deploys (0 without deploys).
	ChangeFailureRate float64 `json:"change_failure_rate"`
	// TimeToRestore is the mean time from a failed deploy to the next entry that
	// put a version live (a rollback, automatic or not, or a deploy), over the
	// failures that were followed by one (Restored); Unrestored were not.
	TimeToRestore time.Duration `json:"-"`
	Restored      int           `json:"restored"`
	Unrestored    int           `json:"unrestored"`
	// LeadTime is the median time from a commit to its successful deploy, over
	// the deploys whose commit time is known (LeadTimes).
	LeadTime  time.Duration `json:"-"`
	LeadTimes int           `json:"lead_times"`

	TimeToRestoreSeconds float64 `json:"time_to_restore_seconds"`
	LeadTimeSeconds      float64 `json:"lead_time_seconds"`
	WindowDays           float64 `json:"window_days"`
}

// Compute returns the stats of every stack and environment with entries in the
// window ending at now (sorted by stack, then environment). commitTime, when not
// nil, gives a commit's time for the lead time.
func Compute(entries []Entry, now time.Time, window time.Duration, commitTime func(sha string) (time.Time, bool)) []Stats {
	from := now.Add(-window)
	type key struct{ stack, env string }
	byKey := map[key][]Entry{}
	for _, e := range entries {
		k := key{e.Stack, e.Env}
		byKey[k] = append(byKey[k], e)
	}
	var out []Stats
	for k, list := range byKey {
		sort.SliceStable(list, func(i, j int) bool { return list[i].Time.Before(list[j].Time) })
		st := Stats{Stack: k.stack, Env: k.env, WindowDays: window.Hours() / 24}
		var restore time.Duration
		var leads []time.Duration
		for i, e := range list {
			if e.Time.Before(from) || e.Time.After(now) {
				continue
			}
			switch {
			case e.Action == ActionRollback && e.Live():
				st.Rollbacks++
			case e.Action != ActionDeploy || e.Status == StatusCancelled || e.Status == StatusKilled:
			case e.Live():
				st.Deploys++
				st.Succeeded++
				if commitTime != nil && e.SHA() != "" {
					if t, ok := commitTime(e.SHA()); ok && !t.After(e.Time) {
						leads = append(leads, e.Time.Sub(t))
					}
				}
			case e.Status == StatusFailed:
				st.Deploys++
				st.Failed++
				next := slices.IndexFunc(list[i+1:], func(n Entry) bool { return n.Live() })
				if next < 0 {
					st.Unrestored++
					continue
				}
				st.Restored++
				restore += list[i+1+next].Time.Sub(e.Time)
			}
		}
		if st.Deploys == 0 && st.Rollbacks == 0 {
			continue
		}
		if window > 0 {
			st.PerWeek = float64(st.Succeeded) / (window.Hours() / (24 * 7))
		}
		if st.Deploys > 0 {
			st.ChangeFailureRate = float64(st.Failed) / float64(st.Deploys)
		}
		if st.Restored > 0 {
			st.TimeToRestore = restore / time.Duration(st.Restored)
		}
		if len(leads) > 0 {
			slices.Sort(leads)
			st.LeadTimes = len(leads)
			st.LeadTime = leads[len(leads)/2]
			if len(leads)%2 == 0 {
				st.LeadTime = (leads[len(leads)/2-1] + leads[len(leads)/2]) / 2
			}
		}
		st.TimeToRestoreSeconds = st.TimeToRestore.Seconds()
		st.LeadTimeSeconds = st.LeadTime.Seconds()
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Stack != out[j].Stack {
			return out[i].Stack < out[j].Stack
		}
		return out[i].Env < out[j].Env
	})
	return out
}

// Trend is the stats as one line, for the end of a deploy summary.
func (s Stats) Trend() string {
	parts := []string{fmt.Sprintf("%d deploy(s), %.1f a week", s.Deploys, s.PerWeek)}
	parts = append(parts, fmt.Sprintf("%.0f%% failed", 100*s.ChangeFailureRate))
	if s.Restored > 0 {
		parts = append(parts, "time to restore "+Round(s.TimeToRestore))
	}
	if s.Unrestored > 0 {
		parts = append(parts, fmt.Sprintf("%d failure(s) not restored yet", s.Unrestored))
	}
	if s.LeadTimes > 0 {
		parts = append(parts, "lead time "+Round(s.LeadTime))
	}
	return fmt.Sprintf("Last %s on %s: %s.", days(s.WindowDays), s.Env, strings.Join(parts, ", "))
}

func days(d float64) string {
	if d == float64(int(d)) {
		return fmt.Sprintf("%d days", int(d))
	}
	return fmt.Sprintf("%.1f days", d)
}

// Round renders a duration to the second (or to the minute beyond an hour).
func Round(d time.Duration) string {
	if d >= time.Hour {
		return d.Round(time.Minute).String()
	}
	return d.Round(time.Second).String()
}
