package backup

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/org/deploy-kit/internal/action"
	"github.com/org/deploy-kit/internal/command"
	"github.com/org/deploy-kit/internal/steps"
)

// summary is the job summary: what was backed up where, how it was checked, the
// steps, and the exact commands that restore this file.
func (j *job) summary(took time.Duration, failed error) string {
	var b strings.Builder
	status := "succeeded"
	if failed != nil {
		status = "failed"
	}
	fmt.Fprintf(&b, "### deploykit backup: %s — %s\n\n", status, j.name)
	switch {
	case failed != nil && j.published:
		fmt.Fprintf(&b, "**%s.** The verified backup %s was kept; the steps after it did not all run.\n\n", action.Cell(failed.Error()), j.where())
	case failed != nil:
		fmt.Fprintf(&b, "**%s.** No backup file was kept and nothing was deleted.\n\n", action.Cell(failed.Error()))
	}
	if failed != nil {
		if url := j.a.JobURL(); url != "" {
			fmt.Fprintf(&b, "Job: %s\n\n", url)
		}
	}
	b.WriteString("| | |\n|---|---|\n")
	row := func(k, v string) { fmt.Fprintf(&b, "| %s | %s |\n", k, action.Cell(v)) }
	row("Engine", j.name)
	row("Source", j.engine.Source())
	if j.lockNote != "" {
		row("Lock", j.lockNote)
	}
	if failed == nil || j.published {
		row("File", j.where())
		row("Size", bytesText(j.wrote.Size))
		ratio := 0.0
		if j.wrote.Size > 0 {
			ratio = float64(j.wrote.Raw) / float64(j.wrote.Size)
		}
		row("Compression", fmt.Sprintf("%s dump → %s, ratio %.1f:1 (gzip level %d)", bytesText(j.wrote.Raw), bytesText(j.wrote.Size), ratio, j.level))
		row("SHA-256", j.wrote.SHA256)
		row("Duration", took.Round(time.Millisecond).String())
		row("Verification", strings.Join(j.checked.Checks, "; "))
		row("Restore check", cmp.Or(j.restored, "not requested (restore-check: false)"))
		if j.hostFile != "" {
			row("Host copy", j.hostFile)
		}
		if j.offsiteCopy != "" {
			row("Offsite copy", j.offsiteCopy+" (read back: size and SHA-256 match)")
		}
		row("Retention", fmt.Sprintf("keep %d daily, %d weekly, %d monthly: kept %d, deleted %d", j.keep.Daily, j.keep.Weekly, j.keep.Monthly, len(j.kept), len(j.deleted)))
	}
	b.WriteString("\n" + steps.Table(j.Results))
	if failed == nil || j.published {
		note := j.engine.RestoreNote()
		if j.remote != nil {
			note = "On " + j.remote.String() + ". " + note
		}
		fmt.Fprintf(&b, "\n#### Restore this backup\n\n%s\n\n```sh\ncd %s && sha256sum -c %s\n%s\n```\n",
			note, command.Quote(j.keptDir()), command.Quote(filepath.Base(j.final)+".sha256"), j.engine.RestoreCommand(j.keptAt()))
	}
	return b.String()
}

// verifyOnly is `deploykit backup --verify-only <file>`: the verify step on an
// existing file, and its .sha256 when one is beside it.
func verifyOnly(a *action.Context, file string, minSize int64) error {
	v, sum, err := verifyFile(file, minSize, formats)
	if err == nil {
		err = compareSum(file, sum)
		switch {
		case err == nil:
			v.Checks = append(v.Checks, "matches "+filepath.Base(file)+".sha256")
		case errors.Is(err, fs.ErrNotExist):
			v.Checks = append(v.Checks, "no .sha256 beside it to compare with")
			err = nil
		}
	}
	var b strings.Builder
	if err != nil {
		fmt.Fprintf(&b, "### deploykit backup --verify-only: failed\n\n**%s**\n", action.Cell(err.Error()))
	} else {
		fmt.Fprintf(&b, "### deploykit backup --verify-only: ok — %s\n\n| check | |\n|---|---|\n", file)
		for _, c := range v.Checks {
			fmt.Fprintf(&b, "| %s | ok |\n", action.Cell(c))
		}
	}
	if serr := a.Summary(b.String()); serr != nil {
		a.Warningf("writing the job summary: %v", serr)
	}
	if err != nil {
		return action.Failedf("verify %s: %w", file, err)
	}
	st, err := os.Stat(file)
	if err != nil {
		return action.Failedf("%w", err)
	}
	return a.SetOutputs(action.Out{Name: "path", Value: file}, action.Out{Name: "size", Value: strconv.FormatInt(st.Size(), 10)}, action.Out{Name: "sha256", Value: sum})
}
