package pypeer

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/zmqauth/zmqauth/internal/testenv"
)

// testSecret is a CURVE secret key in Z85 (a made-up one).
const testSecret = "JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6"

func TestRedactedArgsHidesSecretKeys(t *testing.T) {
	got := strings.Join(redactedArgs([]string{"--type=REQ", "--curve-secret-key=" + testSecret, "--curve-server-key=rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"}), " ")
	if strings.Contains(got, testSecret) {
		t.Fatalf("secret key printed: %s", got)
	}
	if !strings.Contains(got, "--curve-server-key=rq:rM") || !strings.Contains(got, "--type=REQ") {
		t.Fatalf("other flags lost: %s", got)
	}
	// The same key passed again under another flag is hidden as well.
	got = strings.Join(redactedArgs([]string{"--curve-secret-key=" + testSecret, "--other=" + testSecret}), " ")
	if strings.Contains(got, testSecret) {
		t.Fatalf("secret key printed: %s", got)
	}
}

func TestOptionsFormatHidesSecretKeys(t *testing.T) {
	o := Options{Type: "DEALER", Connect: "tcp://127.0.0.1:1", Mechanism: "CURVE", CurveSecretKey: testSecret, CurvePublicKey: "public-key"}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		got := fmt.Sprintf(verb, o) + fmt.Sprintf(verb, &o)
		if strings.Contains(got, testSecret) {
			t.Errorf("%s printed the secret key: %s", verb, got)
		}
		if !strings.Contains(got, "--curve-public-key=public-key") {
			t.Errorf("%s lost the other flags: %s", verb, got)
		}
	}
}

// recordingTB captures everything a test helper prints, so a test can check
// it. Fatal and Skip end the calling goroutine, as testing.T's do.
type recordingTB struct {
	testing.TB // the real test, for what is not overridden

	mu       sync.Mutex
	out      strings.Builder
	failed   bool
	cleanups []func()
}

func (r *recordingTB) print(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.out.WriteString(s + "\n")
}

func (r *recordingTB) fail() {
	r.mu.Lock()
	r.failed = true
	r.mu.Unlock()
}

func (r *recordingTB) Helper()                         {}
func (r *recordingTB) Log(args ...any)                 { r.print(fmt.Sprint(args...)) }
func (r *recordingTB) Logf(format string, args ...any) { r.print(fmt.Sprintf(format, args...)) }
func (r *recordingTB) Error(args ...any)               { r.Log(args...); r.fail() }
func (r *recordingTB) Errorf(format string, args ...any) {
	r.Logf(format, args...)
	r.fail()
}
func (r *recordingTB) Fatal(args ...any) { r.Error(args...); runtime.Goexit() }
func (r *recordingTB) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	runtime.Goexit()
}
func (r *recordingTB) Skip(args ...any)                 { r.Log(args...); runtime.Goexit() }
func (r *recordingTB) Skipf(format string, args ...any) { r.Logf(format, args...); runtime.Goexit() }
func (r *recordingTB) Failed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.failed
}
func (r *recordingTB) Cleanup(f func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cleanups = append(r.cleanups, f)
}

// TestStartOutputHidesSecretKeys runs a peer that fails at start and shows
// its secret key on stderr (argparse repeats the flag it rejects): neither
// Start's failure message nor the cleanup log of the command line and
// stderr may show the key.
func TestStartOutputHidesSecretKeys(t *testing.T) {
	testenv.PyZMQ(t)
	rec := &recordingTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		Start(rec, Options{Type: "PULL", Bind: "tcp://127.0.0.1:*", Mechanism: "CURVE", CurveServer: true,
			CurveSecretKey: testSecret, Extra: []string{"--no-such-flag=" + testSecret}})
	}()
	<-done
	for i := len(rec.cleanups) - 1; i >= 0; i-- {
		rec.cleanups[i]()
	}
	out := rec.out.String()
	if !rec.Failed() {
		t.Fatalf("the peer started with an unknown flag; output:\n%s", strings.ReplaceAll(out, testSecret, "[SECRET]"))
	}
	if strings.Contains(out, testSecret) {
		t.Fatalf("the secret key was printed:\n%s", strings.ReplaceAll(out, testSecret, "[SECRET]"))
	}
	// The output did carry the stderr and the command line, redacted.
	for _, want := range []string{"did not become ready", "unrecognized arguments: --no-such-flag=[redacted]", "--curve-secret-key=[redacted]"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
