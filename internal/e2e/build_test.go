package e2e

import (
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/org/deploy-kit/internal/testenv"
)

func TestBuildImageActionFeedsTheNextJob(t *testing.T) {
	t.Parallel()
	testenv.RequireDocker(t)
	const user, password = "ci-bot", "e2e-registry-password-0123456789"
	reg := testenv.Registry(t, user, password)
	image := reg + "/team/hello"
	t.Cleanup(func() { testenv.RemoveImages(testenv.LocalImages(t, image)...) })
	repo, head := kitRepo(t, "feat: hello", "build.yaml")
	log, err := runAct(t, repo, "build.yaml", "push", map[string]any{
		"ref": "refs/heads/main", "head_commit": map[string]any{"id": head, "message": "feat: hello"},
	}, "--var", "IMAGE="+image, "--var", "REGISTRY="+reg, "--var", "REGISTRY_USER="+user, "-s", "REGISTRY_PASSWORD="+password)
	require.NoError(t, err, log)
	ref := later(log)["ref"]
	require.True(t, strings.HasPrefix(ref, image+"@sha256:"), "the deploy job got %q\n%s", ref, log)

	r, err := name.ParseReference(image + ":1.4.0")
	require.NoError(t, err)
	desc, err := remote.Head(r, remote.WithAuth(&authn.Basic{Username: user, Password: password}))
	require.NoError(t, err)
	assert.Equal(t, image+"@"+desc.Digest.String(), ref, "the digest is the registry's")
	assert.NotContains(t, log, password)
	assert.Contains(t, log, "### deploykit build-image")
}
