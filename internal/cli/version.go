package cli

import (
	"context"

	"github.com/org/deploy-kit/internal/action"
	"github.com/org/deploy-kit/internal/buildinfo"
)

var versionSpec = action.Spec{
	Name:        "version",
	Description: "Print deploykit's version.",
	Outputs:     []action.Output{{Name: "version", Description: "The kit's version."}},
}

func runVersion(_ context.Context, a *action.Context, _ struct{}) error {
	a.Logf("%s", buildinfo.String())
	if a.InRunner {
		v, _ := buildinfo.Get()
		return a.SetOutput("version", v)
	}
	return nil
}
