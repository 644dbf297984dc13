package deploy

import (
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/compose-spec/compose-go/v2/template"
	"github.com/compose-spec/compose-go/v2/types"
	"go.yaml.in/yaml/v3"

	"github.com/org/deploy-kit/internal/action"
	"github.com/org/deploy-kit/internal/command"
	"github.com/org/deploy-kit/internal/compose"
	"github.com/org/deploy-kit/internal/docker"
	"github.com/org/deploy-kit/internal/secretfile"
)

// swarmTarget deploys a stack to Docker Swarm with docker stack deploy, then
// watches every service's update through the Engine API. The CLI exits 0 when
// Swarm rolled a failed update back (docker/cli#6752); the watch makes that a
// failed deploy.
type swarmTarget struct {
	// secretNames are the swarm secrets this deploy wired in, by key; wanted
	// the image it asked each service to run; culprit the task Swarm named
	// when it stopped a service's update, by service; failed the failed
	// tasks' containers, with their logs.
	secretNames map[string]string
	wanted      map[string]string
	culprit     map[string]string
	failed      []docker.Container
}

// culpritTask finds the task Swarm names when it pauses or rolls back an
// update ("update rolled back due to failure or early termination of task
// <id>"); once the rollback has completed, the message no longer says.
var culpritTask = regexp.MustCompile(`of task ([a-z0-9]+)`)

