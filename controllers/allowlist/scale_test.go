package allowlist_test

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"runtime"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/zmqauth/zmqauth/api/v1alpha1"
	at "github.com/zmqauth/zmqauth/controllers/allowlist/allowlisttest"
)

// TestScale measures the operator benchmark scenario: N CurveClients over 10
// namespaces, each naming the one CurveServer of its namespace, from their
// creation until every key is on its server's allowlist, and the memory of
// the test process (which holds the manager). It is a measurement, not a
// test: it runs only with ZMQAUTH_SCALE_CLIENTS=N (and writes a heap
// profile of the running manager to ZMQAUTH_SCALE_HEAPPROFILE if set), e.g.
//
//	ZMQAUTH_SCALE_CLIENTS=10000 go test -run TestScale -v -timeout 30m ./controllers/allowlist/
func TestScale(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("ZMQAUTH_SCALE_CLIENTS"))
	if n <= 0 {
		t.Skip("set ZMQAUTH_SCALE_CLIENTS=N to measure N clients")
	}
	const spaces = 10
	env := at.Start(t)
	ctx := context.Background()
	var namespaces []string
	for i := 0; i < spaces; i++ {
		ns := env.Namespace(t, "scale", nil)
		namespaces = append(namespaces, ns)
		env.Create(t, at.Server(ns, "bus"))
	}
	for _, ns := range namespaces {
		at.WaitKey(t, env, at.Server(ns, "bus"))
	}

	start := time.Now()
	work := make(chan *v1alpha1.CurveClient)
	var wg sync.WaitGroup
	errs := make(chan error, 1)
	for w := 0; w < 16; w++ {
		wg.Go(func() {
			for cc := range work {
				if err := env.Client.Create(ctx, cc); err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			}
		})
	}
	for i := 0; i < n; i++ {
		ns := namespaces[i%spaces]
		work <- at.Client(ns, fmt.Sprintf("c%05d", i), "bus")
	}
	close(work)
	wg.Wait()
	created := time.Since(start)
	select {
	case err := <-errs:
		t.Fatalf("create: %v", err)
	default:
	}

	per := int32(n / spaces)
	var peakRSS int64
	lastLog := time.Now()
	deadline := time.Now().Add(20 * time.Minute)
	for {
		if rss := rssBytes(); rss > peakRSS {
			peakRSS = rss
		}
		done := 0
		var total int32
		for _, ns := range namespaces {
			var srv v1alpha1.CurveServer
			if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "bus"}, &srv); err != nil {
				t.Fatal(err)
			}
			total += srv.Status.AuthorizedClients
			if srv.Status.AuthorizedClients >= per {
				done++
			}
		}
		if done == spaces {
			break
		}
		if time.Since(lastLog) > 30*time.Second {
			lastLog = time.Now()
			keyed := 0
			for _, ns := range namespaces {
				var list v1alpha1.CurveClientList
				if err := env.Client.List(ctx, &list, client.InNamespace(ns)); err != nil {
					t.Fatal(err)
				}
				for i := range list.Items {
					if list.Items[i].Status.PublicKey != "" {
						keyed++
					}
				}
			}
			t.Logf("%s: %d clients have keys, %d keys on allowlists", time.Since(start).Round(time.Second), keyed, total)
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d keys on allowlists after %s", total, n, time.Since(start))
		}
		time.Sleep(200 * time.Millisecond)
	}
	onAllowlists := time.Since(start)

	// The clients' own status says so too.
	var authorized int
	for {
		if rss := rssBytes(); rss > peakRSS {
			peakRSS = rss
		}
		authorized = 0
		for _, ns := range namespaces {
			var list v1alpha1.CurveClientList
			if err := env.Client.List(ctx, &list, client.InNamespace(ns)); err != nil {
				t.Fatal(err)
			}
			for i := range list.Items {
				if s := at.ServerStatus(&list.Items[i], ns, "bus"); s != nil && s.Authorized &&
					at.ConditionIs(list.Items[i].Status.Conditions, v1alpha1.ConditionAuthorized, metav1.ConditionTrue, "") {
					authorized++
				}
			}
		}
		if authorized == n || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Second)
	}
	statusDone := time.Since(start)
	logAPIServerLoad(t, env)
	if path := os.Getenv("ZMQAUTH_SCALE_HEAPPROFILE"); path != "" {
		runtime.GC()
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := pprof.WriteHeapProfile(f); err != nil {
			t.Fatal(err)
		}
		_ = f.Close()
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	t.Logf("N=%d: created in %s; all keys on allowlists after %s; %d clients report Authorized after %s; peak RSS %d MiB (test process incl. manager), heap in use %d MiB",
		n, created.Round(time.Millisecond), onAllowlists.Round(time.Millisecond), authorized, statusDone.Round(time.Millisecond),
		peakRSS>>20, ms.HeapInuse>>20)
}

// rssBytes returns the resident set size of this process (Linux).
func rssBytes() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// logAPIServerLoad logs, from the API server's own metrics, the requests
// and the time it spent per resource and verb: where the load of the
// scenario went.
func logAPIServerLoad(t *testing.T, env *at.Env) {
	cs, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		t.Logf("metrics: %v", err)
		return
	}
	raw, err := cs.RESTClient().Get().AbsPath("/metrics").DoRaw(context.Background())
	if err != nil {
		t.Logf("metrics: %v", err)
		return
	}
	type agg struct{ count, seconds float64 }
	by := map[string]*agg{}
	re := regexp.MustCompile(`^apiserver_request_duration_seconds_(sum|count)\{(.*)\} (\S+)$`)
	lbl := regexp.MustCompile(`(\w+)="([^"]*)"`)
	for _, line := range strings.Split(string(raw), "\n") {
		m := re.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		l := map[string]string{}
		for _, kv := range lbl.FindAllStringSubmatch(m[2], -1) {
			l[kv[1]] = kv[2]
		}
		if l["verb"] == "WATCH" {
			continue
		}
		key := l["verb"] + " " + l["resource"] + "/" + l["subresource"]
		if by[key] == nil {
			by[key] = &agg{}
		}
		v, _ := strconv.ParseFloat(m[3], 64)
		if m[1] == "sum" {
			by[key].seconds += v
		} else {
			by[key].count += v
		}
	}
	keys := make([]string, 0, len(by))
	for k := range by {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return by[keys[i]].seconds > by[keys[j]].seconds })
	for i, k := range keys {
		if i == 12 {
			break
		}
		t.Logf("apiserver %-45s %7.0f requests %8.1fs", k, by[k].count, by[k].seconds)
	}
}
