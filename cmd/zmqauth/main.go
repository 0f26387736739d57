// Command zmqauth is zmqauth's one binary: the operator's manager, the
// sidecar, and the user tools (keygen, ...), each a subcommand.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes one command line and returns the process exit code. Errors are
// printed as one line on stderr.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRootCommand()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintf(stderr, "zmqauth: %v\n", err)
		return 1
	}
	return 0
}

// newRootCommand builds the command tree. Each subcommand comes from its own
// newXxxCommand function in its own file.
func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "zmqauth",
		Short:         "ZeroMQ CURVE keys, allowlists and sidecars for Kubernetes",
		SilenceUsage:  true, // a usage dump would bury the one-line reason
		SilenceErrors: true, // run prints the error itself
	}
	root.AddCommand(newKeygenCommand())
	root.AddCommand(newSidecarCommand())
	root.AddCommand(newManagerCommand(), newRotateCommand())
	root.AddCommand(newCheckCommand())
	return root
}