// noteCulprits reads every deployed service's update status twice a second
// until ctx ends, keeping the task Swarm names when it stops an update.
func (st *swarmTarget) noteCulprits(ctx context.Context, s *State) {
	st.culprit = map[string]string{}
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		for _, name := range s.deployedServices() {
			svc, err := s.Docker.InspectService(ctx, s.Compose.Name+"_"+name)
			if m := culpritTask.FindStringSubmatch(svc.Message); err == nil && m != nil {
				st.culprit[name] = m[1]
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// secretLabel marks the swarm secrets the kit made for a stack.
const secretLabel = "org.deploykit.stack"

// Preflight: this engine manages a swarm, and every service updates start-first,
// rolls back on failure after a monitor period, and has a healthcheck — without
// them Swarm replaces healthy tasks with ones it never checked.
func (st *swarmTarget) Preflight(ctx context.Context, s *State) ([]string, error) {
	keys, err := interpolatedSecrets(s.ComposeFile, s.Secrets)
	if err != nil {
		return nil, action.Usagef("%v", err)
	}
	if len(keys) > 0 {
		k := keys[0]
		return nil, action.Usagef("target swarm: the stack file interpolates the secret variable(s) %s, which docker stack deploy never sees (the service would get the fallback or nothing): pass each as a swarm secret instead — declare secrets: {%s: {external: true}} at the top level and under the service, and have the app read /run/secrets/%s (many images take %s_FILE=/run/secrets/%s)", strings.Join(keys, ", "), k, k, k, k)
	}
	manager, state, err := s.Docker.SwarmManager(ctx)
	if err != nil {
		return nil, action.Failedf("%w", err)
	}
	if !manager {
		return nil, action.Failedf("target swarm: this Docker engine is not a swarm manager (swarm state %q): run the job on a manager node, or docker swarm init", state)
	}
	var problems []string
	for _, name := range s.deployedServices() {
		svc, _ := s.Project.GetService(name)
		var missing []string
		u := svc.Deploy
		if u == nil || u.UpdateConfig == nil {
			missing = append(missing, "deploy.update_config (order: start-first, failure_action: rollback, monitor: 30s)")
		} else {
			uc := u.UpdateConfig
			if uc.Order != "start-first" {
				missing = append(missing, "deploy.update_config.order: start-first")
			}
			if uc.FailureAction != "rollback" {
				missing = append(missing, "deploy.update_config.failure_action: rollback")
			}
			if uc.Monitor == 0 {
				missing = append(missing, "deploy.update_config.monitor (e.g. 30s)")
			}
		}
		has, err := s.hasHealthcheck(ctx, svc.HealthCheck, svc.Image)
		if err != nil {
			return nil, action.Failedf("service %s: %w", name, err)
		}
		if !has {
			missing = append(missing, "healthcheck")
		}
		if len(missing) > 0 {
			problems = append(problems, fmt.Sprintf("service %s: add %s", name, strings.Join(missing, ", ")))
		}
	}
	if len(problems) > 0 {
		msg := "target swarm needs safe updates: " + strings.Join(problems, "; ")
		if s.Opts.StrictSwarm {
			return nil, action.Usagef("%s (or set strict-swarm: false to deploy anyway)", msg)
		}
		s.A.Warningf("%s", msg)
		return []string{"strict-swarm is false: " + msg}, nil
	}
	return []string{"swarm manager; every service updates start-first with rollback"}, nil
}

// hasHealthcheck: the service defines one, or (when it says nothing) its image
// does, as far as this engine has the image.
func (s *State) hasHealthcheck(ctx context.Context, hc *types.HealthCheckConfig, image string) (bool, error) {
	if hc != nil {
		return !hc.Disable && len(hc.Test) > 0 && hc.Test[0] != "NONE", nil
	}
	return s.Docker.ImageHasHealthcheck(ctx, image)
}

func (st *swarmTarget) Snapshot(ctx context.Context, s *State) (Snapshot, error) {
	services, err := s.Docker.StackServices(ctx, s.Compose.Name)
	if err != nil {
		return Snapshot{}, err
	}
	snap := Snapshot{Services: map[string]ServiceImage{}}
	for _, svc := range services {
		if s.Opts.Service != "" && svc.Short != s.Opts.Service {
			continue
		}
		// The spec's image carries the digest Swarm resolved (unless
		// resolve-image is never): what ran, exactly.
		snap.Services[svc.Short] = ServiceImage{Image: svc.Image, Ref: svc.Image}
	}
	return snap, nil
}

// stackSecrets turns the job's secrets that the stack declares (top-level
// secrets:) into swarm secrets named <stack>_<KEY>_<hash>: secrets are
// immutable, so a new value gets a new name. It returns the override that points
// the stack's secrets at them.
func (s *State) stackSecrets(ctx context.Context) (map[string]string, error) {
	names := map[string]string{}
	var key []byte
	for _, v := range s.Secrets {
		if _, declared := s.Project.Secrets[v.Key]; !declared {
			continue
		}
		if key == nil {
			var err error
			if key, err = secretNameKey(filepath.Join(filepath.Dir(s.History.Path), secretKeyFile), !s.Opts.DryRun); err != nil {
				return nil, action.Failedf("%w", err)
			}
		}
		name := fmt.Sprintf("%s_%s_%s", s.Compose.Name, v.Key, secretVersion(key, s.Compose.Name, v))
		names[v.Key] = name
		if s.Opts.DryRun {
			s.A.Logf("    dry run: would create swarm secret %s", name)
			continue
		}
		created, err := s.Docker.EnsureSecret(ctx, name, []byte(v.Value), map[string]string{secretLabel: s.Compose.Name})
		if err != nil {
			return nil, err
		}
		if created {
			s.A.Logf("    created swarm secret %s", name)
		}
	}
	return names, nil
}

// interpolatedSecrets lists, sorted, the secrets whose variable the stack file
// interpolates (${KEY}, $KEY, ${KEY:-…}): on swarm the kit hands secrets over as
// swarm secrets only, never to docker stack deploy's interpolation.
func interpolatedSecrets(file string, secrets []secretfile.Var) ([]string, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("compose file %s: %w", file, err)
	}
	var dict map[string]any
	if err := yaml.Unmarshal(data, &dict); err != nil {
		return nil, fmt.Errorf("compose file %s is not valid YAML: %w", file, err)
	}
	used := template.ExtractVariables(dict, template.DefaultPattern)
	var keys []string
	for _, v := range secrets {
		if _, ok := used[v.Key]; ok {
			keys = append(keys, v.Key)
		}
	}
	slices.Sort(keys)
	return keys, nil
}

// secretKeyFile holds the random key that swarm secret names are derived with,
// next to the history file.
const secretKeyFile = "swarm-secret-key"

// secretVersion is the part of a swarm secret's name that changes with its value:
// 40 bits of an HMAC of the value under a random key of this host's. A plain hash
// would let anyone who can list secrets (or read the log) test guesses of the
// value offline.
func secretVersion(key []byte, stack string, v secretfile.Var) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(stack + "\x00" + v.Key + "\x00" + v.Value))
	return hex.EncodeToString(mac.Sum(nil))[:10]
}

