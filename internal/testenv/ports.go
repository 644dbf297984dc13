package testenv

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// FreePort returns a TCP port on 127.0.0.1 that nothing listens on now and that
// no other test of the suite — in this process or in another package's test
// process — is given until this test has ended. For a port a test hands to
// something that binds it later (a compose file's published port, a server's
// -p), "free now" is not enough on a busy machine: the kernel gives ports of its
// ephemeral range to outgoing connections, and Docker picks the host ports it
// chooses itself from the same range. So the port comes from the range just
// below it, and is reserved by an flock on a file in a directory every test
// process shares, released when the test ends (after the cleanups registered
// later, which stop what listens on it).
func FreePort(t testing.TB) int {
	t.Helper()
	lo, hi := reservedRange()
	dir := filepath.Join(os.TempDir(), "deploykit-test-ports")
	if err := os.MkdirAll(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	for range 1000 {
		port := lo + rand.IntN(hi-lo)
		f, err := os.OpenFile(filepath.Join(dir, strconv.Itoa(port)), os.O_CREATE|os.O_RDWR, 0o666)
		if err != nil {
			t.Fatal(err)
		}
		if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil {
			f.Close() // another test has it
			continue
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			f.Close() // something outside the suite listens on it
			continue
		}
		l.Close()
		t.Cleanup(func() { f.Close() })
		return port
	}
	t.Fatalf("no free port in %d-%d after 1000 tries", lo, hi)
	return 0
}

// reservedRange is where FreePort picks ports: the 8192 ports below the
// kernel's ephemeral range (net.ipv4.ip_local_port_range; 32768 by default).
func reservedRange() (lo, hi int) {
	hi = 32768
	if data, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(data)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil && n > 10240 {
				hi = n
			}
		}
	}
	return hi - 8192, hi
}
