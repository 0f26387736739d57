package node

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// lockPath is the machine-wide lock a node holds while it runs: there is one
// node per machine (teardown.go says why), and Start's Teardown would
// otherwise kill another run's node.
const lockPath = "/run/zmqauth-node.lock"

// lockMachine waits until no other node runs on the machine and returns the
// held lock's file; closing it (or the process ending) releases the lock.
func lockMachine(ctx context.Context, log func(string, ...any)) (*os.File, error) {
	f, err := os.OpenFile(lockPath, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("node lock: %w", err)
	}
	waiting := false
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("node lock: %w", err)
		}
		if !waiting {
			log("another node runs on this machine (%s is held); waiting for it to stop", lockPath)
			waiting = true
		}
		if err := sleep(ctx, 500*time.Millisecond); err != nil {
			f.Close()
			return nil, fmt.Errorf("node lock: %w", err)
		}
	}
}