// secretNameKey reads the key at path, making it (32 random bytes, mode 0600)
// when it does not exist and create is set; a dry run that finds none uses a
// key of zeros, so its names show the shape, not the real ones. The file is never
// followed through a symlink and must be this user's, 0600, 32 bytes.
func secretNameKey(path string, create bool) ([]byte, error) {
	fh, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if errors.Is(err, os.ErrNotExist) {
		if !create {
			return make([]byte, 32), nil
		}
		key := make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, fmt.Errorf("swarm secret key %s: %w", path, err)
		}
		fh, err = os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o600)
		if errors.Is(err, os.ErrExist) {
			return secretNameKey(path, create) // made meanwhile by another deploy
		}
		if err != nil {
			return nil, fmt.Errorf("swarm secret key %s: %w", path, err)
		}
		_, err = fh.Write(key)
		if cerr := fh.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(path)
			return nil, fmt.Errorf("swarm secret key %s: %w", path, err)
		}
		return key, nil
	}
	if err != nil {
		return nil, fmt.Errorf("swarm secret key %s: %w (remove it if it is a symlink)", path, err)
	}
	defer fh.Close()
	info, err := fh.Stat()
	if err != nil {
		return nil, fmt.Errorf("swarm secret key %s: %w", path, err)
	}
	if secretfile.Own(info, false, 0o600) != nil || info.Size() != 32 {
		return nil, fmt.Errorf("swarm secret key %s is not a 32-byte 0600 file of this user's: remove it (the next deploy makes a new one and renames the stack's secrets once)", path)
	}
	key := make([]byte, 32)
	if _, err := io.ReadFull(fh, key); err != nil {
		return nil, fmt.Errorf("swarm secret key %s: %w", path, err)
	}
	return key, nil
}

