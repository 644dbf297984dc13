package git

import "testing"

func TestImageTag(t *testing.T) {
	for sha, want := range map[string]string{
		"0123456789abcdef0123456789abcdef01234567": "sha-0123456",
		"abc": "sha-abc",
		"":    "",
	} {
		if got := ImageTag(sha); got != want {
			t.Errorf("ImageTag(%q) = %q, want %q", sha, got, want)
		}
	}
}
