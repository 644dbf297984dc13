package action

import (
	"errors"
	"fmt"
)

// Exit codes of every subcommand.
const (
	ExitOK     = 0 // the operation succeeded (or was skipped on purpose)
	ExitFailed = 1 // the operation failed (e.g. a deploy that was rolled back)
	ExitUsage  = 2 // bad input or usage; nothing was changed
)

// ExitError carries the exit code an error should end the process with.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

// Usagef is a bad-input error: exit 2, reported before anything is changed.
func Usagef(format string, args ...any) error {
	return &ExitError{Code: ExitUsage, Err: fmt.Errorf(format, args...)}
}

// Failedf is an operation failure: exit 1.
func Failedf(format string, args ...any) error {
	return &ExitError{Code: ExitFailed, Err: fmt.Errorf(format, args...)}
}

// ExitCode maps an error to the process exit code: nil is 0, an ExitError its own
// code, anything else 1. The code chosen where the error was made wins: a usage
// error a caller wrapped as a failure (Failedf("…: %w", err)) still exits 2.
func ExitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	code := ExitFailed
	for {
		var ee *ExitError
		if !errors.As(err, &ee) {
			return code
		}
		code, err = ee.Code, ee.Err
	}
}
