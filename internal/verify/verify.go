// Package verify checks a deployed stack from the outside: a health URL polled with
// exponential backoff, and smoke checks that expect given HTTP statuses.
package verify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Check is one smoke check: GET Path must answer one of Statuses.
type Check struct {
	Path     string
	Statuses []int
}

func (c Check) String() string {
	s := make([]string, len(c.Statuses))
	for i, st := range c.Statuses {
		s[i] = strconv.Itoa(st)
	}
	return c.Path + "=" + strings.Join(s, ",")
}

// ParseChecks reads lines of path=status[,status].
func ParseChecks(lines []string) ([]Check, error) {
	var checks []Check
	for _, line := range lines {
		path, statuses, ok := strings.Cut(line, "=")
		path = strings.TrimSpace(path)
		if !ok || !strings.HasPrefix(path, "/") {
			return nil, fmt.Errorf("smoke check %q: want path=status[,status], e.g. /health=200", line)
		}
		if _, err := url.ParseRequestURI(path); err != nil {
			return nil, fmt.Errorf("smoke check %q: bad path: %w", line, err)
		}
		c := Check{Path: path}
		for _, s := range strings.Split(statuses, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil || n < 100 || n > 599 {
				return nil, fmt.Errorf("smoke check %q: %q is not an HTTP status", line, strings.TrimSpace(s))
			}
			c.Statuses = append(c.Statuses, n)
		}
		checks = append(checks, c)
	}
	return checks, nil
}

// ValidateURL accepts an absolute http(s) URL.
func ValidateURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an http:// or https:// URL", raw)
	}
	return nil
}

// Backoff is the health polling schedule.
type Backoff struct {
	Attempts     int
	InitialDelay time.Duration
	MaxDelay     time.Duration
	// Retry, when set, is called after each failed attempt that is followed by
	// another, with the attempt's number and whether anything answered at the
	// URL at all (an HTTP answer, even an error status): what a caller can mend
	// before the next one.
	Retry func(attempt int, answered bool)
}

// Delays returns the waits between attempts: initial, doubled each time, capped.
func (b Backoff) Delays() []time.Duration {
	var d []time.Duration
	next := b.InitialDelay
	for i := 1; i < b.Attempts; i++ {
		if b.MaxDelay > 0 && next > b.MaxDelay {
			next = b.MaxDelay
		}
		d = append(d, next)
		next *= 2
	}
	return d
}

var client = &http.Client{
	Timeout: 10 * time.Second,
	// A redirect is an answer: report it, do not follow it to another host.
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// Dial connects to an address (net.Dialer.DialContext's shape).
type Dial func(ctx context.Context, network, addr string) (net.Conn, error)

type dialKey struct{}

// From is ctx whose checks connect through dial: from the Docker host, over
// the run's SSH connection, to a container's own address the runner cannot
// reach (remote.Conn.DialContext).
func From(ctx context.Context, dial Dial) context.Context {
	if dial == nil {
		return ctx
	}
	return context.WithValue(ctx, dialKey{}, dial)
}

// clientFor is the client of a check made under ctx.
func clientFor(ctx context.Context) *http.Client {
	dial, _ := ctx.Value(dialKey{}).(Dial)
	if dial == nil {
		return client
	}
	c := *client
	c.Transport = &http.Transport{DialContext: dial, DisableKeepAlives: true}
	return &c
}

// get returns the status and the start of the body.
func get(ctx context.Context, u string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := clientFor(ctx).Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	return resp.StatusCode, printable(string(body)), nil
}

// printable is a response body as one line of text for logs, errors and the
// history: control characters (line breaks included) become spaces, so a body
// cannot start a line of its own, such as a workflow command.
func printable(body string) string {
	return strings.TrimSpace(strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(body, "?")))
}

// Unreachable reports an error of a request that nothing answered: the
// address refused the connection, had no route, or its name did not resolve.
func Unreachable(err error) bool {
	var op *net.OpError
	var dns *net.DNSError
	return errors.As(err, &dns) || errors.As(err, &op) && op.Op == "dial"
}

// Describe is a request's error for a person: one that nothing answered says
// where, and that it was asked from here, the machine the kit runs on (a
// loopback address is the runner's own).
func Describe(err error) string {
	var op *net.OpError
	var dns *net.DNSError
	switch {
	case errors.As(err, &dns):
		return fmt.Sprintf("the name %s does not resolve from the runner (%s)", dns.Name, dns.Err)
	case errors.As(err, &op) && op.Op == "dial":
		why := op.Err.Error()
		var sys *os.SyscallError
		if errors.As(op.Err, &sys) {
			why = sys.Err.Error()
		}
		return fmt.Sprintf("nothing answers at %s from the runner (%s)", op.Addr, why)
	}
	return err.Error()
}

// described is a request's error as Describe says it, keeping its cause.
type described struct{ err error }

func (d described) Error() string { return Describe(d.err) }
func (d described) Unwrap() error { return d.err }

// Health polls u until it answers 2xx, following the backoff; logf reports each
// attempt. The error describes the last answer.
func Health(ctx context.Context, u string, b Backoff, logf func(string, ...any)) error {
	delays := b.Delays()
	var last error
	for attempt := 1; ; attempt++ {
		status, body, err := get(ctx, u)
		switch {
		case err != nil:
			last = described{err}
		case status >= 200 && status < 300:
			logf("health %s: %d (attempt %d/%d)", u, status, attempt, b.Attempts)
			return nil
		default:
			last = fmt.Errorf("HTTP %d %s", status, body)
		}
		if attempt > len(delays) {
			logf("health %s: %v (attempt %d/%d)", u, last, attempt, b.Attempts)
			return fmt.Errorf("health check %s failed after %d attempts: %w", u, b.Attempts, last)
		}
		// Not an error yet: a service that was just (re)started refuses or
		// resets connections until it listens.
		logf("health %s: not ready yet, %s (attempt %d/%d); waiting %s", u, last, attempt, b.Attempts, delays[attempt-1])
		if b.Retry != nil {
			b.Retry(attempt, err == nil)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delays[attempt-1]):
		}
	}
}

// Smoke runs every check against base and returns one error naming each failure.
func Smoke(ctx context.Context, base string, checks []Check, logf func(string, ...any)) error {
	var failed []string
	for _, c := range checks {
		u := strings.TrimRight(base, "/") + c.Path
		status, body, err := get(ctx, u)
		switch {
		case err != nil:
			failed = append(failed, fmt.Sprintf("%s: %s", c.Path, Describe(err)))
		case !slices.Contains(c.Statuses, status):
			f := fmt.Sprintf("%s: got %d, want %s", c.Path, status, strings.TrimPrefix(c.String(), c.Path+"="))
			if body != "" {
				f += " (answered: " + body + ")" // what the app said is what a person needs first
			}
			failed = append(failed, f)
		default:
			logf("smoke %s: %d", u, status)
			continue
		}
		logf("smoke %s: %s", u, failed[len(failed)-1])
	}
	if len(failed) > 0 {
		return fmt.Errorf("smoke checks failed: %s", strings.Join(failed, "; "))
	}
	return nil
}
