package pypeer

import (
	"strings"
	"testing"
)

func TestRedactedArgsHidesSecretKeys(t *testing.T) {
	secret := "JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6"
	got := strings.Join(redactedArgs([]string{"--type=REQ", "--curve-secret-key=" + secret, "--curve-server-key=rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"}), " ")
	if strings.Contains(got, secret) {
		t.Fatalf("secret key printed: %s", got)
	}
	if !strings.Contains(got, "--curve-server-key=rq:rM") || !strings.Contains(got, "--type=REQ") {
		t.Fatalf("other flags lost: %s", got)
	}
}