// overrideFile writes a compose override that pins images and names secrets.
func (s *State) overrideFile(images, secrets map[string]string) (string, error) {
	var b strings.Builder
	if len(images) > 0 {
		b.WriteString("services:\n")
		for _, svc := range slices.Sorted(maps.Keys(images)) {
			fmt.Fprintf(&b, "  %q:\n    image: %q\n", svc, images[svc])
		}
	}
	if len(secrets) > 0 {
		b.WriteString("secrets:\n")
		for _, key := range slices.Sorted(maps.Keys(secrets)) {
			fmt.Fprintf(&b, "  %q:\n    external: true\n    name: %q\n", key, secrets[key])
		}
	}
	if s.Opts.DryRun {
		s.A.Logf("    dry run: would use an override file:\n%s", b.String())
		return "<override>", nil
	}
	f, err := os.CreateTemp(s.A.TempDir(), "deploykit-stack-*.yaml")
	if err != nil {
		return "", err
	}
	_, err = f.WriteString(b.String())
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

func (st *swarmTarget) Apply(ctx context.Context, s *State) error {
	images := map[string]string{}
	if s.plan.ImageTemplate != "" {
		for _, svc := range s.deployedServices() {
			images[svc] = s.templateImage()
		}
	}
	return st.stackDeploy(ctx, s, images, s.Compose.Env)
}

// stackDeploy runs docker stack deploy with the images and secrets pinned, then
// watches each service's update until it completes, fails or times out.
func (st *swarmTarget) stackDeploy(ctx context.Context, s *State, images map[string]string, env []string) error {
	secrets, err := s.stackSecrets(ctx)
	if err != nil {
		return err
	}
	st.secretNames = secrets
	st.wanted = map[string]string{}
	for _, name := range s.deployedServices() {
		svc, _ := s.Project.GetService(name)
		st.wanted[name] = cmp.Or(images[name], svc.Image)
	}
	p := s.Compose
	p.Env, p.EnvFiles = env, nil
	if len(images)+len(secrets) > 0 {
		override, err := s.overrideFile(images, secrets)
		if err != nil {
			return err
		}
		if !s.Opts.DryRun {
			defer os.Remove(override)
		}
		p.Overrides = []string{override}
	}
	var before map[string]docker.Service
	if !s.Opts.DryRun {
		if before, err = s.stackState(ctx); err != nil {
			return err
		}
	}
	wait := s.Opts.WaitTimeout
	// The CLI waits for convergence, which a service whose new tasks never get
	// healthy may never reach; the watch below has the last word.
	cliCtx, cancel := context.WithTimeout(ctx, wait+30*time.Second)
	defer cancel()
	if s.Opts.DryRun {
		return s.Exec.Run(cliCtx, p.StackDeploy(s.Opts.ResolveImage))
	}
	noting, stopNoting := context.WithCancel(ctx)
	noted := make(chan struct{})
	go func() { defer close(noted); st.noteCulprits(noting, s) }()
	cliErr := s.Exec.Run(cliCtx, p.StackDeploy(s.Opts.ResolveImage))
	stopNoting()
	<-noted
	if cliErr != nil && ctx.Err() != nil {
		return cliErr
	}
	watchErr := st.watchStack(ctx, s, before, wait)
	st.warnNodesDown(ctx, s, s.Docker)
	if watchErr != nil {
		return watchErr
	}
	if cliErr != nil {
		return fmt.Errorf("docker stack deploy failed: %w", cliErr)
	}
	return nil
}

// warnNodesDown warns, once the update has ended whichever way, about the
// swarm's active nodes that are not ready: a node lost during the update.
// Swarm gives their tasks to the other nodes, so a deploy can succeed on fewer
// nodes than the cluster has; the warning says so, and which.
func (st *swarmTarget) warnNodesDown(ctx context.Context, s *State, engine taskReader) {
	nodes, err := engine.Nodes(ctx)
	if err != nil {
		s.A.Warningf("listing the swarm's nodes after the update: %v", err)
		return
	}
	if down := nodesDown(nodes); down != "" {
		s.A.Warningf("swarm node(s) not ready after the update: %s; Swarm runs their tasks on the other nodes", down)
		s.AddDetail("node(s) not ready: " + down)
	}
}

// nodesDown names the active nodes that are not ready, with their state ("":
// none).
func nodesDown(nodes []docker.Node) string {
	var down []string
	for _, n := range nodes {
		if n.State != "ready" && n.Availability == "active" {
			down = append(down, fmt.Sprintf("%s (%s)", n.Hostname, n.State))
		}
	}
	return strings.Join(down, ", ")
}

// stackState is each service of the stack now, by short name.
func (s *State) stackState(ctx context.Context) (map[string]docker.Service, error) {
	list, err := s.Docker.StackServices(ctx, s.Compose.Name)
	if err != nil {
		return nil, err
	}
	m := map[string]docker.Service{}
	for _, svc := range list {
		m[svc.Short] = svc
	}
	return m, nil
}

// watchStack waits until the update of every deployed service has completed (or
// every task of a new service runs), reporting progress. An update that Swarm
// rolled back or paused is a failure that names the service and the task error.
func (st *swarmTarget) watchStack(ctx context.Context, s *State, before map[string]docker.Service, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	lastLog := map[string]string{}
	for _, name := range s.deployedServices() {
		for {
			svc, err := s.Docker.InspectService(ctx, s.Compose.Name+"_"+name)
			if err != nil {
				return fmt.Errorf("service %s: %w", name, err)
			}
			updated := !svc.Started.IsZero() && (before[name].Started.IsZero() || svc.Started.After(before[name].Started))
			done, err := st.serviceDone(ctx, s, svc, updated)
			if err != nil {
				return err
			}
			if done {
				state := "running, unchanged"
				switch {
				case updated:
					state = "update completed"
				case before[name].ID == "":
					state = "created, every task running"
				}
				s.A.Logf("    %s: %s", svc.Name, state)
				break
			}
			progress := fmt.Sprintf("%s: %s", svc.Name, cmp.Or(svc.Message, svc.Update, "starting"))
			if lastLog[name] != progress {
				s.A.Logf("    %s", progress)
				lastLog[name] = progress
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("service %s did not finish its update within wait-timeout %s (state %q)%s", svc.Name, wait, svc.Update, st.recordFailure(ctx, s.A, s.Docker, svc))
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Second):
			}
		}
	}
	return nil
}

