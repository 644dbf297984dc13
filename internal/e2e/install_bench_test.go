package e2e

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// The time to a usable deploykit in a job (make bench; results in BENCHMARKS.md).

// BenchmarkInstallCacheHit: the tool cache already holds this kit build.
func BenchmarkInstallCacheHit(b *testing.B) {
	k := newKit(b)
	if out, err := k.install(b, os.Getenv("PATH"), "DEPLOYKIT_NO_DOWNLOAD=1"); err != nil {
		b.Fatal(err, out)
	}
	for b.Loop() {
		if out, err := k.install(b, os.Getenv("PATH"), "DEPLOYKIT_NO_DOWNLOAD=1"); err != nil {
			b.Fatal(err, out)
		}
	}
}

// BenchmarkInstallSourceBuildWarm: empty tool cache, Go's build cache warm (a
// self-hosted runner after the first job).
func BenchmarkInstallSourceBuildWarm(b *testing.B) { benchSourceBuild(b, false) }

// BenchmarkInstallSourceBuildCold: empty tool cache and empty Go build cache (a fresh
// runner with the module cache restored): the cold build from source.
func BenchmarkInstallSourceBuildCold(b *testing.B) { benchSourceBuild(b, true) }

func benchSourceBuild(b *testing.B, coldGoCache bool) {
	k := newKit(b)
	i := 0
	for b.Loop() {
		i++
		k.toolCache = filepath.Join(b.TempDir(), strconv.Itoa(i))
		env := []string{"DEPLOYKIT_NO_DOWNLOAD=1"}
		if coldGoCache {
			env = append(env, "GOCACHE="+b.TempDir())
		}
		if out, err := k.install(b, os.Getenv("PATH"), env...); err != nil {
			b.Fatal(err, out)
		}
	}
}
