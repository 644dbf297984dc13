package compose

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCommands(t *testing.T) {
	p := Project{File: "/srv/app/compose.yaml", Name: "app", EnvFiles: []string{"/srv/app/.env", "/tmp/secrets.env"}}
	base := "docker compose -p app -f /srv/app/compose.yaml --env-file /srv/app/.env --env-file /tmp/secrets.env "
	assert.Equal(t, base+"up -d --wait --remove-orphans --wait-timeout 120 --build", p.Up(UpOptions{Build: true, WaitTimeout: 2 * time.Minute}).String())
	assert.Equal(t, base+"up -d --wait --remove-orphans --no-build --pull missing web", p.Up(UpOptions{PullMissing: true, Services: []string{"web"}}).String())
	assert.Equal(t, base+"up -d --wait --remove-orphans --no-build --pull never --no-deps web", p.Up(UpOptions{NoDeps: true, Services: []string{"web"}}).String())
	assert.Equal(t, base+"build --no-cache web", p.Build([]string{"web"}, true).String())
	assert.Equal(t, base+"up -d --wait --remove-orphans --no-build --pull never --no-deps --no-recreate --scale web=4 web",
		p.Up(UpOptions{NoDeps: true, NoRecreate: true, Scale: map[string]int{"web": 4}, Services: []string{"web"}}).String())
	p.Overrides = []string{"/tmp/rollback.yaml"}
	assert.Equal(t, "docker compose -p app -f /srv/app/compose.yaml -f /tmp/rollback.yaml --env-file /srv/app/.env --env-file /tmp/secrets.env build", p.Build(nil, false).String())
	assert.Equal(t, "/srv/app", p.Up(UpOptions{}).Dir)
}

func TestLoadInterpolatesLikeCompose(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "compose.yaml")
	require.NoError(t, os.WriteFile(file, []byte("services:\n  web:\n    image: registry/app:${DEPLOY_TAG}\n    environment:\n      PASSWORD: ${DB_PASSWORD}\n      REGION: ${REGION}\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, ".env"), []byte("REGION=eu\n"), 0o644))
	p, err := Load(context.Background(), file, "", []string{"DEPLOY_TAG=sha-abc1234", "DB_PASSWORD=s3cret"}, DotEnv(file))
	require.NoError(t, err)
	assert.Equal(t, filepath.Base(dir), p.Name, "named after its directory")
	web, err := p.GetService("web")
	require.NoError(t, err)
	assert.Equal(t, "registry/app:sha-abc1234", web.Image)
	assert.Equal(t, "s3cret", *web.Environment["PASSWORD"])
	assert.Equal(t, "eu", *web.Environment["REGION"])
	assert.Equal(t, []string{filepath.Join(dir, ".env")}, DotEnv(file))

	_, err = Load(context.Background(), file, "Bad Name", nil, nil)
	assert.Error(t, err)
}