// serviceDone judges one service: an update that happened must have completed;
// without one (a new service, or nothing changed) every task must run.
func (st *swarmTarget) serviceDone(ctx context.Context, s *State, svc docker.Service, updated bool) (bool, error) {
	if updated {
		switch svc.Update {
		case "completed":
			return true, nil
		case "rollback_completed":
			//lint:ignore ST1005 Swarm is a proper noun, and the message reads as a sentence in the log.
			return false, fmt.Errorf("Swarm rolled the update of %s back: %s%s — the previous version still runs", svc.Name, svc.Message, st.recordFailure(ctx, s.A, s.Docker, svc))
		case "paused", "rollback_paused":
			return false, fmt.Errorf("the update of %s is %s: %s%s", svc.Name, svc.Update, svc.Message, st.recordFailure(ctx, s.A, s.Docker, svc))
		}
		return false, nil
	}
	tasks, err := s.Docker.ServiceTasks(ctx, svc.ID)
	if err != nil {
		return false, err
	}
	running := 0
	for _, t := range tasks {
		if t.Desired == "running" && t.State == "running" {
			running++
		}
	}
	return running > 0 && running >= svc.Replicas, nil
}

// failedTask is the task of a service that ran the image this deploy asked for
// and did not stay: the one Swarm named when it stopped the update (noted while
// the CLI waited), else the newest that ended with an error, else the newest
// that stopped. After Swarm rolled an update back, every new task has stopped,
// those that were healthy on other nodes too.
func (st *swarmTarget) failedTask(ctx context.Context, engine taskReader, svc docker.Service) (docker.Task, bool) {
	want := st.wanted[svc.Short]
	tasks, err := engine.ServiceTasks(ctx, svc.ID)
	if want == "" || err != nil {
		return docker.Task{}, false
	}
	tasks = slices.DeleteFunc(tasks, func(t docker.Task) bool {
		return t.Image != want && !strings.HasPrefix(t.Image, want+"@")
	})
	for _, t := range tasks {
		if id := st.culprit[svc.Short]; id != "" && strings.HasPrefix(t.ID, id) {
			return t, true
		}
	}
	for _, t := range tasks { // newest first
		if t.Err != "" {
			return t, true
		}
	}
	for _, t := range tasks {
		if t.Desired != "running" {
			return t, true
		}
	}
	return docker.Task{}, false
}

// Restore returns each service to the snapshot: docker service rollback when its
// previous spec is the snapshot (one step back), else a redeploy pinned to the
// snapshot's images. A service Swarm already rolled back is left alone.
func (st *swarmTarget) Restore(ctx context.Context, s *State) error {
	now, err := s.stackState(ctx)
	if err != nil {
		return err
	}
	images := map[string]string{}
	for _, name := range s.Snapshot.Names() {
		want, svc := s.Snapshot.Services[name].Image, now[name]
		switch {
		case svc.Image == want:
			s.A.Logf("    %s already runs %s", svc.Name, want)
		case svc.Prev == want:
			// Cancelled: Swarm carries the rollback out; the job has seconds left.
			back := compose.ServiceRollback(svc.Name, s.Out.Cancelled)
			back.Env = s.A.Environ() // the engine the run works on (DOCKER_HOST)
			if err := s.Exec.Run(ctx, back); err != nil {
				return fmt.Errorf("docker service rollback %s: %w", svc.Name, err)
			}
		default:
			images[name] = want
		}
	}
	if len(images) > 0 {
		return st.stackDeploy(ctx, s, images, s.composeEnv(s.previousVersionOr(""), s.previousSHA()))
	}
	return nil
}

