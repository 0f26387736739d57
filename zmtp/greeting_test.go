package zmtp

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

func TestAppendGreeting(t *testing.T) {
	g, err := AppendGreeting(nil, "PLAIN", true)
	if err != nil {
		t.Fatal(err)
	}
	want := rawGreeting(3, 1, "PLAIN", true)
	if !bytes.Equal(g, want) {
		t.Fatalf("greeting\n% x\nwant\n% x", g, want)
	}
	for _, bad := range []string{"", "null", "A-VERY-LONG-MECHANISM-NAME", "CURVE\x00"} {
		if _, err := AppendGreeting(nil, bad, false); !errors.Is(err, ErrBadGreeting) {
			t.Errorf("mechanism %q: err = %v", bad, err)
		}
	}
}

func TestParseGreeting(t *testing.T) {
	mod := func(f func(g []byte)) []byte {
		g := rawGreeting(3, 1, "NULL", false)
		f(g)
		return g
	}
	tests := []struct {
		name    string
		in      []byte
		want    Greeting
		wantErr error
	}{
		{"3.1 NULL", rawGreeting(3, 1, "NULL", false), Greeting{3, 1, "NULL", false}, nil},
		{"3.0 CURVE server", rawGreeting(3, 0, "CURVE", true), Greeting{3, 0, "CURVE", true}, nil},
		{"higher minor", rawGreeting(3, 7, "NULL", false), Greeting{3, 7, "NULL", false}, nil},
		{"libzmq padding", mod(func(g []byte) { g[8] = 1 }), Greeting{3, 1, "NULL", false}, nil},
		{"20-char mechanism", rawGreeting(3, 1, "ABCDEFGHIJKLMNOPQRST", false), Greeting{3, 1, "ABCDEFGHIJKLMNOPQRST", false}, nil},
		{"filler ignored", mod(func(g []byte) { g[40] = 9 }), Greeting{3, 1, "NULL", false}, nil},
		{"short", rawGreeting(3, 1, "NULL", false)[:63], Greeting{}, ErrBadGreeting},
		{"bad first byte", mod(func(g []byte) { g[0] = 'G' }), Greeting{}, ErrBadGreeting},
		{"bad 10th byte", mod(func(g []byte) { g[9] = 0x7E }), Greeting{}, ErrBadGreeting},
		{"ZMTP 2.0", rawGreeting(1, 0, "NULL", false), Greeting{}, ErrUnsupportedVersion},
		{"ZMTP 2.0 revision 2", rawGreeting(2, 0, "NULL", false), Greeting{}, ErrUnsupportedVersion},
		{"ZMTP 4.0", rawGreeting(4, 0, "NULL", false), Greeting{}, ErrUnsupportedVersion},
		{"empty mechanism", rawGreeting(3, 1, "", false), Greeting{}, ErrBadGreeting},
		{"lowercase mechanism", rawGreeting(3, 1, "null", false), Greeting{}, ErrBadGreeting},
		{"garbage after NUL", mod(func(g []byte) { g[20] = 'X' }), Greeting{}, ErrBadGreeting},
		{"as-server 2", mod(func(g []byte) { g[32] = 2 }), Greeting{}, ErrBadGreeting},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseGreeting(tt.in)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestReadGreetingAnySplit(t *testing.T) {
	g := rawGreeting(3, 1, "CURVE", true)
	readers := map[string]func() io.Reader{
		"whole":    func() io.Reader { return bytes.NewReader(g) },
		"one byte": func() io.Reader { return iotest.OneByteReader(bytes.NewReader(g)) },
		"half":     func() io.Reader { return iotest.HalfReader(bytes.NewReader(g)) },
		"libzmq (10,1,53)": func() io.Reader {
			return io.MultiReader(bytes.NewReader(g[:10]), bytes.NewReader(g[10:11]), bytes.NewReader(g[11:]))
		},
	}
	for name, r := range readers {
		t.Run(name, func(t *testing.T) {
			got, err := readGreeting(r())
			if err != nil || got.Mechanism != "CURVE" || !got.AsServer || got.Minor != 1 {
				t.Fatalf("got %+v, %v", got, err)
			}
		})
	}
}

func TestReadGreetingRefusesEarly(t *testing.T) {
	// A bad signature or major version is refused as soon as its bytes
	// arrive, without waiting for a full 64-byte greeting.
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"HTTP", []byte("GET / HTTP/1.1\r\n"), ErrBadGreeting},
		{"ZMTP 2.0 partial", rawGreeting(1, 0, "", false)[:11], ErrUnsupportedVersion},
		{"ZMTP 4 partial", rawGreeting(4, 0, "", false)[:11], ErrUnsupportedVersion},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The reader ends after these bytes; an implementation that
			// waited for 64 bytes would report EOF instead.
			_, err := readGreeting(bytes.NewReader(tt.in))
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
	if _, err := readGreeting(bytes.NewReader(rawGreeting(3, 1, "NULL", false)[:40])); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("truncated greeting: err = %v", err)
	}
}

func TestCheckRoles(t *testing.T) {
	tests := []struct {
		mech     string
		ours     bool
		peer     bool
		wantFail bool
	}{
		{"NULL", false, false, false},
		{"NULL", false, true, true},
		{"PLAIN", false, true, false},
		{"PLAIN", true, false, false},
		{"PLAIN", true, true, true},
		{"PLAIN", false, false, false}, // libzmq always sends 0: not refusable here
		{"CURVE", false, false, false},
		{"CURVE", true, false, false},
		{"CURVE", true, true, true},
	}
	for _, tt := range tests {
		err := checkRoles(tt.mech, tt.ours, Greeting{Major: 3, Mechanism: tt.mech, AsServer: tt.peer})
		if (err != nil) != tt.wantFail {
			t.Errorf("%s ours=%v peer=%v: err = %v", tt.mech, tt.ours, tt.peer, err)
		}
		if err != nil && !errors.Is(err, ErrRoleMismatch) {
			t.Errorf("err = %v, want ErrRoleMismatch", err)
		}
	}
}
