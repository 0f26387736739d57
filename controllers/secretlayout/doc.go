// Package secretlayout is the one definition of what zmqauth writes into
// Kubernetes objects for the key controllers and their readers: the data keys
// of a keypair Secret, the annotations that carry its rotation state, the file
// names of a server's allowlist ConfigMap, and the code that builds a keypair
// Secret's data from a keygen.KeyPair and parses it back with validation.
//
// A keypair Secret (type zmqauth.io/curve, label zmqauth.io/managed-by:
// zmqauth, controller owner reference to its CurveServer or CurveClient):
//
//	public.key           current public key, 40 Z85 characters
//	secret.key           current secret key, 40 Z85 characters
//	curve.key            current public zcert certificate
//	curve.key_secret     current secret zcert certificate
//	previous-public.key  during an overlap: the previous public key
//	previous-secret.key  during a CurveServer's overlap: the previous secret key
//	server.NS.NAME.key   CurveClient only: public zcert certificate of a server it names
//
// Its annotations zmqauth.io/key-revision, zmqauth.io/rotated-at,
// zmqauth.io/overlap-until, zmqauth.io/rotation-request and
// zmqauth.io/rotation-reason are the rotation state, so each rotation step is
// one atomic write of the Secret (see State).
//
// Errors from this package name the data key that is wrong and never contain
// a secret key.
package secretlayout