// Failing are the containers of the tasks that ran a service's update and did
// not stay, with their logs as read when the update failed (Swarm may remove
// those containers soon after).
func (st *swarmTarget) Failing(ctx context.Context, s *State) ([]docker.Container, error) {
	return st.failed, nil
}

// recordFailure keeps the failed task's container and its last log lines for
// the hand-off, and returns how the task ended, for the error message.
func (st *swarmTarget) recordFailure(ctx context.Context, a *action.Context, engine taskReader, svc docker.Service) string {
	t, ok := st.failedTask(ctx, engine, svc)
	if !ok {
		return ""
	}
	// The task's container on the job's engine, if it ran there: another
	// node's container is not this engine's to read.
	local, err := engine.TaskContainer(ctx, t.ID)
	if err != nil {
		a.Warningf("%v", err)
	}
	if t.ContainerID == "" {
		t.ContainerID = local
	}
	// Through the manager first: the task may have run on another node.
	logs, err := engine.TaskLogs(ctx, t.ID, logLines)
	if (err != nil || strings.TrimSpace(logs) == "") && local != "" {
		logs, err = engine.Logs(ctx, local, logLines)
	}
	switch {
	case err != nil && local == "":
		logs = fmt.Sprintf("(could not read the task's logs through the manager: %v)", err)
	case err != nil:
		logs = fmt.Sprintf("(could not read the logs: %v)", err)
	case strings.TrimSpace(logs) == "":
		logs = "(no output)"
	}
	ended := cmp.Or(t.Err, "no error recorded")
	if t.Err == "" && (t.State == "complete" || t.State == "shutdown") {
		// Swarm stops a task that fails its health check and records how the
		// process ended: complete, exit 0, for an app that stops cleanly.
		ended = "no error recorded, so Swarm most likely stopped it for failing its health check"
		if local != "" {
			if out, err := engine.HealthOutput(ctx, local); err == nil && out != "" {
				ended = "Swarm stopped it for failing its health check, whose last run said: " + out
			}
		} else if t.Node != "" {
			ended += " (its health check's output is on node " + t.Node + ": docker inspect " + t.ContainerID + " there)"
		}
	}
	name, on := svc.Name+"."+t.ID[:min(12, len(t.ID))], ""
	if t.Node != "" {
		name += " on " + t.Node
		on = " on node " + t.Node
	}
	st.failed = append(st.failed, docker.Container{ID: t.ContainerID, Name: name,
		Service: svc.Short, Image: t.Image, State: t.State, Health: t.Err, Logs: cmp.Or(logs, "(no output)")})
	return fmt.Sprintf("; task %.12s (%s)%s ended %s: %s", t.ID, t.Image, on, t.State, ended)
}

func (st *swarmTarget) ManualRollback(s *State) []string {
	var cmds []string
	for _, name := range s.Snapshot.Names() {
		cmds = append(cmds, "docker service rollback "+command.Quote(s.Compose.Name+"_"+name))
	}
	return cmds
}

// Finish removes the swarm secrets of this stack that the deploy no longer uses
// (a value changed, a secret was dropped); one still in use stays.
func (st *swarmTarget) Finish(ctx context.Context, s *State) {
	if s.Opts.DryRun {
		return
	}
	all, err := s.Docker.SecretsLabelled(ctx, secretLabel, s.Compose.Name)
	if err != nil {
		s.A.Warningf("listing the stack's secrets: %v", err)
		return
	}
	inUse := slices.Collect(maps.Values(st.secretNames))
	for _, name := range all {
		if slices.Contains(inUse, name) {
			continue
		}
		if err := s.Docker.RemoveSecret(ctx, name); err != nil {
			s.A.Logf("    kept secret %s: %v", name, err)
			continue
		}
		s.A.Logf("    removed swarm secret %s (no longer used)", name)
	}
}

// PlanDiff is built from the stack's service specs (swarmPlanDiff).
func (st *swarmTarget) PlanDiff(ctx context.Context, s *State) (PlanDiff, error) {
	return s.swarmPlanDiff(ctx)
}
