package sandbox

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// lockHelperEnv makes the test binary, run again as a child, try to Open
// the state file it names and report the outcome on stdout.
const lockHelperEnv = "VOXBIND_SANDBOX_LOCK_HELPER"

func TestMain(m *testing.M) {
	if path := os.Getenv(lockHelperEnv); path != "" {
		s, err := Open(path, Options{})
		if err != nil {
			fmt.Println("refused:", err)
			os.Exit(0)
		}
		s.Close()
		fmt.Println("opened")
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestLockAcrossProcesses: another process cannot serve a state file this
// one serves, and can once it is closed.
func TestLockAcrossProcesses(t *testing.T) {
	path := writeState(t)
	child := func() string {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), lockHelperEnv+"="+path)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("child: %v: %s", err, out)
		}
		return strings.TrimSpace(string(out))
	}
	srv, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := child(); !strings.HasPrefix(got, "refused:") || !strings.Contains(got, "another voxbind is serving it") {
		t.Errorf("child while served: %q", got)
	}
	srv.Close()
	if got := child(); got != "opened" {
		t.Errorf("child after Close: %q", got)
	}
}
